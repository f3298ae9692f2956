"""App configuration: validates CLICKHOUSE_URL at start-up without opening ClickHouse; connects signals."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class ThinkmeterConfig(AppConfig):
    name = "thinkmeter"
    verbose_name = "Thinkmeter"

    def ready(self) -> None:
        from thinkmeter.clickhouse import ClickHouseConfigError, config

        try:
            config()
        except ClickHouseConfigError as exc:
            raise ImproperlyConfigured(str(exc)) from exc

        from thinkmeter import signals

        signals.connect()
