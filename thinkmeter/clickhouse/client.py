"""The single entry point to ClickHouse: ``execute``, ``query_df`` and ``insert``.

Every call names the projects it serves and a tag saying what asked for it. Scoped
statements must filter on the bound parameter ``{project_ids:Array(UInt32)}``; the
check is in code (:func:`_scope`), so no caller can forget it. System work (schema
migrations, health checks, retention) passes ``system=True`` instead and is tagged as
such. The tag and projects travel to ClickHouse as ``log_comment`` (visible in
``system.query_log``) and to Prometheus as labels.

The transport is chosen by ``CLICKHOUSE_URL`` and opened lazily on first use.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from thinkmeter.clickhouse.config import ClickHouseConfig, parse_clickhouse_url
from thinkmeter.clickhouse.errors import ClickHouseError, ScopeError

PROJECT_PARAM = "{project_ids:Array(UInt32)}"


class Transport(Protocol):
    kind: str

    def query_arrow(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> pa.Table: ...
    def command(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> None: ...
    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any], tag: str) -> None: ...
    def close(self) -> None: ...


_transport: Transport | None = None
_transport_lock = threading.Lock()


def config() -> ClickHouseConfig:
    """The configuration from settings (parsing only; opens nothing)."""
    from django.conf import settings

    return parse_clickhouse_url(settings.CLICKHOUSE_URL, settings.BASE_DIR)


def transport() -> Transport:
    """The process-wide transport, created on first use."""
    global _transport
    if _transport is None:
        with _transport_lock:
            if _transport is None:
                _transport = make_transport(config())
    return _transport


def make_transport(cfg: ClickHouseConfig) -> Transport:
    if cfg.kind == "chdb":
        from thinkmeter.clickhouse.transport_chdb import ChdbTransport

        assert cfg.path is not None
        return ChdbTransport(cfg.path)
    from thinkmeter.clickhouse.transport_native import NativeTransport

    return NativeTransport(cfg)


def reset_transport() -> None:
    """Close and forget the transport (tests that switch CLICKHOUSE_URL)."""
    global _transport
    with _transport_lock:
        if _transport is not None:
            _transport.close()
        _transport = None


def _scope(sql: str, tag: str, projects: int | Iterable[int] | None, system: bool) -> tuple[list[int], dict[str, Any]]:
    if not tag:
        raise ScopeError("(untagged)", "every statement needs a tag saying what asked for it")
    if system:
        if projects is not None:
            raise ScopeError(tag, "pass either projects or system=True, not both")
        return [], {}
    if projects is None:
        raise ScopeError(tag, "no project scope: pass projects=... (or system=True for system work)")
    ids = [int(projects)] if isinstance(projects, int) else sorted({int(p) for p in projects})
    if PROJECT_PARAM not in sql:
        raise ScopeError(tag, f"a scoped statement must filter on {PROJECT_PARAM}")
    return ids, {"project_ids": ids}


def _log_comment(tag: str, ids: list[int], system: bool) -> str:
    return json.dumps({"tag": tag, "projects": "system" if system else ids}, separators=(",", ":"))


def _timed(tag: str, fn: Any) -> Any:
    from thinkmeter import metrics

    started = time.perf_counter()
    try:
        return fn()
    except ClickHouseError:
        metrics.CLICKHOUSE_ERRORS.labels(tag=tag).inc()
        raise
    finally:
        metrics.CLICKHOUSE_QUERY_SECONDS.labels(tag=tag).observe(time.perf_counter() - started)


def _bind(
    sql: str,
    params: Mapping[str, Any] | None,
    tag: str,
    projects: int | Iterable[int] | None,
    system: bool,
    settings: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the scope; return the bound parameters (with project_ids) and settings (with log_comment)."""
    ids, scope_params = _scope(sql, tag, projects, system)
    return {**(params or {}), **scope_params}, {**(settings or {}), "log_comment": _log_comment(tag, ids, system)}


def query_arrow(
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    tag: str,
    projects: int | Iterable[int] | None = None,
    system: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Run a SELECT and return an Arrow table (decimals stay exact)."""
    bound, all_settings = _bind(sql, params, tag, projects, system, settings)
    return _timed(tag, lambda: transport().query_arrow(sql, bound, all_settings, tag))


def execute(
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    tag: str,
    projects: int | Iterable[int] | None = None,
    system: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run a statement; for a SELECT return its rows as dicts, else an empty list."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if head in {"SELECT", "WITH", "SHOW", "DESCRIBE", "EXISTS"}:
        return query_arrow(sql, params, tag=tag, projects=projects, system=system, settings=settings).to_pylist()
    bound, all_settings = _bind(sql, params, tag, projects, system, settings)
    _timed(tag, lambda: transport().command(sql, bound, all_settings, tag))
    return []


def query_df(
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    tag: str,
    projects: int | Iterable[int] | None = None,
    system: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run a SELECT and return a pandas DataFrame (Decimal columns as Decimal objects)."""
    table = query_arrow(sql, params, tag=tag, projects=projects, system=system, settings=settings)
    return table.to_pandas()


def to_arrow(data: pa.Table | pd.DataFrame | Mapping[str, Sequence[Any]]) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    return pa.table(dict(data))


def insert(
    table: str,
    data: pa.Table | pd.DataFrame | Mapping[str, Sequence[Any]],
    *,
    tag: str,
    project: int | None = None,
    system: bool = False,
    dedup_token: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Insert columnar data (an Arrow table, a DataFrame or a dict of lists) in one statement.

    Scoped inserts must carry a ``project_id`` column whose every value is ``project``.
    Returns the number of rows inserted.
    """
    arrow = to_arrow(data)
    if not tag:
        raise ScopeError("(untagged)", "every insert needs a tag")
    if not system:
        if project is None:
            raise ScopeError(tag, "no project scope: pass project=... (or system=True)")
        if "project_id" not in arrow.column_names:
            raise ScopeError(tag, "a scoped insert needs a project_id column")
        values = set(arrow.column("project_id").unique().to_pylist())
        if values - {project}:
            raise ScopeError(tag, f"rows for projects {sorted(values - {project})} in an insert scoped to {project}")
    if arrow.num_rows == 0:
        return 0
    all_settings: dict[str, Any] = {**(settings or {}), "log_comment": _log_comment(tag, [] if system else [project or 0], system)}
    if dedup_token:
        all_settings["insert_deduplication_token"] = dedup_token
    _timed(tag, lambda: transport().insert_arrow(table, arrow, all_settings, tag))
    return arrow.num_rows
