"""Data for the dashboard pages, shaped for the figure builders in :mod:`dashboards.figures`.

Each function takes the project ids in view and the page's :class:`PageFilters` and
returns a DataFrame (or plain rows) with the columns its figure or table documents.
Every statement filters on ``project_id IN {project_ids:Array(UInt32)}`` and binds
its values as parameters. Aggregates read the hourly rollup (``usage_hourly``) unless
a filter or grouping needs a column the rollup lacks (user, thinking budget, trace),
in which case they read ``spans`` with ``counted = 1``. Range starts are rounded down
to the hour when the rollup is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from dashboards.page_filters import PageFilters, month_start, next_month
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

PART_SQL = {
    "cost_input": "sum(cost_input)",
    "cost_cache": "sum(cost_cache_read) + sum(cost_cache_write)",
    "cost_output": "sum(cost_output_visible)",
    "cost_reasoning": "sum(cost_reasoning)",
    "cost_total": "sum(cost_total)",
}
PARTS_SELECT = ",\n    ".join(f"toFloat64({expr}) AS {name}" for name, expr in PART_SQL.items())
HOURLY_DIMENSIONS = {"service", "environment", "provider", "model", "operation", "task_type", "tier"}
BUCKETS = {"hour": "toStartOfHour({col})", "day": "toStartOfDay({col})", "week": "toMonday({col})"}
RUNAWAY_MULTIPLE = 1.0
TS = "DateTime64(3, 'UTC')"


@dataclass(frozen=True)
class Scope:
    """Project ids and the page's filters, turned into a WHERE clause for one source table."""

    ids: Sequence[int]
    pf: PageFilters

    def uses_spans(self, extra_columns: Sequence[str] = ()) -> bool:
        return any(c not in HOURLY_DIMENSIONS for c in [*self.pf.column_filters, *extra_columns])

    def where(self, table: str, *, start: datetime | None = None, end: datetime | None = None,
              filters: dict[str, str] | None = None, alias: str = "") -> tuple[str, dict[str, Any]]:
        """Conditions for ``table`` (``usage_hourly``, ``usage_daily_users``, ``spans`` or
        ``spans_counted``: spans with ``counted = 1``) and their bound parameters."""
        a = f"{alias}." if alias else ""
        params: dict[str, Any] = {"start": start or self.pf.start, "end": end or self.pf.end}
        clauses = [f"{a}project_id IN {PROJECT_PARAM}"]
        if table == "usage_hourly":
            clauses += [f"{a}hour >= toStartOfHour({{start:{TS}}})", f"{a}hour < {{end:{TS}}}"]
        elif table == "usage_daily_users":
            clauses += [f"{a}day >= toDate({{start:{TS}}})", f"{a}day <= toDate({{end:{TS}}} - INTERVAL 1 SECOND)"]
        else:
            clauses += [f"{a}start_time >= {{start:{TS}}}", f"{a}start_time < {{end:{TS}}}"]
            if table == "spans_counted":
                clauses.append(f"{a}counted = 1")
        for column, value in (self.pf.column_filters if filters is None else filters).items():
            key = f"f_{column}"
            if column == "tier":
                clauses.append(f"{a}tier = {{{key}:UInt8}}")
                params[key] = int(value)
            else:
                clauses.append(f"{a}{column} = {{{key}:String}}")
                params[key] = value
        return " AND ".join(clauses), params


def _df(sql: str, params: dict[str, Any], ids: Sequence[int], tag: str) -> pd.DataFrame:
    return clickhouse.query_df(sql, params, tag=f"pages.{tag}", projects=list(ids))


def _source(scope: Scope, extra_columns: Sequence[str] = ()) -> str:
    return "spans_counted" if scope.uses_spans(extra_columns) else "usage_hourly"


def _from(source: str) -> str:
    return "spans" if source == "spans_counted" else "usage_hourly"


def _time(source: str) -> str:
    return "start_time" if source == "spans_counted" else "hour"


def _count(source: str) -> str:
    return "count()" if source == "spans_counted" else "sum(requests)"


# ---------------------------------------------------------------- shared

def has_any_data(ids: Sequence[int]) -> bool:
    """Whether these projects ever stored an LLM call (tells "no traces yet" from "nothing in range")."""
    if not ids:
        return False
    rows = clickhouse.execute(
        f"SELECT 1 AS x FROM usage_hourly WHERE project_id IN {PROJECT_PARAM} LIMIT 1",
        tag="pages.has_any_data", projects=list(ids),
    )
    return bool(rows)


def filter_options(ids: Sequence[int], pf: PageFilters) -> dict[str, list[str]]:
    """Distinct values of each select-able dimension in the range (ignoring the filters themselves)."""
    if not ids:
        return {}
    scope = Scope(ids, pf)
    where, params = scope.where("usage_hourly", filters={})
    df = _df(
        f"""SELECT groupUniqArray(200)(service) AS service, groupUniqArray(200)(environment) AS environment,
            groupUniqArray(200)(model) AS model, groupUniqArray(200)(task_type) AS task_type,
            groupUniqArray(50)(toString(tier)) AS tier
        FROM usage_hourly WHERE {where}""",
        params, ids, "filter_options",
    )
    if df.empty:
        return {}
    row = df.iloc[0]
    out: dict[str, list[str]] = {}
    for column in ("service", "environment", "model", "task_type", "tier"):
        values = [str(v) for v in row[column] if str(v) != ""]
        out[column] = sorted(values, key=lambda v: (int(v) if v.isdigit() else 0, v))
    return out


# ---------------------------------------------------------------- finance

def totals(ids: Sequence[int], pf: PageFilters) -> dict[str, float]:
    """Sums over the view: requests, tokens and cost by part."""
    scope = Scope(ids, pf)
    source = _source(scope)
    where, params = scope.where(source)
    df = _df(
        f"""SELECT {_count(source)} AS requests, sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
            {'countIf(NOT priced)' if source == 'spans_counted' else 'sum(unpriced)'} AS unpriced,
            {PARTS_SELECT}
        FROM {_from(source)} WHERE {where}""",
        params, ids, "totals",
    )
    if df.empty:
        return {}
    return {k: float(v or 0) for k, v in df.iloc[0].to_dict().items()}


def spend_over_time(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Columns: bucket, cost_input, cost_cache, cost_output, cost_reasoning, cost_total."""
    scope = Scope(ids, pf)
    source = _source(scope)
    where, params = scope.where(source)
    bucket = BUCKETS[pf.interval].format(col=_time(source))
    return _df(
        f"""SELECT {bucket} AS bucket, {PARTS_SELECT}
        FROM {_from(source)} WHERE {where} GROUP BY bucket ORDER BY bucket""",
        params, ids, "spend_over_time",
    )


def spend_by(ids: Sequence[int], pf: PageFilters, dimension: str, limit: int = 50) -> pd.DataFrame:
    """Columns: label, requests, the cost parts and cost_total, largest first.

    ``dimension`` is a spans column or ``project`` (labels are project ids then; the
    view names them).
    """
    column = "project_id" if dimension == "project" else dimension
    scope = Scope(ids, pf)
    source = _source(scope, [] if dimension == "project" else [column])
    where, params = scope.where(source)
    params["limit"] = limit
    label = "toString(tier)" if column == "tier" else ("toString(project_id)" if column == "project_id" else column)
    return _df(
        f"""SELECT {label} AS label, {_count(source)} AS requests, {PARTS_SELECT}
        FROM {_from(source)} WHERE {where} GROUP BY label ORDER BY cost_total DESC LIMIT {{limit:UInt32}}""",
        params, ids, f"spend_by_{dimension}",
    )


def daily_spend(ids: Sequence[int], pf: PageFilters, start: datetime, end: datetime) -> pd.DataFrame:
    """Columns: day (date), cost — for the budget burn-down and the forecast history."""
    scope = Scope(ids, pf)
    source = _source(scope)
    where, params = scope.where(source, start=start, end=end)
    return _df(
        f"""SELECT toDate({_time(source)}) AS day, toFloat64(sum(cost_total)) AS cost
        FROM {_from(source)} WHERE {where} GROUP BY day ORDER BY day""",
        params, ids, "daily_spend",
    )


@dataclass(frozen=True)
class MonthSpend:
    """This month's spend per day and the recent complete days that feed the forecast."""

    month_start: datetime
    month_end: datetime
    daily: pd.DataFrame
    history: list[float]
    month_to_date: float
    today_so_far: float


def month_spend(ids: Sequence[int], pf: PageFilters, now: datetime) -> MonthSpend:
    """Month-to-date spend (the page's dimension filters apply, its time range does not)."""
    start = month_start(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    history_start = min(start, today - timedelta(days=28))
    df = daily_spend(ids, pf, history_start, now)
    days = {pd.Timestamp(d).date(): float(c) for d, c in zip(df.get("day", []), df.get("cost", []), strict=True)}
    month_days = [start.date() + timedelta(days=i) for i in range((today - start).days + 1)]
    daily = pd.DataFrame({"day": month_days, "cost": [days.get(d, 0.0) for d in month_days]})
    first_seen = min(days) if days else today.date()
    history: list[float] = []
    day = max(first_seen, (today - timedelta(days=28)).date())
    while day < today.date():
        history.append(days.get(day, 0.0))
        day += timedelta(days=1)
    return MonthSpend(
        month_start=start, month_end=next_month(now), daily=daily, history=history,
        month_to_date=float(daily["cost"].sum()), today_so_far=days.get(today.date(), 0.0),
    )


def top_users(ids: Sequence[int], pf: PageFilters, limit: int = 15) -> pd.DataFrame:
    """Columns: user_id, requests, reasoning_tokens, cost_total — from the daily user rollup."""
    scope = Scope(ids, pf)
    if set(pf.column_filters) <= {"user_id", "task_type", "tier", "model"}:
        table, count = "usage_daily_users", "sum(requests)"
    else:
        table, count = "spans_counted", "count()"
    where, params = scope.where(table)
    params["limit"] = limit
    return _df(
        f"""SELECT user_id, {count} AS requests, sum(reasoning_tokens) AS reasoning_tokens,
            toFloat64(sum(cost_total)) AS cost_total
        FROM {_from(table) if table == "spans_counted" else table} WHERE {where} AND user_id != ''
        GROUP BY user_id ORDER BY cost_total DESC LIMIT {{limit:UInt32}}""",
        params, ids, "top_users",
    )


def month_report(ids: Sequence[int], start: datetime, end: datetime) -> dict[str, pd.DataFrame]:
    """Spend by project, tier, model and task type for a calendar month (the printable report)."""
    pf = PageFilters(range_key="custom", start=start, end=end)
    out = {dim: spend_by(ids, pf, dim, limit=500) for dim in ("project", "tier", "model", "task_type")}
    out["daily"] = daily_spend(ids, pf, start, end)
    return out


# ---------------------------------------------------------------- engineering

def reasoning_quantiles(ids: Sequence[int], pf: PageFilters, limit: int = 24) -> pd.DataFrame:
    """Per task class (task type × tier): requests and p25/p50/p75/p90/p95/p99 reasoning tokens."""
    scope = Scope(ids, pf)
    source = _source(scope)
    where, params = scope.where(source)
    if source == "usage_hourly":
        q = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(reasoning_q)"
        select = f"{q}[1] AS p50, {q}[2] AS p90, {q}[3] AS p95, {q}[4] AS p99"
    else:
        q = "quantilesTDigest(0.5, 0.9, 0.95, 0.99)(reasoning_tokens)"
        select = f"{q}[1] AS p50, {q}[2] AS p90, {q}[3] AS p95, {q}[4] AS p99"
    params["limit"] = limit
    df = _df(
        f"""SELECT task_type, tier, {_count(source)} AS requests, {select}
        FROM {_from(source)} WHERE {where}
        GROUP BY task_type, tier HAVING p99 > 0 ORDER BY requests DESC LIMIT {{limit:UInt32}}""",
        params, ids, "reasoning_quantiles",
    )
    if not df.empty:
        df["task_class"] = [task_class(t, int(tier)) for t, tier in zip(df["task_type"], df["tier"], strict=True)]
    return df


def task_class(task_type: str, tier: int) -> str:
    return f"{task_type or 'unclassified'} · tier {tier}" if tier else (task_type or "unclassified")


def latency_by_tier(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Per tier: requests and p50/p95 of duration and time to first token (ms)."""
    scope = Scope(ids, pf)
    source = _source(scope)
    where, params = scope.where(source)
    if source == "usage_hourly":
        d = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(duration_q)"
        t = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(ttft_q)"
    else:
        d = "quantilesTDigest(0.5, 0.9, 0.95, 0.99)(duration_ns / 1e6)"
        t = "quantilesTDigest(0.5, 0.9, 0.95, 0.99)(toFloat64(ttft_ms))"
    return _df(
        f"""SELECT tier, {_count(source)} AS requests, {d}[1] AS duration_p50, {d}[3] AS duration_p95,
            {t}[1] AS ttft_p50, {t}[3] AS ttft_p95
        FROM {_from(source)} WHERE {where} GROUP BY tier ORDER BY tier""",
        params, ids, "latency_by_tier",
    )


def escalation(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Per task type: requests and how many escalated (a retry at a higher tier in the same request).

    A request is the LLM calls of one trace sharing ``request_id`` (a call without one is
    a request of its own); it escalated when its calls span more than one tier.
    """
    scope = Scope(ids, pf)
    where, params = scope.where("spans_counted")
    return _df(
        f"""SELECT task_type, count() AS requests, countIf(tiers > 1) AS escalated
        FROM (
            SELECT argMin(task_type, start_time) AS task_type, uniqExact(tier) AS tiers
            FROM spans WHERE {where}
            GROUP BY trace_id, if(request_id = '', span_id, request_id)
        )
        GROUP BY task_type ORDER BY requests DESC LIMIT 30""",
        params, ids, "escalation",
    )


def quality_points(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Per task type × tier × thinking budget with scores: mean reasoning tokens and mean quality."""
    scope = Scope(ids, pf)
    where, params = scope.where("spans_counted")
    df = _df(
        f"""SELECT task_type, tier, thinking_budget, reasoning_effort, count() AS requests,
            avg(reasoning_tokens) AS reasoning_tokens, avg(quality) AS quality
        FROM spans WHERE {where} AND quality IS NOT NULL
        GROUP BY task_type, tier, thinking_budget, reasoning_effort
        HAVING requests >= 3 ORDER BY task_type, reasoning_tokens LIMIT 400""",
        params, ids, "quality_points",
    )
    if not df.empty:
        df["budget"] = [
            f"tier {int(t)}, " + (f"budget {int(b):,}" if b else (f"effort {e}" if e else "no budget"))
            for t, b, e in zip(df["tier"], df["thinking_budget"], df["reasoning_effort"], strict=True)
        ]
    return df


def budget_used(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Per requested thinking budget: requests and p50/p95 reasoning tokens used."""
    scope = Scope(ids, pf)
    where, params = scope.where("spans_counted")
    return _df(
        f"""SELECT thinking_budget, count() AS requests,
            quantileTDigest(0.5)(reasoning_tokens) AS used_p50, quantileTDigest(0.95)(reasoning_tokens) AS used_p95
        FROM spans WHERE {where} AND thinking_budget > 0
        GROUP BY thinking_budget HAVING requests >= 1 ORDER BY thinking_budget LIMIT 100""",
        params, ids, "budget_used",
    )


def runaway_traces(ids: Sequence[int], pf: PageFilters, limit: int = 25) -> list[dict[str, Any]]:
    """LLM calls flagged runaway at ingest, or whose reasoning tokens exceed the p95 of
    their task class (task type × tier) in the range by ``RUNAWAY_MULTIPLE``, worst first."""
    scope = Scope(ids, pf)
    where_h, params = scope.where("usage_hourly", filters={k: v for k, v in pf.column_filters.items()
                                                             if k in HOURLY_DIMENSIONS})
    where_s, params_s = scope.where("spans_counted", alias="s")
    params.update(params_s)
    params["limit"] = limit
    params["multiple"] = RUNAWAY_MULTIPLE
    df = _df(
        f"""WITH classes AS (
            SELECT task_type, tier, quantilesTDigestMerge(0.95)(reasoning_q)[1] AS p95
            FROM usage_hourly WHERE {where_h} GROUP BY task_type, tier
        )
        SELECT s.trace_id AS trace_id, s.start_time AS start_time, s.project_id AS project_id, s.service AS service,
            s.model AS model, s.task_type AS task_type, s.tier AS tier, s.user_id AS user_id,
            s.reasoning_tokens AS reasoning_tokens, c.p95 AS p95, toFloat64(s.cost_total) AS cost_total,
            s.thinking_budget AS thinking_budget
        FROM spans AS s INNER JOIN classes AS c ON s.task_type = c.task_type AND s.tier = c.tier
        WHERE {where_s}
            AND s.reasoning_tokens > 0
            AND (s.runaway = 1 OR s.reasoning_tokens > c.p95 * {{multiple:Float64}})
        ORDER BY s.reasoning_tokens / greatest(c.p95, 1) DESC LIMIT {{limit:UInt32}}""",
        params, ids, "runaway_traces",
    )
    return df.to_dict("records")


# ---------------------------------------------------------------- traces

TRACE_SORTS = {"recent": "start_time DESC", "cost": "cost_total DESC", "reasoning": "reasoning_tokens DESC",
               "duration": "duration_ms DESC"}


def search_traces(ids: Sequence[int], pf: PageFilters, *, min_cost: float = 0.0, min_reasoning: int = 0,
                  status: str = "", runaway_only: bool = False, sort: str = "recent", limit: int = 50,
                  offset: int = 0) -> list[dict[str, Any]]:
    """One row per trace in range with its totals; filters apply to the trace's LLM calls."""
    scope = Scope(ids, pf)
    where, params = scope.where("spans")
    having = ["llm_calls > 0 OR spans > 0"]
    if min_cost > 0:
        having.append("cost_total >= {min_cost:Float64}")
        params["min_cost"] = min_cost
    if min_reasoning > 0:
        having.append("reasoning_tokens >= {min_reasoning:UInt64}")
        params["min_reasoning"] = min_reasoning
    if status == "error":
        having.append("errors > 0")
    elif status == "ok":
        having.append("errors = 0")
    if runaway_only:
        having.append("runaway > 0")
    params["limit"] = limit
    params["offset"] = offset
    df = _df(
        f"""SELECT trace_id, any(project_id) AS project_id, min(start_time) AS start_time,
            (max(toUnixTimestamp64Nano(start_time) + duration_ns) - min(toUnixTimestamp64Nano(start_time))) / 1e6
                AS duration_ms,
            argMin(name, start_time) AS root_name, anyIf(service, service != '') AS service,
            anyIf(user_id, user_id != '') AS user_id, anyIf(task_type, task_type != '') AS task_type,
            max(tier) AS tier, groupUniqArrayIf(5)(model, model != '') AS models,
            count() AS spans, countIf(counted = 1) AS llm_calls, countIf(status = 'error') AS errors,
            sumIf(reasoning_tokens, counted = 1) AS reasoning_tokens,
            sumIf(input_tokens, counted = 1) AS input_tokens, sumIf(output_tokens, counted = 1) AS output_tokens,
            toFloat64(sumIf(cost_total, counted = 1)) AS cost_total, max(runaway) AS runaway
        FROM spans WHERE {where}
        GROUP BY trace_id HAVING {' AND '.join(having)}
        ORDER BY {TRACE_SORTS.get(sort, TRACE_SORTS['recent'])} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}""",
        params, ids, "search_traces",
    )
    return df.to_dict("records")


def trace_spans(ids: Sequence[int], trace_id: str) -> pd.DataFrame:
    """Every stored span of one trace (duplicates collapsed to the counted copy), in start order."""
    df = _df(
        f"""SELECT project_id, span_id, argMax(parent_span_id, counted) AS parent_span_id,
            argMax(name, counted) AS name, argMax(kind, counted) AS otel_kind, argMax(status, counted) AS status,
            argMax(status_message, counted) AS status_message, argMax(start_time, counted) AS start_time,
            argMax(duration_ns, counted) AS duration_ns, argMax(service, counted) AS service,
            argMax(provider, counted) AS provider, argMax(model, counted) AS model,
            argMax(operation, counted) AS operation, argMax(task_type, counted) AS task_type,
            argMax(tier, counted) AS tier, argMax(user_id, counted) AS user_id,
            argMax(thinking_budget, counted) AS thinking_budget, argMax(ttft_ms, counted) AS ttft_ms,
            argMax(input_tokens, counted) AS input_tokens, argMax(cache_read_tokens, counted) AS cache_read_tokens,
            argMax(cache_write_tokens, counted) AS cache_write_tokens,
            argMax(output_tokens, counted) AS output_tokens, argMax(reasoning_tokens, counted) AS reasoning_tokens,
            argMax(reasoning_estimated, counted) AS reasoning_estimated, argMax(has_usage, counted) AS has_usage,
            max(counted) AS counted, toFloat64(argMax(cost_total, counted)) AS cost_total,
            toFloat64(argMax(cost_reasoning, counted)) AS cost_reasoning, argMax(priced, counted) AS priced,
            argMax(quality, counted) AS quality, max(runaway) AS runaway,
            argMax(prompt_text, counted) AS prompt_text, argMax(completion_text, counted) AS completion_text
        FROM spans WHERE project_id IN {PROJECT_PARAM} AND trace_id = {{trace_id:String}}
        GROUP BY project_id, span_id ORDER BY start_time, span_id LIMIT 5000""",
        {"trace_id": trace_id}, ids, "trace_spans",
    )
    if df.empty:
        return df
    starts = pd.to_datetime(df["start_time"], utc=True)
    origin = starts.min()
    df["offset_ms"] = [(s - origin).total_seconds() * 1000 for s in starts]
    df["duration_ms"] = [int(d) / 1e6 for d in df["duration_ns"]]
    parents = dict(zip(df["span_id"], df["parent_span_id"], strict=True))
    df["depth"] = [_depth(span, parents) for span in df["span_id"]]
    df["kind"] = [
        display_kind(bool(u), m, op, n, k)
        for u, m, op, n, k in zip(df["has_usage"], df["model"], df["operation"], df["name"], df["otel_kind"], strict=True)
    ]
    return df


def _depth(span_id: str, parents: dict[str, str]) -> int:
    depth, seen = 0, {span_id}
    parent = parents.get(span_id, "")
    while parent and parent in parents and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = parents[parent]
    return depth


def display_kind(has_usage: bool, model: str, operation: str, name: str, otel_kind: str) -> str:
    """What a span is, for colouring the waterfall: llm, tool, server, internal or other."""
    if has_usage or model:
        return "llm"
    if "tool" in operation.lower() or "tool" in name.lower():
        return "tool"
    if otel_kind == "server":
        return "server"
    return "internal" if otel_kind in ("internal", "unspecified") else "other"


# ---------------------------------------------------------------- prices

def unpriced_models(ids: Sequence[int], pf: PageFilters) -> list[dict[str, Any]]:
    """Models seen in range without a price: spans, requests, tokens, first and last seen."""
    scope = Scope(ids, pf)
    where, params = scope.where("spans_counted", filters={})
    df = _df(
        f"""SELECT model, provider, count() AS spans, uniqExact(project_id) AS projects,
            sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            min(start_time) AS first_seen, max(start_time) AS last_seen
        FROM spans WHERE {where} AND NOT priced AND has_usage
        GROUP BY model, provider ORDER BY spans DESC LIMIT 200""",
        params, ids, "unpriced_models",
    )
    return df.to_dict("records")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
