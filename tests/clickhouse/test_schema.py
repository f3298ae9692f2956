"""ClickHouse schema migrations on chdb: idempotence, the spans table, and the rollups."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.test import override_settings

from thinkmeter.clickhouse import PROJECT_PARAM, schema

SPANS_TYPES = {
    "project_id": "UInt32",
    "trace_id": "String",
    "span_id": "String",
    "parent_span_id": "String",
    "name": "LowCardinality(String)",
    "kind": "LowCardinality(String)",
    "start_time": "DateTime64(9, 'UTC')",
    "duration_ns": "UInt64",
    "status": "LowCardinality(String)",
    "service": "LowCardinality(String)",
    "environment": "LowCardinality(String)",
    "provider": "LowCardinality(String)",
    "model": "LowCardinality(String)",
    "operation": "LowCardinality(String)",
    "task_type": "LowCardinality(String)",
    "tier": "UInt8",
    "user_id": "String",
    "session_id": "String",
    "thinking_budget": "UInt32",
    "reasoning_effort": "LowCardinality(String)",
    "ttft_ms": "Float32",
    "input_tokens": "UInt64",
    "cache_read_tokens": "UInt64",
    "cache_write_tokens": "UInt64",
    "output_tokens": "UInt64",
    "reasoning_tokens": "UInt64",
    "reasoning_estimated": "Bool",
    "cost_input": "Decimal(18, 9)",
    "cost_cache_read": "Decimal(18, 9)",
    "cost_cache_write": "Decimal(18, 9)",
    "cost_output_visible": "Decimal(18, 9)",
    "cost_reasoning": "Decimal(18, 9)",
    "cost_total": "Decimal(18, 9)",
    "reported_cost": "Nullable(Decimal(18, 9))",
    "price_id": "UInt32",
    "priced": "Bool",
    "quality": "Nullable(Float32)",
    "counted": "UInt8",
    "attributes": "Map(LowCardinality(String), String)",
    "resource_attributes": "Map(LowCardinality(String), String)",
}


def _table(ch: ModuleType, name: str) -> dict[str, Any]:
    rows = ch.execute(
        "SELECT engine, partition_key, sorting_key, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = {name:String}",
        {"name": name},
        tag="tests.schema.table",
        system=True,
    )
    assert len(rows) == 1, f"table {name} missing"
    return rows[0]


def test_migrations_apply_twice(ch: ModuleType) -> None:
    names = schema.available()
    assert names == sorted(names) and names[:3] == ["0001_spans", "0002_scores", "0003_rollups"]
    assert schema.pending() == []
    assert schema.migrate(schema.context_from_settings()) == []
    # Every statement is idempotent on its own too (a half-applied migration can rerun).
    for name in names:
        for statement in schema.render(name, schema.context_from_settings()):
            ch.execute(statement, tag="tests.schema.rerun", system=True)
    recorded = ch.execute(
        "SELECT name, count() AS n FROM thinkmeter_migrations GROUP BY name ORDER BY name",
        tag="tests.schema.recorded",
        system=True,
    )
    assert recorded == [{"name": name, "n": 1} for name in names]
    marker = Path(ch.config().path) / "schema_version"
    assert marker.read_text().split() == names
    assert schema.up_to_date_without_opening(ch.config())


def test_spans_columns_are_typed(ch: ModuleType) -> None:
    rows = ch.execute(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'spans'",
        tag="tests.schema.columns",
        system=True,
    )
    types = {row["name"]: row["type"] for row in rows}
    mismatched = {name: (expected, types.get(name)) for name, expected in SPANS_TYPES.items() if types.get(name) != expected}
    assert mismatched == {}


def test_spans_engine_order_partition_ttl(ch: ModuleType) -> None:
    spans = _table(ch, "spans")
    assert spans["engine"] == "ReplacingMergeTree"
    assert spans["sorting_key"].split(",")[0].strip() == "project_id"
    assert [k.strip() for k in spans["sorting_key"].split(",")][-2:] == ["trace_id", "span_id"]
    assert spans["partition_key"] == "toYYYYMM(start_time)"
    days = settings.CLICKHOUSE_RETENTION_DAYS
    assert f"TTL toDateTime(start_time) + toIntervalDay({days})" in spans["engine_full"]
    for name in ("scores", "usage_hourly", "usage_daily_users"):
        table = _table(ch, name)
        assert table["sorting_key"].startswith("project_id")
        assert f"toIntervalDay({days})" in table["engine_full"]


def test_every_merge_tree_table_removes_outdated_parts_serially(ch: ModuleType) -> None:
    """0006's cleanup settings reach every MergeTree table that holds rows, so the engine
    never starts its 128-thread part-removal pool inside the serving process. A table a
    later migration adds without them fails here."""
    rows = ch.execute(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != {record:String}",
        {"record": schema.RECORD_TABLE},
        tag="tests.schema.settings",
        system=True,
    )
    assert len(rows) >= 7
    missing = [row["name"] for row in rows
               if "concurrent_part_removal_threshold = 1000000" not in row["engine_full"]
               or "max_cleanup_delay_period = 30" not in row["engine_full"]]
    assert missing == []


def test_retention_comes_from_settings() -> None:
    with override_settings(CLICKHOUSE_RETENTION_DAYS=30):
        ctx = schema.context_from_settings()
    assert ctx.retention_days == 30
    for name in ("0001_spans", "0002_scores", "0003_rollups"):
        text = "\n".join(schema.render(name, ctx))
        assert "INTERVAL 30 DAY" in text
        assert "INTERVAL 395 DAY" not in text


# Recent enough that the retention TTL keeps the rows (ClickHouse drops expired rows on insert).
HOUR = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def _spans(rows: list[dict[str, Any]]) -> pa.Table:
    defaults: dict[str, Any] = {
        "project_id": 1,
        "trace_id": "t",
        "service": "checkout",
        "environment": "prod",
        "provider": "openai",
        "model": "o3",
        "operation": "chat",
        "task_type": "code",
        "tier": 3,
        "user_id": "u1",
        "status": "ok",
        "priced": True,
        "has_usage": True,
        "input_tokens": 0,
        "output_tokens": 0,
        "reasoning_tokens": 0,
        "duration_ns": 0,
        "cost_total": Decimal(0),
        "counted": 1,
    }
    full = [{**defaults, **row} for row in rows]
    schema_ = pa.schema(
        [
            ("project_id", pa.uint32()),
            ("trace_id", pa.string()),
            ("span_id", pa.string()),
            ("start_time", pa.timestamp("ns", tz="UTC")),
            ("service", pa.string()),
            ("environment", pa.string()),
            ("provider", pa.string()),
            ("model", pa.string()),
            ("operation", pa.string()),
            ("task_type", pa.string()),
            ("tier", pa.uint8()),
            ("user_id", pa.string()),
            ("status", pa.string()),
            ("priced", pa.bool_()),
            ("has_usage", pa.bool_()),
            ("input_tokens", pa.uint64()),
            ("output_tokens", pa.uint64()),
            ("reasoning_tokens", pa.uint64()),
            ("duration_ns", pa.uint64()),
            ("cost_total", pa.decimal128(18, 9)),
            ("counted", pa.uint8()),
        ]
    )
    return pa.Table.from_pylist(full, schema=schema_)


def test_rollups_count_only_counted_rows_and_merge_quantiles(ch: ModuleType) -> None:
    def spans_of(numbers: range, cost: str, **columns: Any) -> list[dict[str, Any]]:
        """Span ``s<i>`` for each i: i minutes into the hour, 100·i reasoning tokens, i seconds long."""
        return [
            {
                "span_id": f"s{i}",
                "start_time": HOUR + dt.timedelta(minutes=i),
                "input_tokens": 1000,
                "output_tokens": 500 + 100 * i,
                "reasoning_tokens": 100 * i,
                "duration_ns": i * 1_000_000_000,
                "cost_total": Decimal("0.000000001") * i + Decimal(cost),
                **columns,
            }
            for i in numbers
        ]

    batch_a = spans_of(range(1, 6), "0.1")
    batch_b = spans_of(range(6, 11), "0.2", user_id="u2")
    # A re-sent copy of batch A, stored for the trace view with counted = 0, and with
    # numbers so large that counting them would be impossible to miss.
    resent = [{**row, "counted": 0, "reasoning_tokens": 10**9, "output_tokens": 10**9, "cost_total": Decimal(99)}
              for row in batch_a]
    for batch in (batch_a, batch_b, resent):
        ch.insert("spans", _spans(batch), tag="tests.schema.spans", project=1)
    # The other project's spans never leak into project 1's numbers.
    ch.insert("spans", _spans([{**batch_a[0], "project_id": 2}]), tag="tests.schema.spans", project=2)

    stored = ch.execute(
        f"SELECT count() AS n FROM spans WHERE project_id IN {PROJECT_PARAM}", tag="tests.schema.raw", projects=1
    )
    assert stored == [{"n": 15}]

    hourly = ch.execute(
        f"""
        SELECT hour, model, task_type, tier,
            sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            sum(reasoning_tokens) AS reasoning_tokens, sum(cost_total) AS cost_total,
            sum(with_thinking) AS with_thinking,
            quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(reasoning_q) AS reasoning_q,
            quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(duration_q) AS duration_q
        FROM usage_hourly
        WHERE project_id IN {PROJECT_PARAM}
        GROUP BY hour, model, task_type, tier
        """,
        tag="tests.schema.hourly",
        projects=1,
    )
    assert len(hourly) == 1
    row = hourly[0]
    assert row["hour"] == HOUR
    assert (row["model"], row["task_type"], row["tier"]) == ("o3", "code", 3)
    assert row["requests"] == 10
    assert row["input_tokens"] == 10_000
    assert row["output_tokens"] == sum(500 + 100 * i for i in range(1, 11))
    assert row["reasoning_tokens"] == sum(100 * i for i in range(1, 11))
    assert row["with_thinking"] == 10
    assert row["cost_total"] == Decimal("0.5") + Decimal("1.0") + Decimal("0.000000055")
    # Quantile states from two insert blocks merge into one distribution of 100..1000;
    # the re-sent 10**9 values are absent.
    p50, p90, p95, p99 = row["reasoning_q"]
    assert 400 <= p50 <= 700
    assert 800 <= p90 <= p95 <= p99 <= 1000
    d50, _, _, d99 = row["duration_q"]
    assert 4000 <= d50 <= 7000 and d99 <= 10_000  # milliseconds

    parts = ch.execute(
        f"SELECT count() AS n FROM usage_hourly WHERE project_id IN {PROJECT_PARAM}", tag="tests.schema.parts",
        projects=1,
    )
    assert parts[0]["n"] >= 1

    users = ch.execute(
        f"""
        SELECT user_id, sum(requests) AS requests, sum(reasoning_tokens) AS reasoning_tokens,
            sum(cost_total) AS cost_total
        FROM usage_daily_users WHERE project_id IN {PROJECT_PARAM}
        GROUP BY user_id ORDER BY user_id
        """,
        tag="tests.schema.users",
        projects=1,
    )
    assert users == [
        {"user_id": "u1", "requests": 5, "reasoning_tokens": 1500, "cost_total": Decimal("0.500000015")},
        {"user_id": "u2", "requests": 5, "reasoning_tokens": 4000, "cost_total": Decimal("1.000000040")},
    ]

    other = ch.execute(
        f"SELECT sum(requests) AS requests FROM usage_hourly WHERE project_id IN {PROJECT_PARAM}",
        tag="tests.schema.other",
        projects=2,
    )
    assert other == [{"requests": 1}]
