"""Cluster-mode DDL (``CLICKHOUSE_CLUSTER``): rendered for both modes, and run on chdb.

The rendering checks read the statements every migration produces with and without a
cluster. The execution check runs the cluster-mode statements of every migration on a
chdb store of its own (in a child process: chdb opens one store per process) whose
configuration defines a one-shard cluster ``thinkmeter`` on localhost, so the
Distributed tables are real and route to the local ones. chdb has no Keeper, so each
Replicated engine is swapped back to its plain engine and ``ON CLUSTER`` is removed:
exactly those substrings, each checked to be present, and nothing else changes.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from thinkmeter.clickhouse import ClickHouseConfigError, schema
from thinkmeter.clickhouse.ddl import SchemaContext

CLUSTER = "thinkmeter"
CLUSTERED = SchemaContext(retention_days=395, cluster=CLUSTER, database="thinkmeter")
SINGLE = SchemaContext(retention_days=395)

# Every table the migrations create, with its engine in single-node mode and its shard key.
ENGINES = {
    "spans": "ReplacingMergeTree(counted)",
    "scores": "ReplacingMergeTree(created_at)",
    "usage_hourly": "AggregatingMergeTree",
    "usage_daily_users": "AggregatingMergeTree",
    "usage_daily": "AggregatingMergeTree",
    "usage_daily_user_totals": "AggregatingMergeTree",
    "sampled_calls": "MergeTree",
}
TRACE = "cityHash64(project_id, trace_id)"
SHARD_KEYS = {"spans": TRACE, "scores": TRACE, "sampled_calls": TRACE, "usage_hourly": "project_id",
              "usage_daily_users": "project_id", "usage_daily": "project_id", "usage_daily_user_totals": "project_id"}
VIEWS = {f"{target}_mv": target for target in
         ("usage_hourly", "usage_daily_users", "usage_daily", "usage_daily_user_totals", "sampled_calls")}
DDL = ("CREATE ", "ALTER ", "DROP ")


def _all(ctx: SchemaContext) -> list[str]:
    return [s for name in schema.available() for s in schema.render(name, ctx)]


def _replicated(table: str) -> str:
    family, _, rest = ENGINES[table].partition("(")
    extra = f", {rest[:-1]}" if rest else ""
    return f"Replicated{family}('/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'{extra})"


# -- rendering -------------------------------------------------------------------------------


def test_single_node_ddl_has_no_cluster_parts() -> None:
    text = "\n".join(_all(SINGLE))
    for word in ("ON CLUSTER", "Replicated", "Distributed", "_local", "{shard}", "{replica}"):
        assert word not in text
    for table, engine in ENGINES.items():
        assert f"CREATE TABLE IF NOT EXISTS {table} (" in text
        assert f"ENGINE = {engine}\n" in text
    assert schema.record_table(SINGLE) == [
        "CREATE TABLE IF NOT EXISTS thinkmeter_migrations (\n    name String,\n    applied_at DateTime DEFAULT now()\n)\n"
        "ENGINE = ReplacingMergeTree\nORDER BY name"
    ]


def test_cluster_ddl_replicated_local_tables_and_distributed_tables() -> None:
    statements = _all(CLUSTERED)
    text = "\n".join(statements)
    for statement in statements:
        head = statement.split("\n", 1)[0]
        if statement.startswith(DDL):
            assert f" ON CLUSTER '{CLUSTER}'" in head, head
        else:  # data copied by a migration: once, through the Distributed tables
            assert statement.startswith("INSERT INTO ") and "ON CLUSTER" not in statement, head
            assert head.split()[2] in ENGINES, head
    for table in ENGINES:
        local = f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER '{CLUSTER}' ("
        assert text.count(local) == 1, table
        assert f"ENGINE = {_replicated(table)}\n" in text
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER '{CLUSTER}' AS {table}_local\n"
            f"ENGINE = Distributed('{CLUSTER}', 'thinkmeter', '{table}_local', {SHARD_KEYS[table]})"
        )
        assert distributed in statements, table
    # The spec's example, spelled out once in full.
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/spans_local', '{replica}', "
        "counted)\nPARTITION BY toYYYYMM(start_time)\nORDER BY (project_id, toDate(start_time), trace_id, span_id)\n"
        "TTL toDateTime(start_time) + INTERVAL 395 DAY\nSETTINGS index_granularity = 8192"
    ) in text
    # Materialized views read the local spans and write the local rollups.
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert {v.split()[6] for v in views} == set(VIEWS)
    for mv in views:
        view = mv.split()[6]
        assert mv.startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} ON CLUSTER '{CLUSTER}' TO {VIEWS[view]}_local AS")
        assert "\nFROM spans_local AS spans\n" in mv
    # Column changes reach the local and the Distributed table.
    alters = [s for s in statements if s.startswith("ALTER TABLE")]
    for statement in alters:
        assert " ON CLUSTER " in statement
    assert schema.record_table(CLUSTERED) == [
        f"CREATE TABLE IF NOT EXISTS thinkmeter_migrations ON CLUSTER '{CLUSTER}' (\n    name String,\n"
        "    applied_at DateTime DEFAULT now()\n)\nENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/all/{database}/thinkmeter_migrations', '{replica}')\nORDER BY name"
    ]


def test_column_changes_go_to_local_and_distributed_tables() -> None:
    assert CLUSTERED.add_column("spans", "x UInt8 DEFAULT 0", after="project_id") == [
        f"ALTER TABLE spans_local ON CLUSTER '{CLUSTER}' ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER project_id",
        f"ALTER TABLE spans ON CLUSTER '{CLUSTER}' ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER project_id",
    ]
    assert SINGLE.add_column("spans", "x UInt8 DEFAULT 0") == ["ALTER TABLE spans ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0"]
    assert CLUSTERED.drop_column("spans", "x")[1] == f"ALTER TABLE spans ON CLUSTER '{CLUSTER}' DROP COLUMN IF EXISTS x"
    # Other changes (indexes, TTL) concern the rows' table only.
    assert CLUSTERED.alter_table("spans", "MATERIALIZE INDEX idx_user_id") == [
        f"ALTER TABLE spans_local ON CLUSTER '{CLUSTER}' MATERIALIZE INDEX idx_user_id"
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda: SchemaContext(395, cluster="bad'name"),
        lambda: SchemaContext(395, database="db; DROP"),
        lambda: SINGLE.create_table("spans x", ["a UInt8"], engine="MergeTree", order_by="a", shard_by="a"),
        lambda: SINGLE.create_table("t", ["a UInt8"], engine="Log", order_by="a", shard_by="a"),
        lambda: SINGLE.create_table("t", ["a UInt8"], engine="MergeTree(", order_by="a", shard_by="a"),
        lambda: SINGLE.alter_table("t"),
    ],
)
def test_bad_input_is_refused(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_cluster_needs_a_server() -> None:
    with override_settings(CLICKHOUSE_CLUSTER=CLUSTER):
        with pytest.raises(ClickHouseConfigError, match="needs a ClickHouse server"):
            schema.context_from_settings()
    with override_settings(CLICKHOUSE_CLUSTER=CLUSTER, CLICKHOUSE_URL="clickhouse://u:p@ch1:9000/metrics"):
        ctx = schema.context_from_settings()
    assert (ctx.cluster, ctx.database) == (CLUSTER, "metrics")
    assert "Distributed('thinkmeter', 'metrics', 'spans_local'" in "\n".join(schema.render("0001_spans", ctx))


# -- execution on chdb -------------------------------------------------------------------------

CHDB_CONFIG = f"""<clickhouse>
    <tcp_port>9000</tcp_port>
    <remote_servers>
        <{CLUSTER}><shard><replica><host>localhost</host><port>9000</port></replica></shard></{CLUSTER}>
    </remote_servers>
    <macros><shard>01</shard><replica>node-1</replica></macros>
</clickhouse>
"""


def _swap_for_chdb(statement: str, ctx: SchemaContext) -> str:
    """Remove ON CLUSTER and turn each Replicated engine back into its plain engine (checked substrings)."""
    if not statement.startswith(DDL):
        return statement  # data copied by a migration runs as rendered
    assert ctx.on_cluster in statement
    out = statement.replace(ctx.on_cluster, "")
    for table, engine in {**ENGINES, "thinkmeter_migrations": "ReplacingMergeTree"}.items():
        for local, path in ((f"{table}_local", "/clickhouse/tables/{shard}/{database}/"),
                            (table, "/clickhouse/tables/all/{database}/")):
            replicated = ctx.engine(engine, local, path)
            if f"ENGINE = {replicated}\n" in out:
                out = out.replace(f"ENGINE = {replicated}\n", f"ENGINE = {engine}\n")
    assert "Replicated" not in out, out
    return out


def _run_on_chdb(store: str, config: str, statements: list[str], queries: list[str]) -> list[list[dict[str, Any]]]:
    """Child process: open ``store`` with ``config``, run ``statements``, return each query's rows."""
    import chdb

    conn = chdb.connect(f"{store}?config-file={config}")
    for statement in statements:
        conn.query(statement, "Null")
    return [conn.query(q, "ArrowTable").to_pylist() for q in queries]


SPAN_COLUMNS = "project_id, trace_id, span_id, start_time, model, task_type, tier, has_usage, counted, reasoning_tokens, cost_total"


def _span(project: int, trace: str, span: str, counted: int, reasoning: int) -> str:
    return (f"({project}, '{trace}', '{span}', now64(9) - INTERVAL 1 DAY, 'o3', 'code', 3, true, {counted}, "
            f"{reasoning}, 0.5)")


def test_cluster_ddl_runs_on_chdb_and_the_views_fill_local_rollups(tmp_path: Path) -> None:
    ctx = SchemaContext(retention_days=395, cluster=CLUSTER, database="default")
    ddl = [_swap_for_chdb(s, ctx) for s in [*schema.record_table(ctx), *_all(ctx)]]
    config = tmp_path / "config.xml"
    config.write_text(CHDB_CONFIG)
    inserts = [
        # Through the Distributed table, as the writer does; the third row re-sends span s1 (counted = 0).
        f"INSERT INTO spans ({SPAN_COLUMNS}) VALUES {_span(1, 't1', 's1', 1, 100)}, {_span(1, 't1', 's2', 1, 300)}, "
        f"{_span(2, 't9', 's1', 1, 5)}, {_span(1, '0001', 's5', 1, 50)}",
        f"INSERT INTO spans ({SPAN_COLUMNS}) VALUES {_span(1, 't1', 's1', 0, 100)}",
        "INSERT INTO scores (project_id, trace_id, span_id, name, value) VALUES (1, 't1', 's1', 'verifier', 1)",
        "INSERT INTO thinkmeter_migrations (name) VALUES ('0001_spans')",
        "OPTIMIZE TABLE spans_local FINAL",
    ]
    queries = [
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name",
        "SELECT count() AS n FROM spans_local",
        "SELECT project_id, sum(requests) AS requests, sum(reasoning_tokens) AS reasoning FROM usage_hourly_local "
        "GROUP BY project_id ORDER BY project_id",
        "SELECT project_id, sum(requests) AS requests, sum(reasoning_tokens) AS reasoning FROM usage_hourly "
        "GROUP BY project_id ORDER BY project_id",
        "SELECT user_id, sum(requests) AS requests FROM usage_daily_users WHERE project_id = 1 GROUP BY user_id",
        "SELECT project_id, sum(requests) AS requests, sum(reasoning_tokens) AS reasoning FROM usage_daily "
        "GROUP BY project_id ORDER BY project_id",
        "SELECT trace_id, reasoning_tokens FROM sampled_calls",
        "SELECT count() AS n FROM scores",
        "SELECT name FROM thinkmeter_migrations",
    ]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        tables, spans, local_rollup, rollup, users, daily, sampled, scores, record = pool.apply(
            _run_on_chdb, (str(tmp_path / "store"), str(config), ddl + inserts, queries)
        )
    engines = {row["name"]: row["engine"] for row in tables}
    for table, engine in ENGINES.items():
        assert engines[f"{table}_local"] == engine.split("(")[0]
        assert engines[table] == "Distributed"
    for view in VIEWS:
        assert engines[view] == "MaterializedView"
    assert engines["thinkmeter_migrations"] == "ReplacingMergeTree"
    assert spans == [{"n": 4}]  # the re-sent copy of s1 collapsed into the stored one
    expected = [{"project_id": 1, "requests": 3, "reasoning": 450}, {"project_id": 2, "requests": 1, "reasoning": 5}]
    assert local_rollup == expected
    assert rollup == expected  # read back through the Distributed rollup
    assert daily == expected
    assert users == [{"user_id": "", "requests": 3}]
    assert sampled == [{"trace_id": "0001", "reasoning_tokens": 50}]  # trace ids below 0800 only
    assert scores == [{"n": 1}]
    assert record == [{"name": "0001_spans"}]


def test_reprice_refuses_cluster_mode_clearly() -> None:
    from django.core.management import CommandError, call_command

    with override_settings(CLICKHOUSE_CLUSTER=CLUSTER):
        with pytest.raises(CommandError, match="does not support cluster mode yet"):
            call_command("reprice", "--project", "acme", "--from", "2025-01-01", "--to", "2025-01-02")


@pytest.mark.server
def test_pending_only_reads(clickhouse_server_url: str) -> None:
    """``/readyz`` asks for pending migrations often: that must never run (distributed) DDL.

    On the 18.16 server, which has no cluster and no record table, the answer is "all of
    them" and the record table still does not exist afterwards.
    """
    from thinkmeter import clickhouse

    with override_settings(CLICKHOUSE_URL=clickhouse_server_url, CLICKHOUSE_CLUSTER=CLUSTER):
        clickhouse.reset_transport()
        try:
            clickhouse.execute("DROP TABLE IF EXISTS thinkmeter_migrations", tag="tests.cluster.pending", system=True)
            assert schema.pending() == schema.available()
            exists = clickhouse.execute("EXISTS TABLE thinkmeter_migrations", tag="tests.cluster.pending", system=True)
        finally:
            clickhouse.reset_transport()
    assert [list(row.values()) for row in exists] == [[0]]
