"""The native-protocol transport (clickhouse-driver) against Debian's clickhouse-server 18.16.

``tests/run_tests.sh`` starts the server on a free port (THINKMETER_TEST_CLICKHOUSE_SERVER)
and lets these tests stop and start it (THINKMETER_TEST_CLICKHOUSE_CTL). 18.16 knows
neither ``{name:Type}`` placeholders nor ``log_comment``, so statements here are plain and
system-scoped (the transport drops log_comment for old servers); the schema and every
parameterized query are proven on chdb instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from django.test import override_settings

from tests.support.clickhouse_server import server_ctl
from thinkmeter import clickhouse
from thinkmeter.clickhouse import ClickHouseError, ClickHouseUnavailable
from thinkmeter.clickhouse.client import Transport, make_transport
from thinkmeter.clickhouse.config import parse_clickhouse_url
from thinkmeter.clickhouse.transport_native import NativeTransport

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
TABLE = "t_native"
ROWS = 100_000


@pytest.fixture(scope="module")
def native(clickhouse_server_url: str) -> Iterator[Transport]:
    transport = make_transport(parse_clickhouse_url(clickhouse_server_url, ROOT))
    assert isinstance(transport, NativeTransport)
    transport.command(f"DROP TABLE IF EXISTS {TABLE}", {}, {}, "tests.native.drop")
    yield transport
    try:
        transport.command(f"DROP TABLE IF EXISTS {TABLE}", {}, {}, "tests.native.drop")
    finally:
        transport.close()


def _one(transport: Transport, sql: str, tag: str = "tests.native.select") -> dict:
    rows = transport.query_arrow(sql, {}, {"log_comment": "{}"}, tag).to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_connects_to_the_old_server(native: Transport) -> None:
    version = _one(native, "SELECT version() AS v")["v"]
    assert version.startswith("18.16"), version
    assert native.kind == "native"


def test_create_insert_select_100k_rows(native: Transport) -> None:
    native.command(
        f"CREATE TABLE {TABLE} (d Date, project_id UInt32, n UInt64, name String, amount Decimal(18, 9)) "
        "ENGINE = MergeTree(d, (project_id, n), 8192)",
        {},
        {"log_comment": '{"tag":"tests.native.create"}'},
        "tests.native.create",
    )
    day = dt.date(2025, 1, 15)
    data = pa.table(
        {
            "d": pa.array([day] * ROWS, pa.date32()),
            "project_id": pa.array([i % 3 + 1 for i in range(ROWS)], pa.uint32()),
            "n": pa.array(range(ROWS), pa.uint64()),
            "name": pa.array([f"span-{i}" for i in range(ROWS)]),
            "amount": pa.array([Decimal("0.000000001")] * ROWS, pa.decimal128(18, 9)),
        }
    )
    native.insert_arrow(TABLE, data, {"log_comment": "{}"}, "tests.native.insert")
    totals = _one(
        native,
        f"SELECT count() AS c, sum(n) AS s, sum(project_id) AS p, sum(amount) AS a, uniqExact(name) AS u, "
        f"min(d) AS d FROM {TABLE}",
    )
    assert totals["c"] == ROWS
    assert totals["s"] == ROWS * (ROWS - 1) // 2
    assert totals["p"] == sum(i % 3 + 1 for i in range(ROWS))
    assert totals["a"] == Decimal("0.0001")
    assert totals["u"] == ROWS
    assert totals["d"] == day
    per_project = native.query_arrow(
        f"SELECT project_id, count() AS c FROM {TABLE} GROUP BY project_id ORDER BY project_id",
        {},
        {},
        "tests.native.group",
    ).to_pylist()
    assert per_project == [{"project_id": 1, "c": 33334}, {"project_id": 2, "c": 33333}, {"project_id": 3, "c": 33333}]


def test_public_api_on_the_server(clickhouse_server_url: str, native: Transport) -> None:
    """execute()/query_df() with CLICKHOUSE_URL pointing at the server (system statements)."""
    with override_settings(CLICKHOUSE_URL=clickhouse_server_url):
        clickhouse.reset_transport()
        try:
            assert clickhouse.transport().kind == "native"
            rows = clickhouse.execute(f"SELECT count() AS c FROM {TABLE}", tag="tests.native.api", system=True)
            assert rows == [{"c": ROWS}]
            df = clickhouse.query_df(
                f"SELECT project_id, max(n) AS m FROM {TABLE} GROUP BY project_id ORDER BY project_id",
                tag="tests.native.api.df",
                system=True,
            )
            assert df["m"].tolist() == [99999, 99997, 99998]
            with pytest.raises(ClickHouseError) as info:
                clickhouse.execute("SELECT * FROM no_such_table_native", tag="tests.native.api.error", system=True)
            assert info.value.tag == "tests.native.api.error"
        finally:
            clickhouse.reset_transport()
    assert clickhouse.transport().kind == "chdb"


def test_errors_are_mapped(native: Transport) -> None:
    with pytest.raises(ClickHouseError) as info:
        native.query_arrow("SELECT * FROM no_such_table_native", {}, {}, "tests.native.missing")
    error = info.value
    assert type(error) is ClickHouseError
    assert error.tag == "tests.native.missing"
    assert error.code == 60
    assert "no_such_table_native" in error.message
    with pytest.raises(ClickHouseError) as syntax:
        native.command("SELEKT 1", {}, {}, "tests.native.syntax")
    assert syntax.value.code == 62
    assert "tests.native.syntax" in str(syntax.value)
    # The connection is still usable after errors.
    assert _one(native, "SELECT 1 AS one") == {"one": 1}


def test_reconnects_after_the_server_restarts(native: Transport) -> None:
    assert _one(native, "SELECT 1 AS one") == {"one": 1}
    server_ctl("stop")
    try:
        with pytest.raises(ClickHouseUnavailable) as info:
            native.query_arrow("SELECT 1 AS one", {}, {}, "tests.native.down")
        assert info.value.tag == "tests.native.down"
        assert "cannot reach" in info.value.message
    finally:
        server_ctl("start")
    # The first statement after the restart succeeds, on a fresh connection.
    assert _one(native, "SELECT 2 AS two", "tests.native.after_restart") == {"two": 2}
    assert _one(native, f"SELECT count() AS c FROM {TABLE}")["c"] == ROWS
