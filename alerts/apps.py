"""Django app configuration for alerts: ingest hooks, signal handlers and the periodic schedule."""

from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts import hook, signals, tasks

        hook.install()
        signals.connect()
        tasks.register_schedule()
