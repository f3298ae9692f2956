"""Django app configuration for ingest: connects the signal handlers that keep caches fresh."""

from __future__ import annotations

from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ingest"
    verbose_name = "Ingest and pricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ingest import signals

        signals.connect()
