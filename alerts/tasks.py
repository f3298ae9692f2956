"""Celery tasks of the alert engine (thin: each calls a service) and their beat schedule.

- ``alerts.deliver``: one attempt to deliver a notification to a channel. ``acks_late``
  with ``reject_on_worker_lost``: a worker that dies mid-task leaves the message to be
  delivered again, and :func:`alerts.services.attempt_delivery` makes that safe (a
  delivered notification is never posted twice). Failed attempts that may succeed later
  (timeouts, 5xx, 429) are retried with exponential backoff, or after the Retry-After a
  429/503 asked for.
- ``alerts.fire_runaway``: records what the ingest hook found.
- ``alerts.flush_group``: sends a rule's grouped message when its window ends.
- Periodic (:data:`SCHEDULE`, every minute or half minute: Celery beat in server mode,
  the in-process scheduler in embedded mode): ``alerts.evaluate`` (quota, budget,
  spike), ``alerts.sweep`` (runaway over late spans and whole traces) and
  ``alerts.maintenance`` (reminders, overdue groups, stuck deliveries).

``settings.ALERTS_TASK_QUEUE`` (optional) routes the alert tasks to a queue of their own;
tasks queued by an alert task follow it to the queue it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Task
from celery._state import get_current_task
from django.conf import settings
from django.db import connections

from thinkmeter.celery import app

SCHEDULE: dict[str, dict[str, Any]] = {
    "alerts-evaluate": {"task": "alerts.evaluate", "schedule": 60.0},
    "alerts-sweep": {"task": "alerts.sweep", "schedule": 60.0},
    "alerts-maintenance": {"task": "alerts.maintenance", "schedule": 30.0},
}


def register_schedule() -> None:
    """Add the alert engine's periodic tasks to the Celery app's beat schedule (idempotent)."""
    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), **SCHEDULE}


def _queue() -> str:
    """``settings.ALERTS_TASK_QUEUE``, else the queue of the alert task running now (if any).

    Follow-up tasks (a delivery queued by ``fire_runaway``, a retry) stay on the queue
    their cause came from, so a worker pool dedicated to alerts handles all of them.
    """
    configured = str(getattr(settings, "ALERTS_TASK_QUEUE", "") or "")
    if configured:
        return configured
    task = get_current_task()
    if task is not None and not task.request.called_directly and str(task.name).startswith("alerts."):
        return str((task.request.delivery_info or {}).get("routing_key") or "")
    return ""


def enqueue(name: str, args: Sequence[Any], countdown: float | None = None) -> Any:
    """Queue task ``name`` (the in-process worker in embedded mode, the broker in server mode)."""
    options: dict[str, Any] = {}
    queue = _queue()
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    return app.tasks[name].apply_async(args=list(args), **options)


def _embedded(task: Task) -> bool:
    """True when run by the in-process worker (no broker message behind it)."""
    return bool(task.request.called_directly)


def _done(task: Task) -> None:
    # The in-process worker is a long-lived thread: do not keep its connections between tasks.
    if _embedded(task):
        connections.close_all()


@app.task(bind=True, name="alerts.deliver", acks_late=True, reject_on_worker_lost=True, max_retries=None,
          ignore_result=True)
def deliver(self: Task, delivery_id: int) -> str:
    from alerts import services

    try:
        outcome = services.attempt_delivery(delivery_id)
    finally:
        _done(self)
    if outcome.retry_in is not None:
        if _embedded(self):
            enqueue("alerts.deliver", [delivery_id], countdown=outcome.retry_in)
        else:
            raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@app.task(bind=True, name="alerts.fire_runaway", acks_late=True, ignore_result=True)
def fire_runaway(self: Task, project_id: int, items: list[Any]) -> int:
    from alerts import services

    try:
        return services.record_runaway(project_id, items)
    finally:
        _done(self)


@app.task(bind=True, name="alerts.flush_group", acks_late=True, ignore_result=True)
def flush_group(self: Task, rule_id: int) -> bool:
    from alerts import services

    try:
        return services.flush_group(rule_id) is not None
    finally:
        _done(self)


@app.task(bind=True, name="alerts.evaluate", ignore_result=True)
def evaluate(self: Task) -> dict[str, int]:
    from alerts import services

    try:
        return services.evaluate_all()
    finally:
        _done(self)


@app.task(bind=True, name="alerts.sweep", ignore_result=True)
def sweep(self: Task) -> int:
    from alerts import services

    try:
        return services.sweep_all()
    finally:
        _done(self)


@app.task(bind=True, name="alerts.maintenance", ignore_result=True)
def maintenance(self: Task) -> dict[str, int]:
    from alerts import services

    try:
        return services.maintenance()
    finally:
        _done(self)


register_schedule()
