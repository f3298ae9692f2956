"""Signal handlers: a saved or deleted alert rule reaches the ingest hook at once.

The in-memory snapshot of the rule's project (:mod:`alerts.runtime`) is marked stale
immediately and again when the transaction commits, so the refresher reads the
committed rules; other processes pick the change up within their refresh interval.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from alerts.models import AlertRule
from alerts.runtime import runtime

DISPATCH_PREFIX = "alerts.signals"


def rule_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return
    project_id = getattr(instance, "project_id", None)
    if project_id is None:
        return
    runtime.invalidate(project_id)
    transaction.on_commit(lambda: runtime.invalidate(project_id))


def connect() -> None:
    """Connect the handlers (idempotent: dispatch uids)."""
    post_save.connect(rule_changed, sender=AlertRule, dispatch_uid=f"{DISPATCH_PREFIX}.save.rule")
    post_delete.connect(rule_changed, sender=AlertRule, dispatch_uid=f"{DISPATCH_PREFIX}.delete.rule")
    m2m_changed.connect(rule_changed, sender=AlertRule.channels.through, dispatch_uid=f"{DISPATCH_PREFIX}.channels")
