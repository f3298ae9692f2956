"""The ClickHouse API on the embedded chdb transport: execute, query_df, insert, scope, errors, lock."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow as pa
import pytest

from thinkmeter.clickhouse import (
    PROJECT_PARAM,
    ClickHouseError,
    EmbeddedStoreLocked,
    ScopeError,
)

ROOT = Path(__file__).resolve().parents[2]
TABLE = "t_transport"
SCOPED = f"SELECT project_id, name, amount FROM {TABLE} WHERE project_id IN {PROJECT_PARAM} ORDER BY name"

@pytest.fixture
def table(ch: ModuleType) -> Iterator[ModuleType]:
    ch.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (project_id UInt32, name String, amount Decimal(18, 9), n UInt64) "
        "ENGINE = MergeTree ORDER BY (project_id, name)",
        tag="tests.create",
        system=True,
    )
    ch.execute(f"TRUNCATE TABLE {TABLE}", tag="tests.truncate", system=True)
    yield ch
    ch.execute(f"DROP TABLE IF EXISTS {TABLE}", tag="tests.drop", system=True)

def test_transport_is_chdb(ch: ModuleType) -> None:
    assert ch.transport().kind == "chdb"
    assert ch.config().path == Path(os.environ["CLICKHOUSE_URL"].removeprefix("chdb://"))

def test_execute_returns_rows_as_dicts(ch: ModuleType) -> None:
    rows = ch.execute(
        "SELECT number AS n, toString(number * 2) AS s FROM system.numbers LIMIT 3", tag="tests.rows", system=True
    )
    assert rows == [{"n": 0, "s": "0"}, {"n": 1, "s": "2"}, {"n": 2, "s": "4"}]

def test_insert_dict_of_lists(table: ModuleType) -> None:
    count = table.insert(
        TABLE,
        {"project_id": [7, 7], "name": ["a", "b"], "amount": [Decimal("1.5"), Decimal("2.25")], "n": [1, 2]},
        tag="tests.insert.dict",
        project=7,
    )
    assert count == 2
    rows = table.execute(SCOPED, tag="tests.select", projects=7)
    assert [(r["name"], r["amount"]) for r in rows] == [("a", Decimal("1.5")), ("b", Decimal("2.25"))]

def test_insert_dataframe_and_query_df(table: ModuleType) -> None:
    frame = pd.DataFrame(
        {
            "project_id": pd.Series([3, 3, 3], dtype="uint32"),
            "name": ["x", "y", "z"],
            "amount": [Decimal("0.1"), Decimal("0.2"), Decimal("0.3")],
            "n": pd.Series([10, 20, 30], dtype="uint64"),
        }
    )
    assert table.insert(TABLE, frame, tag="tests.insert.df", project=3) == 3
    df = table.query_df(
        f"SELECT name, n, amount FROM {TABLE} WHERE project_id IN {PROJECT_PARAM} ORDER BY name",
        tag="tests.df",
        projects=[3],
    )
    assert isinstance(df, pd.DataFrame)
    assert df["name"].tolist() == ["x", "y", "z"]
    assert df["n"].sum() == 60
    assert df["amount"].tolist() == [Decimal("0.1"), Decimal("0.2"), Decimal("0.3")]

def test_insert_arrow_table(table: ModuleType) -> None:
    arrow = pa.table(
        {
            "project_id": pa.array([5] * 1000, pa.uint32()),
            "name": pa.array([f"row{i:04d}" for i in range(1000)]),
            "amount": pa.array([Decimal("0.000000001")] * 1000, pa.decimal128(18, 9)),
            "n": pa.array(range(1000), pa.uint64()),
        }
    )
    assert table.insert(TABLE, arrow, tag="tests.insert.arrow", project=5) == 1000
    result = table.query_arrow(
        f"SELECT count() AS c, sum(n) AS s FROM {TABLE} WHERE project_id IN {PROJECT_PARAM}",
        tag="tests.arrow",
        projects=5,
    )
    assert result.to_pylist() == [{"c": 1000, "s": sum(range(1000))}]

def test_decimal_sums_are_exact(table: ModuleType) -> None:
    # 0.1 + 0.2 is not 0.3 in floats; 100,000 nanodollars must add up to exactly 0.0001.
    amounts = [Decimal("0.1"), Decimal("0.2")] + [Decimal("0.000000001")] * 100_000
    table.insert(
        TABLE,
        {"project_id": [1] * len(amounts), "name": ["d"] * len(amounts), "amount": amounts, "n": [0] * len(amounts)},
        tag="tests.insert.decimal",
        project=1,
    )
    rows = table.execute(
        f"SELECT sum(amount) AS total FROM {TABLE} WHERE project_id IN {PROJECT_PARAM}", tag="tests.sum", projects=1
    )
    assert rows[0]["total"] == Decimal("0.3001")
    assert isinstance(rows[0]["total"], Decimal)

def test_values_are_bound_not_formatted(table: ModuleType) -> None:
    evil = "O'Brien'; DROP TABLE t_transport; --"
    echoed = table.execute("SELECT {v:String} AS v", {"v": evil}, tag="tests.bound", system=True)
    assert echoed == [{"v": evil}]
    table.insert(
        TABLE,
        {"project_id": [2, 2], "name": [evil, "plain"], "amount": [Decimal(1), Decimal(2)], "n": [1, 2]},
        tag="tests.insert.evil",
        project=2,
    )
    rows = table.execute(
        f"SELECT name, n FROM {TABLE} WHERE project_id IN {PROJECT_PARAM} AND name = {{name:String}}",
        {"name": evil},
        tag="tests.bound.filter",
        projects=2,
    )
    assert rows == [{"name": evil, "n": 1}]
    exists = table.execute(
        "SELECT count() AS c FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        {"t": TABLE},
        tag="tests.exists",
        system=True,
    )
    assert exists == [{"c": 1}]

def test_project_scope_filters_rows(table: ModuleType) -> None:
    for project in (1, 2):
        table.insert(
            TABLE,
            {"project_id": [project], "name": [f"p{project}"], "amount": [Decimal(project)], "n": [project]},
            tag="tests.insert.scope",
            project=project,
        )
    assert [r["name"] for r in table.execute(SCOPED, tag="tests.scope", projects=1)] == ["p1"]
    assert [r["name"] for r in table.execute(SCOPED, tag="tests.scope", projects=[2])] == ["p2"]
    assert [r["name"] for r in table.execute(SCOPED, tag="tests.scope", projects=[1, 2])] == ["p1", "p2"]

def test_scope_is_required(table: ModuleType) -> None:
    with pytest.raises(ScopeError, match="no project scope"):
        table.execute(f"SELECT count() FROM {TABLE}", tag="tests.unscoped")
    with pytest.raises(ScopeError, match=r"must filter on \{project_ids:Array\(UInt32\)\}"):
        table.execute(f"SELECT count() FROM {TABLE} WHERE project_id = 1", tag="tests.nofilter", projects=1)
    with pytest.raises(ScopeError, match="either projects or system"):
        table.execute(SCOPED, tag="tests.both", projects=1, system=True)
    with pytest.raises(ScopeError, match="needs a tag"):
        table.execute(SCOPED, tag="", projects=1)
    with pytest.raises(ScopeError, match="no project scope"):
        table.query_df(f"SELECT * FROM {TABLE}", tag="tests.df.unscoped")

def test_insert_scope_is_enforced(table: ModuleType) -> None:
    row = {"name": ["x"], "amount": [Decimal(1)], "n": [1]}
    with pytest.raises(ScopeError, match=r"rows for projects \[9\] in an insert scoped to 1"):
        table.insert(TABLE, {"project_id": [1, 9], **{k: v * 2 for k, v in row.items()}}, tag="t", project=1)
    with pytest.raises(ScopeError, match="no project scope"):
        table.insert(TABLE, {"project_id": [1], **row}, tag="tests.insert.noscope")
    with pytest.raises(ScopeError, match="needs a project_id column"):
        table.insert(TABLE, row, tag="tests.insert.nocolumn", project=1)
    count = table.execute(f"SELECT count() AS c FROM {TABLE}", tag="tests.count", system=True)
    assert count == [{"c": 0}]

def test_errors_name_the_tag_and_clickhouse_message(ch: ModuleType) -> None:
    with pytest.raises(ClickHouseError) as info:
        ch.execute("SELECT * FROM no_such_table_here", tag="tests.missing_table", system=True)
    error = info.value
    assert type(error) is ClickHouseError
    assert error.tag == "tests.missing_table"
    assert "no_such_table_here" in error.message
    assert error.code == 60  # UNKNOWN_TABLE
    assert "tests.missing_table" in str(error) and "no_such_table_here" in str(error)

def test_insert_errors_are_mapped(table: ModuleType) -> None:
    with pytest.raises(ClickHouseError) as info:
        table.insert(
            TABLE, {"project_id": [1], "no_such_column": ["x"]}, tag="tests.insert.badcolumn", project=1
        )
    assert info.value.tag == "tests.insert.badcolumn"
    assert "no_such_column" in info.value.message

def test_log_comment_carries_tag_and_projects(ch: ModuleType) -> None:
    # chdb keeps no system.query_log (the table does not exist in the embedded engine), so we
    # read the setting back inside the statement: it is what a server records in query_log.
    missing = ch.execute(
        "SELECT count() AS c FROM system.tables WHERE database = 'system' AND name = 'query_log'",
        tag="tests.query_log",
        system=True,
    )
    assert missing == [{"c": 0}], "chdb now has query_log: assert on it here instead"
    scoped = ch.execute(
        f"SELECT getSetting('log_comment') AS c WHERE has({PROJECT_PARAM}, 7)", tag="tests.comment", projects=[9, 7]
    )
    assert json.loads(scoped[0]["c"]) == {"tag": "tests.comment", "projects": [7, 9]}
    system = ch.execute("SELECT getSetting('log_comment') AS c", tag="tests.comment.system", system=True)
    assert json.loads(system[0]["c"]) == {"tag": "tests.comment.system", "projects": "system"}

def test_a_second_process_gets_a_clear_error(ch: ModuleType) -> None:
    ch.execute("SELECT 1", tag="tests.open", system=True)  # this process holds the store
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from thinkmeter.clickhouse import EmbeddedStoreLocked, execute
        try:
            execute("SELECT 1", tag="tests.second_process", system=True)
        except EmbeddedStoreLocked as exc:
            print(exc)
            raise SystemExit(3)
        print("opened")
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "thinkmeter.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stdout
    assert "single-process" in message
    assert "clickhouse://" in message
    assert f"pid {os.getpid()}" in message
    assert issubclass(EmbeddedStoreLocked, ClickHouseError)

def test_datetime_columns_come_back_as_datetimes(ch: ModuleType) -> None:
    # ClickHouse's Arrow output writes DateTime as bare uint32; the transport restores the type
    # (as the server transport returns datetimes) and leaves real UInt32 columns alone.
    rows = ch.execute(
        "SELECT toDateTime('2026-01-01 10:30:00', 'UTC') AS t, toStartOfHour(t) AS h, toUInt32(7) AS u, "
        "CAST(NULL AS Nullable(DateTime('UTC'))) AS n",
        tag="tests.datetime",
        system=True,
    )

    assert rows == [
        {
            "t": dt.datetime(2026, 1, 1, 10, 30, tzinfo=dt.UTC),
            "h": dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC),
            "u": 7,
            "n": None,
        }
    ]
    assert isinstance(rows[0]["u"], int)
