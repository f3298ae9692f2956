"""Thinkmeter: the Django project (settings, URLs, Celery app) and the core models.

The Celery app is imported here so that ``@shared_task`` functions bind to it
whenever Django starts.
"""

from thinkmeter.celery import app as celery_app

__all__ = ["celery_app"]
