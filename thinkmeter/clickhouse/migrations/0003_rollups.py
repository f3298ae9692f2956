"""Rollups of counted LLM calls, fed by materialized views on ``spans``.

Grain, chosen for the dashboards and the usage API:
- ``usage_hourly``: (project, hour, service, environment, provider, model, operation,
  task_type, tier). Every finance and engineering chart groups by a subset of these
  and a time bucket of an hour or more, so a query reads at most
  hours × active combinations rows (a few thousand per project per day) instead of
  millions of spans. user_id and session_id are left out: they would multiply the
  row count by the number of users and make the rollup as big as the raw table.
- ``usage_daily``: the same dimensions per UTC day (created by migration 0005), 24 times
  fewer rows: whole days of a range read it, the ragged hours ``usage_hourly``.
- ``usage_daily_users``: (project, day, user_id, task_type, tier, model) for top users
  and per-user quotas, where a day is fine enough; ``usage_daily_user_totals``: (project,
  day, user_id) only (created by migration 0005), 5 times fewer rows, for top users
  without a filter.
Group-bys on session or at sub-hour grain read ``spans`` directly.

Only rows with ``counted = 1`` reach the views, so a re-sent batch (stored with
counted = 0) never adds to a sum. Aggregated source columns are qualified (``spans.x``) where a sum's alias shadows them.
Quantile states (:data:`STATE_SOURCES`) allow p50/p90/p95/p99 of reasoning tokens, cost,
duration and time to first token per any grouping of the grain; the time-to-first-token
state leaves out calls that reported none (``ttft_ms = 0``: not streamed), as t-digests
skip NaN.

The views' SELECT is :func:`rollup_select`, importable so that ``ingest.reprice`` can
rebuild a range of a rollup with exactly the query the view runs (mutations on
``spans`` do not reach materialized views); reprice rebuilds every table of
:data:`ROLLUPS`.
"""

from __future__ import annotations

from thinkmeter.clickhouse.ddl import SchemaContext

SUMS = [
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total",
]
QUANTILES = "quantilesTDigest(0.5, 0.9, 0.95, 0.99)"
# quantile state column -> the per-call value it digests (over FROM spans; NaN is skipped)
STATE_SOURCES: dict[str, str] = {
    "reasoning_q": "spans.reasoning_tokens",
    "cost_q": "toFloat64(spans.cost_total)",
    "duration_q": "duration_ns / 1e6",
    "ttft_q": "if(ttft_ms > 0, toFloat64(ttft_ms), nan)",
}


def aggregate_columns() -> str:
    """The aggregate columns' definitions, shared by every rollup table."""
    sums = ",\n    ".join(
        f"{c} SimpleAggregateFunction(sum, {'Decimal(38, 9)' if c.startswith('cost') else 'UInt64'})" for c in SUMS
    )
    return f"""requests SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    unpriced SimpleAggregateFunction(sum, UInt64),
    with_thinking SimpleAggregateFunction(sum, UInt64),
    estimated SimpleAggregateFunction(sum, UInt64),
    quality_sum SimpleAggregateFunction(sum, Float64),
    quality_count SimpleAggregateFunction(sum, UInt64),
    thinking_budget_sum SimpleAggregateFunction(sum, UInt64),
    {sums},
    reasoning_q AggregateFunction({QUANTILES}, UInt64),
    cost_q AggregateFunction({QUANTILES}, Float64),
    duration_q AggregateFunction({QUANTILES}, Float64),
    ttft_q AggregateFunction({QUANTILES}, Float64)"""


def _selects() -> str:
    sums = ",\n    ".join(
        f"toDecimal128(sum({c}), 9) AS {c}" if c.startswith("cost") else f"sum({c}) AS {c}" for c in SUMS
    )
    state = QUANTILES.replace("quantilesTDigest", "quantilesTDigestState")
    states = ",\n    ".join(f"{state}({source}) AS {name}" for name, source in STATE_SOURCES.items())
    return f"""count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(NOT priced) AS unpriced,
    countIf(spans.reasoning_tokens > 0) AS with_thinking,
    countIf(reasoning_estimated) AS estimated,
    sum(ifNull(quality, 0)) AS quality_sum,
    count(quality) AS quality_count,
    sum(thinking_budget) AS thinking_budget_sum,
    {sums},
    {states}"""


DIMENSIONS = "service, environment, provider, model, operation, task_type, tier"
HOURLY_KEYS = f"project_id, hour, {DIMENSIONS}"
DAILY_KEYS = f"project_id, day, {DIMENSIONS}"
USER_KEYS = "project_id, day, user_id, task_type, tier, model"
USER_TOTAL_KEYS = "project_id, day, user_id"

# Per rollup table: (its time column, the SELECT list's leading key expressions, GROUP BY keys).
ROLLUPS: dict[str, tuple[str, str, str]] = {
    "usage_hourly": (
        "hour",
        """project_id, toStartOfHour(start_time) AS hour, service, environment, provider, model, operation,
    task_type, tier""",
        HOURLY_KEYS,
    ),
    "usage_daily_users": ("day", "project_id, toDate(start_time) AS day, user_id, task_type, tier, model", USER_KEYS),
    "usage_daily": ("day", f"project_id, toDate(start_time) AS day, {DIMENSIONS}", DAILY_KEYS),
    "usage_daily_user_totals": ("day", "project_id, toDate(start_time) AS day, user_id", USER_TOTAL_KEYS),
}
AGGREGATE_COLUMNS = (
    "requests", "errors", "unpriced", "with_thinking", "estimated", "quality_sum", "quality_count",
    "thinking_budget_sum", *SUMS, *STATE_SOURCES,
)


def rollup_parts(target: str) -> tuple[str, str]:
    """The SELECT list and GROUP BY keys of rollup ``target``'s view over ``spans`` (its
    WHERE is ``counted = 1``), for migrations that create or replace the view."""
    _, keys, group_by = ROLLUPS[target]
    return f"{keys},\n    {_selects()}", group_by


def rollup_select(target: str, where: str = "") -> str:
    """The SELECT that feeds rollup ``target`` from ``spans`` (its materialized view's query).

    ``where`` adds conditions (ANDed after ``counted = 1``): ``ingest.reprice`` rebuilds a
    project's range of a rollup with ``INSERT INTO target (rollup_columns(target)) <this>``,
    so a rebuilt range holds exactly what the view would have written.
    """
    select, group_by = rollup_parts(target)
    extra = f" AND {where}" if where else ""
    return f"""SELECT {select}
FROM spans
WHERE counted = 1{extra}
GROUP BY {group_by}"""


def rollup_columns(target: str) -> list[str]:
    """Column names of rollup ``target`` in the order :func:`rollup_select` produces them."""
    return [*ROLLUPS[target][2].split(", "), *AGGREGATE_COLUMNS]


# Rollup rows are summed again by every reader, so any shard may hold any of them. In
# cluster mode each shard's views write its own spans' rollups locally; rows inserted
# through the Distributed tables (reprice's rebuilds, 0005's copies) spread by project.
SHARD_BY = "project_id"
DIMENSION_COLUMNS = [
    "service LowCardinality(String)", "environment LowCardinality(String)", "provider LowCardinality(String)",
    "model LowCardinality(String)", "operation LowCardinality(String)", "task_type LowCardinality(String)",
    "tier UInt8",
]
KEY_COLUMNS: dict[str, list[str]] = {
    "usage_hourly": ["project_id UInt32", "hour DateTime('UTC')", *DIMENSION_COLUMNS],
    "usage_daily_users": [
        "project_id UInt32", "day Date", "user_id String", "task_type LowCardinality(String)", "tier UInt8",
        "model LowCardinality(String)",
    ],
}


def statements(ctx: SchemaContext) -> list[str]:
    ttl = int(ctx.retention_days)
    out: list[str] = []
    for target, key_columns in KEY_COLUMNS.items():
        time_column, _, group_by = ROLLUPS[target]
        out += ctx.create_table(
            target,
            [*key_columns, aggregate_columns()],
            engine="AggregatingMergeTree",
            partition_by=f"toYYYYMM({time_column})",
            order_by=f"({group_by})",
            ttl=f"{time_column} + INTERVAL {ttl} DAY",
            shard_by=SHARD_BY,
        )
        select, view_group_by = rollup_parts(target)
        out += ctx.create_materialized_view(f"{target}_mv", target=target, source="spans", select=select,
                                            where="counted = 1", group_by=view_group_by)
    return out
