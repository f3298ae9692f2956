"""Coarser daily rollups, time to first token without non-streamed calls, and a sample of calls.

For the dashboards' speed over long ranges (issue 4):

- ``usage_daily``: ``usage_hourly``'s dimensions and aggregates per UTC day, and
  ``usage_daily_user_totals``: ``usage_daily_users`` per (project, day, user) only. Each
  is fed from ``spans`` by its own view with 0003's :func:`rollup_parts` (so
  ``ingest.reprice`` rebuilds them like the other rollups). A 30-day query reads whole
  days there (24, resp. about 5, times fewer rows) and only the ragged hours from
  ``usage_hourly``.
- The rollup views' time-to-first-token state now skips calls with ``ttft_ms = 0`` (not
  streamed): the two existing views are replaced with 0003's current query. Rows
  written before this migration keep their states (zeros included).
- ``sampled_calls``: one narrow row per counted LLM call of the traces whose id sorts
  below :data:`SAMPLE_BOUND` — 1/32 of traces, trace ids being random hex — with the
  filter dimensions, budget, effort, reasoning tokens, duration, time to first token,
  the span's quality, and two hashes: of the request (its id, else the trace id) and of
  the call (for sub-samples). The engineering page's per-call statistics (distributions,
  latency, escalations, the quality frontier, budget against use) read a trace sample of
  a long range here instead of from ``spans``: the
  same calls as ``spans`` with ``trace_id < bound`` for any bound up to SAMPLE_BOUND.
  It holds no cost, so repricing never makes it stale.

Existing data is copied in while a new table is still empty (``usage_daily`` from
``usage_hourly``, ``usage_daily_user_totals`` from ``usage_daily_users``,
``sampled_calls`` from ``spans``), before its view is created, so
rerunning the statements never copies twice. Run it while no spans arrive
(``manage.py migrate`` before serving, as embedded mode requires anyway).
"""

from __future__ import annotations

import importlib
from typing import Any

from thinkmeter.clickhouse.ddl import SchemaContext

_rollups: Any = importlib.import_module("thinkmeter.clickhouse.migrations.0003_rollups")

SAMPLE_BOUND = "0800"  # trace ids below this: 0x0800 / 0x10000 = 1/32 of traces
SHARD_BY = "cityHash64(project_id, trace_id)"  # sampled_calls, as spans (the rollups: 0003's SHARD_BY)
SAMPLED_CALLS = {  # column -> (type, expression over spans)
    "project_id": ("UInt32", "project_id"),
    "start_time": ("DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1))", "start_time"),
    "trace_id": ("String CODEC(ZSTD(1))", "trace_id"),
    "request_key": ("UInt64", "cityHash64(if(spans.request_id = '', spans.trace_id, spans.request_id))"),
    "pick": ("UInt64", "cityHash64(spans.trace_id, toUnixTimestamp64Nano(spans.start_time))"),
    "service": ("LowCardinality(String)", "service"),
    "environment": ("LowCardinality(String)", "environment"),
    "provider": ("LowCardinality(String)", "provider"),
    "model": ("LowCardinality(String)", "model"),
    "operation": ("LowCardinality(String)", "operation"),
    "task_type": ("LowCardinality(String)", "task_type"),
    "tier": ("UInt8", "tier"),
    "user_id": ("String CODEC(ZSTD(1))", "user_id"),
    "session_id": ("String CODEC(ZSTD(1))", "session_id"),
    "thinking_budget": ("UInt32", "thinking_budget"),
    "reasoning_effort": ("LowCardinality(String)", "reasoning_effort"),
    "reasoning_tokens": ("UInt64", "reasoning_tokens"),
    "duration_ns": ("UInt64 CODEC(T64, ZSTD(1))", "duration_ns"),
    "ttft_ms": ("Float32", "ttft_ms"),
    "quality": ("Nullable(Float32)", "quality"),
}
SAMPLED_WHERE = f"counted = 1 AND trace_id < '{SAMPLE_BOUND}'"


def _copy_rollup(target: str, source: str, keys: str) -> str:
    """``source``'s rows summed into ``target``'s grain (sums add up, quantile states merge),
    when ``target`` is empty. ``keys`` are target's key expressions over ``source``."""
    merge_state = _rollups.QUANTILES.replace("quantilesTDigest", "quantilesTDigestMergeState")
    aggregates = [f"{merge_state}({c}) AS {c}" if c in _rollups.STATE_SOURCES else f"sum({c}) AS {c}"
                  for c in _rollups.AGGREGATE_COLUMNS]
    return f"""INSERT INTO {target} ({', '.join(_rollups.rollup_columns(target))})
SELECT {keys},
    {', '.join(aggregates)}
FROM {source}
WHERE (SELECT count() FROM {target}) = 0
GROUP BY {_rollups.ROLLUPS[target][2]}"""


def sampled_calls_select() -> str:
    """The SELECT list that feeds ``sampled_calls`` from ``spans`` (WHERE :data:`SAMPLED_WHERE`)."""
    return ", ".join(f"{expression} AS {name}" for name, (_, expression) in SAMPLED_CALLS.items())


def _rollup_view(ctx: SchemaContext, target: str) -> list[str]:
    select, group_by = _rollups.rollup_parts(target)
    return ctx.create_materialized_view(f"{target}_mv", target=target, source="spans", select=select,
                                        where="counted = 1", group_by=group_by)


def statements(ctx: SchemaContext) -> list[str]:
    ttl = int(ctx.retention_days)
    daily: list[tuple[str, list[str], str, str]] = [  # table, key columns, source, key expressions over it
        ("usage_daily", ["project_id UInt32", "day Date", *_rollups.DIMENSION_COLUMNS], "usage_hourly",
         _rollups.DAILY_KEYS.replace("day", "toDate(hour) AS day")),
        ("usage_daily_user_totals", ["project_id UInt32", "day Date", "user_id String"], "usage_daily_users",
         _rollups.USER_TOTAL_KEYS),
    ]
    out: list[str] = []
    for table, keys, source, key_expressions in daily:
        out += ctx.create_table(
            table,
            [*keys, _rollups.aggregate_columns()],
            engine="AggregatingMergeTree",
            partition_by="toYYYYMM(day)",
            order_by=f"({_rollups.ROLLUPS[table][2]})",
            ttl=f"day + INTERVAL {ttl} DAY",
            shard_by=_rollups.SHARD_BY,
        )
        out.append(_copy_rollup(table, source, key_expressions))
        out += _rollup_view(ctx, table)
    for target in ("usage_hourly", "usage_daily_users"):  # their views again, with 0003's current query
        out.append(f"DROP VIEW IF EXISTS {target}_mv{ctx.on_cluster}")
        out += _rollup_view(ctx, target)
    out += ctx.create_table(
        "sampled_calls",
        [f"{name} {kind}" for name, (kind, _) in SAMPLED_CALLS.items()],
        engine="MergeTree",
        partition_by="toYYYYMM(start_time)",
        order_by="(project_id, toMonday(start_time), trace_id)",  # a month's sample is a few ranges, not 30
        ttl=f"toDateTime(start_time) + INTERVAL {ttl} DAY",
        settings="index_granularity = 1024",
        shard_by=SHARD_BY,
    )
    out.append(f"INSERT INTO sampled_calls ({', '.join(SAMPLED_CALLS)})\nSELECT {sampled_calls_select()}\n"
               f"FROM spans AS spans\nWHERE {SAMPLED_WHERE} AND (SELECT count() FROM sampled_calls) = 0")
    out += ctx.create_materialized_view("sampled_calls_mv", target="sampled_calls", source="spans",
                                        select=sampled_calls_select(), where=SAMPLED_WHERE)
    return out
