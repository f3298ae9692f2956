"""Signal handlers of the core models: a saved or deleted project or API key reaches every process's cache.

The ingest worker processes keep projects (prompt storage, tier models) for a few seconds
(:mod:`ingest.parallel`), and every process keeps active API keys (:mod:`thinkmeter.key_cache`);
a change bumps :data:`thinkmeter.generations.projects` (a project) and
:data:`thinkmeter.generations.api_keys` (a project or a key) now and again when the
transaction commits, so every process reads the committed state.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from thinkmeter import generations
from thinkmeter.generations import Generation
from thinkmeter.key_cache import active_keys
from thinkmeter.models import ApiKey, Project

DISPATCH_PREFIX = "thinkmeter.signals"


def _announce(*changed: Generation) -> None:
    for generation in changed:
        generation.bump()
        transaction.on_commit(generation.bump)


def project_changed(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    active_keys.forget()
    _announce(generations.projects, generations.api_keys)


def api_key_changed(sender: Any, instance: ApiKey, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    active_keys.forget(instance.digest)
    _announce(generations.api_keys)


def connect() -> None:
    """Connect the handlers (idempotent: dispatch uids)."""
    post_save.connect(project_changed, sender=Project, dispatch_uid=f"{DISPATCH_PREFIX}.save.project")
    post_delete.connect(project_changed, sender=Project, dispatch_uid=f"{DISPATCH_PREFIX}.delete.project")
    post_save.connect(api_key_changed, sender=ApiKey, dispatch_uid=f"{DISPATCH_PREFIX}.save.api_key")
    post_delete.connect(api_key_changed, sender=ApiKey, dispatch_uid=f"{DISPATCH_PREFIX}.delete.api_key")
