"""The tables the dashboards read instead of raw spans (migration 0005) against known calls
sent through ``POST /v1/traces``: ``usage_daily`` and ``usage_daily_user_totals`` hold the
same sums as the finer rollups, ``sampled_calls`` holds exactly the counted calls of the
traces below its bound (and the call sample reads it), time to first token leaves out
non-streamed calls, the migration copies existing data in once, and the embedded
transport still returns DateTime columns as timestamps when it remembers result types.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from dashboards import queries
from tests.dashboards.api_support import add_score, base_time, call, new_span_id, priced_catalog, root, send
from thinkmeter.clickhouse import PROJECT_PARAM

pytestmark = pytest.mark.django_db

MIGRATION = "0005_daily_rollup_and_sampled_calls"
sampling: Any = importlib.import_module(f"thinkmeter.clickhouse.migrations.{MIGRATION}")
# trace ids: below the sampled_calls bound ("0800") or above it
LOW = ["0000" + "a" * 28, "0001" + "b" * 28, "07ff" + "c" * 28]
HIGH = ["0800" + "d" * 28, "f000" + "e" * 28]


@pytest.fixture
def priced(project: Any, other_project: Any) -> Iterator[None]:
    yield from priced_catalog(project, other_project)


@pytest.fixture
def traffic(ch: ModuleType, priced: None, project: Any, project_key: str) -> dict[str, Any]:
    """Two LLM calls per trace over two days (users alice and bob; some streamed, some with
    a request id or quality), a trace sent twice, and a score."""
    base = base_time()
    spans: list[dict[str, Any]] = []
    ttft: list[float] = []
    for n, trace_id in enumerate(LOW + HIGH):
        root_id = new_span_id()
        start = base + timedelta(hours=7 * n)
        spans.append(root(start, trace_id, root_id))
        for attempt in range(2):
            extra: dict[str, Any] = {"thinkmeter.thinking_budget": 2048, "thinkmeter.request_id": f"req-{n}"}
            if n % 2 == 0:  # streamed
                extra["gen_ai.response.time_to_first_chunk"] = 0.1 * (n + 1) + attempt
                ttft.append((0.1 * (n + 1) + attempt) * 1000)
            if attempt:
                extra["thinkmeter.quality"] = 0.5 + n / 10
            spans.append(call("tm-reasoner" if attempt else "tm-fast", start + timedelta(seconds=attempt + 1),
                              task_type="support", tier=attempt + 1, user="alice" if n % 2 else "bob",
                              trace_id=trace_id, parent_span_id=root_id, input_tokens=1000 + n,
                              output_tokens=600 + n, reasoning_tokens=100 * (n + 1) * attempt, extra=extra))
    send(project_key, spans)
    send(project_key, spans[:3])  # the first trace again: stored twice, counted once
    add_score(project.pk, LOW[0], 0.25)
    return {"start": base - timedelta(days=1), "end": base + timedelta(days=3), "ttft": ttft}


def run(ch: ModuleType, sql: str, project: Any, **params: Any) -> list[dict[str, Any]]:
    return ch.execute(sql, params, tag="tests.rollups", projects=project.pk)


SUMS = "sum(requests) AS requests, sum(reasoning_tokens) AS reasoning, sum(cost_total) AS cost"


def per_day(ch: ModuleType, project: Any) -> dict[str, Any]:
    """Sums per day (and per user) from each rollup."""
    where = f"WHERE project_id IN {PROJECT_PARAM}"
    return {
        "hourly": run(ch, f"SELECT toDate(hour) AS d, {SUMS} FROM usage_hourly {where} GROUP BY d ORDER BY d", project),
        "daily": run(ch, f"SELECT day AS d, {SUMS} FROM usage_daily {where} GROUP BY d ORDER BY d", project),
        "users": run(ch, f"SELECT day AS d, user_id, {SUMS} FROM usage_daily_users {where} "
                         "GROUP BY d, user_id ORDER BY d, user_id", project),
        "user_totals": run(ch, f"SELECT day AS d, user_id, {SUMS} FROM usage_daily_user_totals {where} "
                               "GROUP BY d, user_id ORDER BY d, user_id", project),
        "sampled": run(ch, "SELECT trace_id, request_key, pick, tier, reasoning_tokens, duration_ns, ttft_ms, "
                           f"quality FROM sampled_calls {where} ORDER BY trace_id, tier", project),
    }


def test_daily_rollups_hold_the_finer_rollups_sums(traffic: dict[str, Any], ch: ModuleType, project: Any) -> None:
    got = per_day(ch, project)
    assert got["daily"] == got["hourly"] and len(got["daily"]) >= 2
    assert got["user_totals"] == got["users"]
    assert sum(r["requests"] for r in got["daily"]) == 2 * len(LOW + HIGH)  # the re-sent trace counts once


def test_sampled_calls_are_the_counted_calls_below_the_bound(traffic: dict[str, Any], ch: ModuleType,
                                                              project: Any) -> None:
    expected = run(ch, f"""SELECT trace_id, cityHash64(if(request_id = '', trace_id, request_id)) AS request_key,
            cityHash64(trace_id, toUnixTimestamp64Nano(start_time)) AS pick, tier, reasoning_tokens, duration_ns,
            ttft_ms, quality
        FROM spans WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND trace_id < {{bound:String}}
        ORDER BY trace_id, tier""", project, bound=sampling.SAMPLE_BOUND)
    assert per_day(ch, project)["sampled"] == expected
    assert sorted({r["trace_id"] for r in expected}) == LOW and len(expected) == 2 * len(LOW)


def test_call_sample_reads_sampled_calls_for_small_samples(traffic: dict[str, Any], project: Any) -> None:
    start, end = traffic["start"], traffic["end"]
    sample = queries.trace_sample([project.pk], start, end, target=0)  # the smallest sample: bound "0001"
    assert (sample.bound, sample.table) == ("0001", "sampled_calls")
    calls = queries.call_sample([project.pk], start, end, sample_calls=0)
    assert len(calls) == 2 and calls.attrs["sample_fraction"] == sample.fraction  # the two calls of LOW[0]
    # the span's own quality, else the trace's score (as from spans)
    assert sorted(calls["quality"].fillna(-1).round(6)) == [0.25, 0.5]
    assert sorted(calls["ttft_ms"].round(3)) == [100.0, 1100.0]
    assert calls["request_key"].nunique() == 1 and calls["pick"].nunique() == 2  # both attempts of request req-0
    wide = queries.trace_sample([project.pk], start, end, target=4)
    assert wide.table == "spans" and int(wide.bound or "0", 16) > int(sampling.SAMPLE_BOUND, 16)


def test_time_to_first_token_leaves_out_calls_without_one(traffic: dict[str, Any], ch: ModuleType,
                                                          project: Any) -> None:
    row = run(ch, f"""SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_q) AS q, sum(requests) AS n
        FROM usage_daily WHERE project_id IN {PROJECT_PARAM}""", project)[0]
    streamed = sorted(traffic["ttft"])  # 100, 300, 500, 1100, 1300, 1500 ms; 4 calls without
    assert row["n"] == 10 and len(streamed) == 6
    # with the four zeros the median would lie between 100 and 300
    assert streamed[2] <= row["q"][0] <= streamed[3] and streamed[0] <= min(row["q"])
    latency = queries.latency_by_tier([project.pk], traffic["start"], traffic["end"])
    assert list(latency["ttft_requests"]) == [3, 3]
    streamed_tier1 = sorted(t for i, t in enumerate(traffic["ttft"]) if i % 2 == 0)
    assert latency["ttft_p50"][0] == pytest.approx(np.percentile(streamed_tier1, 50))


def test_migration_copies_existing_data_once(traffic: dict[str, Any], ch: ModuleType, project: Any,
                                            project_key: str) -> None:
    from thinkmeter.clickhouse import schema

    before = per_day(ch, project)
    for table in ("usage_daily", "usage_daily_user_totals", "sampled_calls"):
        ch.execute(f"TRUNCATE TABLE {table}", tag="tests.rollups", system=True)
    statements = schema.render(MIGRATION, schema.context_from_settings())
    for _ in range(2):  # statements are idempotent: the second run copies nothing again
        for statement in statements:
            ch.execute(statement, tag="tests.rollups", system=True)
        assert per_day(ch, project) == before
    # and the recreated views keep feeding every rollup
    send(project_key, [call("tm-fast", base_time() + timedelta(hours=2), task_type="later", tier=1,
                            trace_id=LOW[1][:-1] + "f", input_tokens=10, output_tokens=10)])
    after = per_day(ch, project)
    for name in ("hourly", "daily", "users", "user_totals"):
        assert sum(r["requests"] for r in after[name]) == sum(r["requests"] for r in before[name]) + 1, name
    assert len(after["sampled"]) == len(before["sampled"]) + 1


def test_datetime_columns_stay_timestamps_when_types_are_remembered(ch: ModuleType, project: Any) -> None:
    from thinkmeter.clickhouse import client, transport_chdb

    sql = (f"SELECT toDateTime({{at:String}}, 'UTC') AS at, toUInt32(7) AS n, count() AS rows "
           f"FROM usage_hourly WHERE project_id IN {PROJECT_PARAM}")
    if client.transport().kind != "chdb":
        pytest.skip("the embedded transport's result types")
    for moment in ("2025-01-02 03:04:05", "2026-07-08 09:10:11"):  # values differ, the statement does not
        table = ch.query_arrow(sql, {"at": moment}, tag="tests.types", projects=project.pk)
        assert table.schema.field("at").type == pa.timestamp("s", tz="UTC")
        assert table.schema.field("n").type == pa.uint32()
        assert table.column("at")[0].as_py() == datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert sql in transport_chdb._result_types
    ch.execute("SELECT 1", tag="tests.types", system=True)
    assert sql in transport_chdb._result_types  # a query changes no schema
    ch.execute("CREATE TABLE IF NOT EXISTS tests_types (x UInt8) ENGINE = Memory", tag="tests.types", system=True)
    ch.execute("DROP TABLE tests_types", tag="tests.types", system=True)
    assert sql not in transport_chdb._result_types  # DDL may have: forgotten
