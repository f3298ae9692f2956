"""Data for the dashboard pages: :mod:`dashboards.queries` calls shaped for the figures.

The SQL lives in :mod:`dashboards.queries`. This module turns a page's state
(:class:`~dashboards.page_filters.PageFilters`) into those calls and reshapes the
results into the columns :mod:`dashboards.figures` documents. The two small queries the
page chrome needs and ``queries`` does not have (the values offered in the filter
selects, and whether a project ever stored anything) are here, scoped the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from dashboards import queries
from dashboards.page_filters import PageFilters
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

FILTER_OPTIONS_SQL = """
SELECT groupUniqArray(200)(service) AS o_service, groupUniqArray(200)(environment) AS o_environment,
    groupUniqArray(200)(model) AS o_model, groupUniqArray(200)(task_type) AS o_task_type,
    groupUniqArray(50)(toString(tier)) AS o_tier, sum(unpriced) AS unpriced
FROM ({rows})
"""
ANY_DATA_SQL = f"SELECT 1 AS x FROM usage_hourly WHERE project_id IN {PROJECT_PARAM} LIMIT 1"
SELECT_DIMENSIONS = ("service", "environment", "model", "task_type", "tier")


def has_any_data(ids: Sequence[int]) -> bool:
    """Whether these projects ever stored an LLM call (tells "no traces yet" from "nothing in range")."""
    if not ids:
        return False
    return bool(clickhouse.execute(ANY_DATA_SQL, tag="pages.has_any_data", projects=list(ids)))


def filter_options_and_unpriced(ids: Sequence[int], pf: PageFilters) -> tuple[dict[str, list[str]], int]:
    """:func:`filter_options` and the LLM calls without a price in the range widened to
    whole hours (left out of every sum), from one read of the rollups."""
    if not ids:
        return {}, 0
    union, params = queries.rollup_rows_sql(", ".join([*SELECT_DIMENSIONS, "unpriced"]), pf.start, pf.end)
    rows = clickhouse.execute(FILTER_OPTIONS_SQL.format(rows=union), params, tag="pages.filter_options",
                              projects=list(ids), settings=queries.ONE_THREAD)
    out: dict[str, list[str]] = {}
    for column in SELECT_DIMENSIONS:
        values = [str(v) for v in rows[0][f"o_{column}"] if str(v) != ""] if rows else []
        out[column] = sorted(values, key=lambda v: (int(v) if v.isdigit() else 0, v))
    return out, int(rows[0]["unpriced"] or 0) if rows else 0


def filter_options(ids: Sequence[int], pf: PageFilters) -> dict[str, list[str]]:
    """Values of each select-able dimension seen in the range (the filters themselves
    ignored), from the rollups over whole hours."""
    return filter_options_and_unpriced(ids, pf)[0]


# ---------------------------------------------------------------- finance

TOTAL_COLUMNS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                 "reasoning_tokens", "cost_input", "cost_cache", "cost_output", "cost_reasoning", "cost_total")


def frame_totals(df: pd.DataFrame) -> dict[str, float]:
    """Column sums of a :func:`breakdowns` frame: with its "other" row, the totals of the whole view."""
    return {column: float(df[column].sum()) if not df.empty else 0.0 for column in TOTAL_COLUMNS}


def unpriced_calls(ids: Sequence[int], pf: PageFilters) -> int:
    """LLM calls in the range whose model had no price (left out of every sum)."""
    return filter_options_and_unpriced(ids, pf)[1]


TOTALS_SHOWN = ("requests", "output_tokens", "reasoning_tokens", "cost_total")


def totals(ids: Sequence[int], pf: PageFilters) -> dict[str, float]:
    """The Engineering page's sums over the view (floats): requests, output_tokens,
    reasoning_tokens and cost_total."""
    if not ids:
        return {}
    sums = queries.usage_totals(ids, pf.start, pf.end, pf.column_filters, measures=TOTALS_SHOWN)
    return {m: float(sums[m]) for m in TOTALS_SHOWN}


def spend_over_time(ids: Sequence[int], pf: PageFilters) -> pd.DataFrame:
    """Columns: bucket and the cost parts."""
    return queries.spend_over_time(ids, pf.start, pf.end, pf.interval, pf.column_filters)


BREAKDOWNS = ("project", "tier", "model", "task_type")
OTHER_KEY = "\x00other"  # groups past the query's limit, kept apart from a real value "other"


def breakdowns(ids: Sequence[int], pf: PageFilters, names: dict[str, str] | None = None, limit: int = 10,
               dimensions: Sequence[str] = BREAKDOWNS, slugs: Mapping[int, str] | None = None,
               ) -> dict[str, pd.DataFrame]:
    """Spend by each of ``dimensions`` from one usage query grouped by all of them.

    Each frame has columns label, requests, token sums and the cost parts, largest
    first: the top ``limit`` groups and an "other" row for the rest. Project slugs become
    ``names[slug]``; tiers read "tier N" ("untiered" for 0). One query instead of one per
    dimension: the combinations are few (they are the hourly rollup's grain). ``slugs``
    (project id → slug) spares the database lookup.
    """
    query = queries.UsageQuery(ids, pf.start, pf.end, group_by=list(dimensions), filters=pf.column_filters,
                               limit=queries.MAX_LIMIT)
    if not ids:
        return {dim: pd.DataFrame(columns=["label", *TOTAL_COLUMNS]) for dim in dimensions}
    keys, other, measures = queries.usage_arrays(query, tag="pages.breakdowns", slugs=slugs)
    values = np.column_stack([measures[c].astype("float64") for c in TOTAL_COLUMNS]) if len(other) else None
    return {dim: _breakdown(keys[dim], other, values, dim, names or {}, limit) for dim in dimensions}


def _breakdown(keys: Sequence[Any], other: np.ndarray, values: np.ndarray | None, dim: str, names: dict[str, str],
               limit: int) -> pd.DataFrame:
    """One dimension's rows: ``keys`` (its value per grouped row), ``other`` (the query's
    own "other" rows) and ``values`` (the rows' :data:`TOTAL_COLUMNS`) folded per value."""
    columns = ["label", *TOTAL_COLUMNS]
    if values is None or not len(values):
        return pd.DataFrame(columns=columns)
    sums: dict[str, np.ndarray] = {}
    for key, is_other, row in zip(keys, other, values, strict=True):
        name = OTHER_KEY if is_other else str(key)
        sums[name] = sums[name] + row if name in sums else row.copy()
    ranked = sorted((k for k in sums if k != OTHER_KEY), key=lambda k: -sums[k][-1])  # by cost_total, stable
    top, rest = ranked[:limit], ranked[limit:] + ([OTHER_KEY] if OTHER_KEY in sums else [])
    labels = [_label(dim, key, names) for key in top]
    table = [sums[key] for key in top]
    if rest:
        labels.append(_label(dim, OTHER_KEY, names))
        table.append(np.sum([sums[k] for k in rest], axis=0))
    matrix = np.vstack(table)
    return pd.DataFrame({"label": labels, **{c: matrix[:, i].round().astype("int64") if not c.startswith("cost")
                                            else matrix[:, i] for i, c in enumerate(TOTAL_COLUMNS)}})


def _label(dim: str, key: str, names: dict[str, str]) -> str:
    if key == OTHER_KEY:
        return "other"
    if dim == "project":
        return names.get(key, key)
    if dim == "tier":
        return f"tier {key}" if key != "0" else "untiered"
    return key or "(none)"


@dataclass(frozen=True)
class MonthSpend:
    """This month's spend per day and the recent complete days that feed the forecast."""

    month_start: datetime
    month_end: datetime
    daily: pd.DataFrame  # day, cost: this month through today
    history: list[float]  # complete days before today (up to 28), from the first day with spend
    month_to_date: float
    today_so_far: float


def month_spend(ids: Sequence[int], pf: PageFilters, now: datetime) -> MonthSpend:
    """Month-to-date spend (the page's dimension filters apply, its time range does not)."""
    data = queries.mtd_spend_and_daily(ids, now, pf.column_filters)
    daily: pd.DataFrame = data["daily"]
    today = now.date()
    days: list[date] = list(daily["day"])
    costs = [float(c) for c in daily["cost_total"]]
    month = [(d, c) for d, c in zip(days, costs, strict=True) if d >= data["month_start"].date()]
    past = [(d, c) for d, c in zip(days, costs, strict=True) if d < today]
    first_spend = next((i for i, (_, c) in enumerate(past) if c > 0), len(past))
    history = [c for _, c in past[first_spend:]][-28:]
    return MonthSpend(
        month_start=data["month_start"], month_end=data["month_end"],
        daily=pd.DataFrame({"day": [d for d, _ in month], "cost": [c for _, c in month]}),
        history=history, month_to_date=float(data["mtd_cost"]),
        today_so_far=next((c for d, c in zip(days, costs, strict=True) if d == today), 0.0),
    )


def top_users(ids: Sequence[int], pf: PageFilters, n: int = 15) -> pd.DataFrame:
    """Columns: user_id, requests, reasoning_tokens, cost_total, largest first."""
    return queries.top_users(ids, pf.start, pf.end, n, pf.column_filters)


def month_report(ids: Sequence[int], start: datetime, end: datetime, names: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Spend by project, tier, model and task type over one month (every group, no "other")."""
    return breakdowns(ids, PageFilters(range_key="custom", start=start, end=end), names, limit=queries.MAX_LIMIT)


# ---------------------------------------------------------------- engineering

def task_class(task_type: str, tier: int) -> str:
    return f"{task_type or 'unclassified'} · tier {tier}" if tier else (task_type or "unclassified")


def call_sample(ids: Sequence[int], pf: PageFilters, total: int | None = None) -> pd.DataFrame:
    """The view's call sample (``queries.call_sample``) that the next five functions share as ``calls``."""
    return queries.call_sample(ids, pf.start, pf.end, pf.column_filters, total=total)


def reasoning_distribution(ids: Sequence[int], pf: PageFilters, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reasoning-token quantiles of the busiest task classes: task_class, requests, p50, p90, p95, p99."""
    frame = queries.reasoning_distribution(ids, pf.start, pf.end, pf.column_filters, calls=calls)
    frame["task_class"] = [task_class(str(t), int(tier)) for t, tier in zip(frame["task_type"], frame["tier"],
                                                                          strict=True)]
    return frame


def latency_by_tier(ids: Sequence[int], pf: PageFilters, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    return queries.latency_by_tier(ids, pf.start, pf.end, pf.column_filters, calls=calls)


def escalation(ids: Sequence[int], pf: PageFilters, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Columns: task_type, requests, escalated, rate."""
    return queries.escalation_rate_by_task_type(ids, pf.start, pf.end, pf.column_filters, calls=calls)


def quality_points(ids: Sequence[int], pf: PageFilters, min_samples: int = 3,
                   calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Columns: task_type, budget (a label), reasoning_tokens (mean), quality (mean), requests."""
    df = queries.quality_vs_reasoning(ids, pf.start, pf.end, pf.column_filters, min_samples=min_samples,
                                      calls=calls)
    df = df.rename(columns={"mean_reasoning_tokens": "reasoning_tokens", "mean_quality": "quality"})
    df["budget"] = [
        f"tier {int(t)}, " + (f"budget {int(b):,}" if b else (f"effort {e}" if e else "no budget"))
        for t, b, e in zip(df["tier"], df["thinking_budget"], df["reasoning_effort"], strict=True)
    ]
    return df


def budget_used(ids: Sequence[int], pf: PageFilters, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """A sample of calls with a thinking budget. Columns: thinking_budget, reasoning_tokens."""
    return queries.budget_vs_used(ids, pf.start, pf.end, pf.column_filters, calls=calls)


def runaway_traces(ids: Sequence[int], pf: PageFilters, limit: int = 25,
                   slugs: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """The newest traces with a span flagged runaway at ingest, as trace-search rows."""
    return [_trace_display(row)
            for row in queries.runaway_traces(ids, pf.start, pf.end, limit, pf.column_filters, slugs=slugs)]


# ---------------------------------------------------------------- traces

def _trace_display(row: dict[str, Any]) -> dict[str, Any]:
    """A trace-search row with a datetime start and float cost for the templates."""
    return {**row, "start": datetime.fromisoformat(row["start"].replace("Z", "+00:00")),
            "cost": float(row["cost_usd"]), "models": ", ".join(row["models"])}


def search_traces(ids: Sequence[int], pf: PageFilters, *, min_cost: float | None = None,
                  min_reasoning: int | None = None, status: str | None = None, runaway: bool | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int | None]:
    """A page of matching traces, newest first, and the offset of the next page (None at the end)."""
    search = queries.TraceSearch(
        ids, pf.start, pf.end, filters=pf.column_filters, status=status or None,
        min_cost=Decimal(str(min_cost)) if min_cost else None, min_reasoning_tokens=min_reasoning or None,
        runaway=runaway, limit=limit, offset=offset,
    )
    result = queries.search_traces(search, tag="pages.traces")
    return [_trace_display(row) for row in result["traces"]], result["next_offset"]


def trace(ids: Sequence[int], trace_id: str, include_text: bool) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """A trace (``queries.trace_detail``) and its spans as a DataFrame for the waterfall.

    Each span gains ``depth`` (nesting level), ``kind`` (llm, tool, server, internal,
    other: what the span is, for colour; the OTel kind moves to ``otel_kind``) and a
    float ``cost_total``."""
    detail = queries.trace_detail(ids, trace_id, include_text=include_text, tag="pages.trace")
    if detail is None:
        return None
    parents = {s["span_id"]: s["parent_span_id"] or "" for s in detail["spans"]}
    for span in detail["spans"]:
        span["depth"] = _depth(span["span_id"], parents)
        span["otel_kind"] = span["kind"]
        span["kind"] = display_kind(span)
        span["cost_total"] = float(span["cost_usd"])
    return detail, pd.DataFrame(detail["spans"])


def _depth(span_id: str, parents: dict[str, str]) -> int:
    depth, seen = 0, {span_id}
    parent = parents.get(span_id, "")
    while parent and parent in parents and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = parents[parent]
    return depth


def display_kind(span: dict[str, Any]) -> str:
    """What a span is, for colouring the waterfall: llm, tool, server, internal or other."""
    if span.get("has_usage") or span.get("model"):
        return "llm"
    if "tool" in str(span.get("operation", "")).lower() or "tool" in str(span.get("name", "")).lower():
        return "tool"
    kind = str(span.get("kind", ""))
    if kind == "server":
        return "server"
    return "internal" if kind in ("internal", "unspecified") else "other"


# ---------------------------------------------------------------- prices

def unpriced_models(ids: Sequence[int], days: int = 90, now: datetime | None = None) -> list[dict[str, Any]]:
    """Models seen in the last ``days`` days without a price, most spans first."""
    end = queries.ceil_hour(queries.as_utc(now or datetime.now(UTC)))
    df = queries.unpriced_models(ids, end - timedelta(days=days), end)
    return df.to_dict("records") if not df.empty else []
