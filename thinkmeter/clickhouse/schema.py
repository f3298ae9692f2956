"""Apply the numbered ClickHouse schema migrations in order, once each.

Applied migrations are recorded in the ``thinkmeter_migrations`` table; running twice
is safe (each statement is idempotent too). In embedded mode the runner also writes
``<store>/schema_version`` so that ``manage.py migrate`` can see that ClickHouse is
already up to date without opening it (chdb is single-process, and a live server may
hold it).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from thinkmeter.clickhouse import client
from thinkmeter.clickhouse.config import ClickHouseConfig

MIGRATIONS_PACKAGE = "thinkmeter.clickhouse.migrations"
TAG = "schema.migrate"


@dataclass(frozen=True)
class SchemaContext:
    retention_days: int
    cluster: str = ""


def available() -> list[str]:
    """Migration names in the order they apply."""
    package = importlib.import_module(MIGRATIONS_PACKAGE)
    names = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name[:4].isdigit()]
    return sorted(names)


def render(name: str, ctx: SchemaContext) -> list[str]:
    module = importlib.import_module(f"{MIGRATIONS_PACKAGE}.{name}")
    return [s.strip() for s in module.statements(ctx)]


def _marker(cfg: ClickHouseConfig) -> Path | None:
    return cfg.path / "schema_version" if cfg.kind == "chdb" and cfg.path else None


def up_to_date_without_opening(cfg: ClickHouseConfig) -> bool:
    """True when the embedded store's marker lists every migration (never opens chdb)."""
    marker = _marker(cfg)
    if marker is None or not marker.exists():
        return False
    return set(marker.read_text().split()) >= set(available())


def applied() -> list[str]:
    client.execute(
        "CREATE TABLE IF NOT EXISTS thinkmeter_migrations (name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY name",
        tag=TAG,
        system=True,
    )
    rows = client.execute("SELECT DISTINCT name FROM thinkmeter_migrations ORDER BY name", tag=TAG, system=True)
    return [row["name"] for row in rows]


def migrate(ctx: SchemaContext, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    done = set(applied())
    newly: list[str] = []
    for name in available():
        if name in done:
            continue
        for statement in render(name, ctx):
            client.execute(statement, tag=f"{TAG}.{name}", system=True)
        client.execute(
            "INSERT INTO thinkmeter_migrations (name) SELECT {name:String}",
            {"name": name},
            tag=TAG,
            system=True,
        )
        newly.append(name)
        log(f"  ClickHouse migration {name}: applied")
    marker = _marker(client.config())
    if marker is not None:
        marker.write_text("\n".join(available()) + "\n")
    return newly


def context_from_settings() -> SchemaContext:
    from django.conf import settings

    return SchemaContext(retention_days=settings.CLICKHOUSE_RETENTION_DAYS, cluster=settings.CLICKHOUSE_CLUSTER)


def pending() -> list[str]:
    return [name for name in available() if name not in set(applied())]
