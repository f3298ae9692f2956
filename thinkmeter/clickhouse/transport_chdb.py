"""Embedded transport: the ClickHouse engine in-process through chdb.

chdb opens a data directory in one process only. We take an exclusive ``flock`` on
``<dir>/.thinkmeter.lock`` before the first connection, so a second process gets a
clear :class:`EmbeddedStoreLocked` instead of corrupting data. Inside the process a
small pool of connections lets statements run side by side (one chdb connection runs
one statement at a time).
"""

from __future__ import annotations

import fcntl
import io
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import chdb
import pyarrow as pa

from thinkmeter.clickhouse.errors import ClickHouseError, EmbeddedStoreLocked

POOL_SIZE = 4
LOCKED_MESSAGE = (
    "the embedded ClickHouse store {path} is open in another process (pid {pid}). Embedded mode "
    "is single-process: stop that process (for example `make run` or `manage.py serve`), or "
    "switch to server mode by setting CLICKHOUSE_URL=clickhouse://user:password@host:9000/db."
)

# The query condition cache can return stale results after TRUNCATE or DETACH/ATTACH
# reuses part names (ClickHouse issue #116202): wrong sums are worse than a slower scan.
DEFAULT_SETTINGS: dict[str, Any] = {"use_query_condition_cache": 0}

_locks: dict[Path, IO[str]] = {}
_locks_guard = threading.Lock()


def _lock_directory(path: Path) -> None:
    with _locks_guard:
        if path in _locks:
            return
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / ".thinkmeter.lock", "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise EmbeddedStoreLocked("open", LOCKED_MESSAGE.format(path=path, pid=pid)) from None
        import os

        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _locks[path] = handle


def _params(params: dict[str, Any]) -> dict[str, Any] | None:
    return {name: _param_text(value) for name, value in params.items()} or None


def _error(tag: str, exc: Exception) -> ClickHouseError:
    text = str(exc)
    code = None
    if text.startswith("Code: "):
        try:
            code = int(text[6 : text.index(".")])
        except ValueError:
            code = None
    return ClickHouseError(tag, text, code)


class ChdbTransport:
    kind = "chdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._created = 0
        self._guard = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            with self._guard:
                create = self._created < POOL_SIZE
                if create:
                    _lock_directory(self.path)
                    self._created += 1
            conn = chdb.connect(str(self.path)) if create else self._pool.get()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    @staticmethod
    def _with_settings(sql: str, settings: dict[str, Any]) -> str:
        """Append a SETTINGS clause; values are our own (tags, tokens), quoted as literals
        because DDL statements do not accept query parameters in SETTINGS."""
        settings = {**DEFAULT_SETTINGS, **settings}
        clauses = ", ".join(f"{name} = {_literal(value)}" for name, value in settings.items())
        return f"{sql.rstrip().rstrip(';')}\nSETTINGS {clauses}"

    def query_arrow(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> pa.Table:
        statement = self._with_settings(sql, settings)
        with self._connection() as conn:
            try:
                result = conn.query(statement, "ArrowTable", params=_params(params))
                if any(pa.types.is_uint32(field.type) for field in result.schema):
                    result = _datetimes(conn, sql, params, result)
            except Exception as exc:
                raise _error(tag, exc) from exc
        return result

    def command(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> None:
        _forget_result_types()  # DDL may change what a statement returns
        statement = self._with_settings(sql, settings)
        with self._connection() as conn:
            try:
                conn.query(statement, "Null", params=_params(params))
            except Exception as exc:
                raise _error(tag, exc) from exc

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any], tag: str) -> None:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        setting_sql = ", ".join(f"{k} = {_literal(v)}" for k, v in settings.items())
        statement = f"INSERT INTO {table} ({columns})" + (f" SETTINGS {setting_sql}" if setting_sql else "")
        with self._connection() as conn:
            try:
                with conn.send_insert(statement, "ArrowStream") as inserter:
                    inserter.append(sink.getvalue())
                    inserter.finish()
            except Exception as exc:
                raise _error(tag, exc) from exc

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return


def _param_text(value: Any) -> Any:
    """Render a bound parameter in ClickHouse's text form (chdb passes parameters as text).

    Scalars are passed as themselves; arrays become ``['a','b']`` with each element
    quoted and escaped, so values never become SQL.
    """
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(_element(v) for v in value) + "]"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if value.tzinfo else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _element(value: Any) -> str:
    if isinstance(value, list | tuple):
        return _param_text(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    if value is None:
        return "NULL"
    return _literal(str(_param_text(value)))


_DATETIME = re.compile(r"^(?:Nullable\()?DateTime(?:\('([^']+)'\))?\)?$")
_result_types: dict[str, dict[str, str]] = {}
_result_types_lock = threading.Lock()
RESULT_TYPES_KEPT = 512


def _forget_result_types() -> None:
    with _result_types_lock:
        _result_types.clear()


def _result_type_names(conn: Any, sql: str, params: dict[str, Any]) -> dict[str, str] | None:
    """Column name → ClickHouse type of a statement's result, from ``DESCRIBE (<statement>)``
    (analysis only, no execution); None for a statement DESCRIBE cannot wrap (SHOW, EXISTS...).

    Remembered per statement text: bound parameters are typed in the text
    (``{name:Type}``), so their values never change the result's types, and
    :meth:`ChdbTransport.command` (every DDL statement) forgets them all.
    """
    with _result_types_lock:
        known = _result_types.get(sql)
    if known is not None:
        return known
    try:
        described = conn.query(f"DESCRIBE ({sql.rstrip().rstrip(';')})", "ArrowTable", params=_params(params))
    except Exception:
        return None
    types = dict(zip(described.column("name").to_pylist(), described.column("type").to_pylist(), strict=True))
    with _result_types_lock:
        if len(_result_types) >= RESULT_TYPES_KEPT:
            _result_types.clear()
        _result_types[sql] = types
    return types


def _datetimes(conn: Any, sql: str, params: dict[str, Any], table: pa.Table) -> pa.Table:
    """ClickHouse's Arrow output writes DateTime (32-bit) as plain uint32 seconds, like a
    UInt32 column; the result's types (:func:`_result_type_names`) tell the DateTime
    columns apart, which are returned as timestamps, as the server transport does."""
    types = _result_type_names(conn, sql, params)
    if types is None:  # a statement DESCRIBE cannot wrap: leave it as it is
        return table
    for index, field in enumerate(table.schema):
        match = _DATETIME.match(types.get(field.name, "")) if pa.types.is_uint32(field.type) else None
        if match:
            column = table.column(index).cast(pa.int64()).cast(pa.timestamp("s", tz=match.group(1) or "UTC"))
            table = table.set_column(index, pa.field(field.name, column.type, field.nullable), column)
    return table


def _literal(value: Any) -> str:
    """Quote a setting value for an INSERT's SETTINGS clause (send_insert takes no params)."""
    if isinstance(value, bool | int | float):
        return str(int(value) if isinstance(value, bool) else value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
