"""Server transport: a ClickHouse server over the native protocol (clickhouse-driver).

Values are bound server-side (``server_side_params``) on servers that know ``{name:Type}``
placeholders; very old servers (Debian's 18.16, used to prove this transport in CI)
get statements without parameters and without ``log_comment``, which they do not know.
A connection error is retried once on a fresh connection, so the first statement after
a server restart succeeds; if the retry fails too the caller sees ClickHouseUnavailable.
An INSERT is never sent twice: a pooled connection is pinged before the insert (a stale
one is replaced), and a connection error after the data went out is reported as
ClickHouseUnavailable, because the server may have committed the block; the receiver
answers 503 and the exporter's retry goes through span deduplication.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pyarrow as pa
from clickhouse_driver import Client
from clickhouse_driver import errors as driver_errors

from thinkmeter.clickhouse.config import ClickHouseConfig
from thinkmeter.clickhouse.errors import ClickHouseError, ClickHouseUnavailable

NETWORK_ERRORS = (
    driver_errors.NetworkError,
    driver_errors.SocketTimeoutError,
    EOFError,
    ConnectionError,
    socket.timeout,
    OSError,
)


class NativeTransport:
    kind = "native"

    def __init__(self, config: ClickHouseConfig) -> None:
        self.config = config
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(
                host=self.config.host,
                port=self.config.port,
                user=self.config.user,
                password=self.config.password,
                database=self.config.database,
                secure=self.config.secure,
                connect_timeout=5,
                send_receive_timeout=300,
                settings={"use_numpy": False},
                **({"alt_hosts": ",".join(self.config.alt_hosts)} if self.config.alt_hosts else {}),
            )
            self._local.client = client
        return client

    def _reset(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # already broken
                pass
        self._local.client = None

    def _modern(self, client: Client) -> bool:
        info = client.connection.server_info
        return info is not None and (info.version_major, info.version_minor) >= (22, 8)

    def _run(self, tag: str, call: Any, resend: bool = True) -> Any:
        """Run ``call`` on this thread's connection; ``resend=False`` for statements not safe to repeat."""
        for attempt in (1, 2):
            client = self._client()
            sent = False
            try:
                connection = client.connection
                if connection.server_info is None:
                    # connect(), not force_connect(): the latter marks a query as executing,
                    # and the execute() that follows would fail as a "simultaneous query".
                    connection.connect()
                elif not resend and not connection.ping():
                    raise ConnectionError("stale connection")
                sent = True
                return call(client)
            except NETWORK_ERRORS as exc:
                self._reset()
                if attempt == 2 or (sent and not resend):
                    raise ClickHouseUnavailable(tag, f"cannot reach {self.config.describe()}: {exc}") from exc
            except driver_errors.Error as exc:
                raise ClickHouseError(tag, getattr(exc, "message", None) or str(exc), getattr(exc, "code", None)) from exc
        raise AssertionError("unreachable")

    def _settings(self, client: Client, settings: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if not self._modern(client):
            return {k: v for k, v in settings.items() if k != "log_comment"}
        out = dict(settings)
        if params:
            out["server_side_params"] = True
        return out

    def query_arrow(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> pa.Table:
        def call(client: Client) -> pa.Table:
            rows, columns = client.execute(
                sql, params or None, with_column_types=True, columnar=True,
                settings=self._settings(client, settings, params),
            )
            names = [name for name, _ in columns]
            data = {name: list(rows[i]) if rows else [] for i, name in enumerate(names)}
            return pa.table(data) if names else pa.table({})

        return self._run(tag, call)

    def command(self, sql: str, params: dict[str, Any], settings: dict[str, Any], tag: str) -> None:
        self._run(tag, lambda client: client.execute(sql, params or None, settings=self._settings(client, settings, params)))

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, Any], tag: str) -> None:
        columns = []
        for field, column in zip(data.schema, data.columns, strict=True):
            values = column.to_pylist()
            if pa.types.is_map(field.type):
                values = [dict(v) if v is not None else {} for v in values]
            columns.append(values)
        names = ", ".join(f"`{name}`" for name in data.column_names)

        def call(client: Client) -> None:
            client.execute(
                f"INSERT INTO {table} ({names}) VALUES", columns, columnar=True,
                settings=self._settings(client, settings, {}),
            )

        self._run(tag, call, resend=False)

    def close(self) -> None:
        self._reset()
