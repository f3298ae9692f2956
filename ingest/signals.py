"""Signal handlers: a saved or deleted price or classification rule reaches ingest at once.

Whatever changes prices (the admin, ``POST /api/v1/prices``, ``update_prices``, a shell),
the catalog snapshot (:mod:`ingest.catalog`) and the per-project rule cache
(:mod:`ingest.classify`) are invalidated twice: immediately, so this process (and a
request that reads back what it just wrote inside its own transaction) sees the change,
and, inside a transaction, again when it commits, so that another process that
reloaded in between picks up the committed state rather than keeping the old one.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ingest import catalog, classify
from ingest.models import ClassificationRule, ModelPrice, PriceRate

DISPATCH_PREFIX = "ingest.signals"


def _twice(action: Any) -> None:
    """Run now; inside a transaction, once more when it commits (once per transaction)."""
    action()
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return
    if any(entry[1] is action for entry in getattr(connection, "run_on_commit", [])):
        return  # a bulk load saves hundreds of rows: one reload after the commit is enough
    transaction.on_commit(action)


def prices_changed(sender: Any, **kwargs: Any) -> None:
    """Any ModelPrice or PriceRate saved or deleted: every process reloads the catalog."""
    if kwargs.get("raw"):  # fixtures being loaded: nothing is serving from them yet
        return
    _twice(catalog.invalidate)


def rules_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A ClassificationRule saved or deleted: its project's rules are read again."""
    if kwargs.get("raw"):
        return
    project_id = instance.project_id
    _twice(lambda: classify.rule_cache.invalidate(project_id))


def connect() -> None:
    """Connect the handlers (idempotent: dispatch uids)."""
    for model in (ModelPrice, PriceRate):
        post_save.connect(prices_changed, sender=model, dispatch_uid=f"{DISPATCH_PREFIX}.save.{model.__name__}")
        post_delete.connect(prices_changed, sender=model, dispatch_uid=f"{DISPATCH_PREFIX}.delete.{model.__name__}")
    post_save.connect(rules_changed, sender=ClassificationRule, dispatch_uid=f"{DISPATCH_PREFIX}.save.rule")
    post_delete.connect(rules_changed, sender=ClassificationRule, dispatch_uid=f"{DISPATCH_PREFIX}.delete.rule")
