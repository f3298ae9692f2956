"""The Celery application, configured from Django settings.

Server mode (``CELERY_BROKER_URL`` set): an ordinary Celery app; run ``celery -A
thinkmeter worker`` and ``celery -A thinkmeter beat``.

Embedded mode (no broker): ``task.delay()`` / ``apply_async()`` hand the call to the
in-process worker of :mod:`thinkmeter.background`, a background thread, so a task never
runs on the thread of the request that queued it; periodic tasks from
``beat_schedule`` are run by the in-process scheduler started by ``manage.py serve``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")


class ThinkmeterTask(Task):
    """Task base class that routes to the in-process worker when there is no broker."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:  # type: ignore[override]
        from django.conf import settings

        if settings.CELERY_BROKER_URL:
            return super().apply_async(args=args, kwargs=kwargs, **options)
        from thinkmeter import background

        return background.submit(self, tuple(args or ()), dict(kwargs or {}), countdown=options.get("countdown"))


app = Celery("thinkmeter", task_cls=ThinkmeterTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_url = os.environ.get("CELERY_BROKER_URL") or "memory://"
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1
app.conf.task_serializer = "json"
app.conf.timezone = "UTC"
app.conf.beat_schedule = {}
app.autodiscover_tasks()
