"""Signal handlers of the core models: a saved or deleted project reaches every process's cache.

The ingest worker processes keep projects (prompt storage, tier models) for a few seconds
(:mod:`ingest.parallel`); a change bumps :data:`thinkmeter.generations.projects` now and
again when the transaction commits, so every process reads the committed project.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from thinkmeter import generations
from thinkmeter.models import Project

DISPATCH_PREFIX = "thinkmeter.signals"


def project_changed(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    generations.projects.bump()
    transaction.on_commit(generations.projects.bump)


def connect() -> None:
    """Connect the handlers (idempotent: dispatch uids)."""
    post_save.connect(project_changed, sender=Project, dispatch_uid=f"{DISPATCH_PREFIX}.save.project")
    post_delete.connect(project_changed, sender=Project, dispatch_uid=f"{DISPATCH_PREFIX}.delete.project")
