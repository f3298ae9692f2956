"""Django app configuration for the routing-policy simulator."""

from __future__ import annotations

from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    name = "simulator"
    verbose_name = "Routing-policy simulator"
    default_auto_field = "django.db.models.BigAutoField"
