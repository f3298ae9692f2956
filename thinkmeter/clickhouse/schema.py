"""Apply the numbered ClickHouse schema migrations in order, once each.

Applied migrations are recorded in the ``thinkmeter_migrations`` table; running twice
is safe (each statement is idempotent too). In embedded mode the runner also writes
``<store>/schema_version`` so that ``manage.py migrate`` can see that ClickHouse is
already up to date without opening it (chdb is single-process, and a live server may
hold it).

Migrations render their DDL through a :class:`~thinkmeter.clickhouse.ddl.SchemaContext`.
With ``CLICKHOUSE_CLUSTER`` set, every statement runs ``ON CLUSTER`` from whichever
node ``CLICKHOUSE_URL`` names, and the record table is replicated to every node of the
cluster (one replica set for all of them), so any node knows what was applied.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from thinkmeter.clickhouse import client
from thinkmeter.clickhouse.config import ClickHouseConfig, ClickHouseConfigError
from thinkmeter.clickhouse.ddl import SchemaContext

MIGRATIONS_PACKAGE = "thinkmeter.clickhouse.migrations"
TAG = "schema.migrate"
RECORD_TABLE = "thinkmeter_migrations"

__all__ = [
    "SchemaContext", "applied", "available", "context_from_settings", "migrate", "pending", "record_table",
    "render", "up_to_date_without_opening",
]


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


def record_table(ctx: SchemaContext) -> list[str]:
    """The DDL of the table that records applied migrations (on every node in cluster mode)."""
    return ctx.create_global_table(
        RECORD_TABLE, ["name String", "applied_at DateTime DEFAULT now()"], engine="ReplacingMergeTree", order_by="name"
    )


def applied() -> list[str]:
    """Names of the migrations recorded as applied; only reads (``/readyz`` asks often, and in
    cluster mode creating the record table is distributed DDL)."""
    exists = client.execute(f"EXISTS TABLE {RECORD_TABLE}", tag=TAG, system=True)
    if not exists or not next(iter(exists[0].values())):
        return []
    rows = client.execute(f"SELECT DISTINCT name FROM {RECORD_TABLE} ORDER BY name", tag=TAG, system=True)
    return [row["name"] for row in rows]


def migrate(ctx: SchemaContext, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    for statement in record_table(ctx):
        client.execute(statement, tag=TAG, system=True)
    done = set(applied())
    newly: list[str] = []
    for name in available():
        if name in done:
            continue
        for statement in render(name, ctx):
            client.execute(statement, tag=f"{TAG}.{name}", system=True)
        client.execute(
            f"INSERT INTO {RECORD_TABLE} (name) SELECT {{name:String}}",
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
    """The context for this installation: retention, cluster name and database from settings."""
    from django.conf import settings

    cfg = client.config()
    cluster = settings.CLICKHOUSE_CLUSTER
    if cluster and cfg.kind == "chdb":
        raise ClickHouseConfigError(
            f"CLICKHOUSE_CLUSTER={cluster!r} needs a ClickHouse server: embedded chdb has no cluster "
            "(set CLICKHOUSE_URL=clickhouse://user:password@host:9000/db, or unset CLICKHOUSE_CLUSTER)"
        )
    try:
        return SchemaContext(retention_days=settings.CLICKHOUSE_RETENTION_DAYS, cluster=cluster, database=cfg.database)
    except ValueError as exc:
        raise ClickHouseConfigError(str(exc)) from None


def pending() -> list[str]:
    """Migrations not recorded as applied (reads only)."""
    done = set(applied())
    return [name for name in available() if name not in done]
