"""Every analytics query over ClickHouse: the usage, traces and budgets API and the pages' data.

Contract (every function in this module):

- **Scope.** ``project_ids`` are the projects the caller may read (from
  :func:`thinkmeter.access.scoped_projects`); every statement filters on
  ``project_id IN {project_ids:Array(UInt32)}``. An empty list reads nothing and
  returns an empty result.
- **Time.** ``start`` is inclusive, ``end`` exclusive; timezone-aware datetimes (naive
  ones are taken as UTC). Results carry UTC times.
- **Filters.** ``filters`` maps a dimension of :data:`DIMENSIONS` (except ``project``,
  which is the scope) to one value or a list of values: values of one dimension are
  OR-ed, dimensions AND-ed. ``tier`` values are integers 0–255.
- **Counting.** Sums count only rows with ``counted = 1`` (the one stored row per
  provider call), so re-sent batches and double instrumentation never add twice,
  whether or not ClickHouse has merged the duplicates yet. "requests" are LLM calls.
- **Sources.** A usage aggregate reads the rollups when every grouped and filtered
  dimension is in their grain (:func:`plan`): ``usage_daily`` for the whole days of the
  range and ``usage_hourly`` for its other whole hours (:data:`HOURLY_DIMENSIONS`; only
  the hourly one for interval=hour), ``usage_daily_user_totals`` (project and user_id
  only) or ``usage_daily_users`` (:data:`USER_DIMENSIONS`) for whole days with interval
  day or coarser, and ``spans`` with ``counted = 1`` for the rest: the ragged ends of a
  range not on hour (or day) boundaries, or every dimension the rollups lack. Answers
  are exact for any range. Quantiles from rollups are t-digest estimates.
- **Samples.** Statistics of single calls (distributions, latency, escalations, the
  quality frontier, budget against use) come from one table of calls,
  :func:`call_sample`: every call when the range has at most :data:`PAGE_SAMPLE_CALLS`, else
  a uniform sample of traces picked by trace-id range, which the sort key lets
  ClickHouse skip to (:class:`Sample`), read from ``sampled_calls`` (1/32 of traces,
  kept by the 0005 migration's view) when the sample fits in it. A page reads it once and
  passes it as ``calls=``; results carry ``attrs["sample_fraction"]``. The quality part of :func:`budget_stats` samples the same
  way. Trace search and runaway traces look at the newest hours first and widen the
  window only as needed.
- **Money.** The API functions (:func:`usage_rows`, :func:`search_traces`,
  :func:`trace_detail`, :func:`budget_stats`) return money as exact decimal strings
  (USD, 9 places); the four cost parts add up exactly to ``cost_usd``. Page functions
  return DataFrames with float USD columns named ``cost_input``, ``cost_cache``,
  ``cost_output`` (visible output), ``cost_reasoning`` and ``cost_total``, for charts.
- **Errors.** Bad input raises :class:`QueryError` (a ``ValueError``) with a message
  fit for a 400 answer. Storage failures raise :class:`thinkmeter.clickhouse.ClickHouseError`.

API functions: :func:`usage_rows` (``GET /api/v1/usage``), :func:`search_traces`
(``GET /api/v1/traces``), :func:`trace_detail` (``GET /api/v1/traces/<id>``),
:func:`budget_stats` (``GET /api/v1/budgets``; also called by the alert engine and
reached by the SDK).

Page functions: :func:`spend_over_time`, :func:`spend_by`, :func:`mtd_spend_and_daily`,
:func:`top_users`, :func:`reasoning_share`, :func:`usage_totals`, :func:`call_sample` (shared by the
next five), :func:`reasoning_distribution`,
:func:`latency_by_tier`, :func:`escalation_rate_by_task_type`,
:func:`quality_vs_reasoning`, :func:`budget_vs_used`, :func:`runaway_traces`,
:func:`unpriced_models`.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

_rollups: Any = importlib.import_module("thinkmeter.clickhouse.migrations.0003_rollups")
_sampling: Any = importlib.import_module("thinkmeter.clickhouse.migrations.0005_daily_rollup_and_sampled_calls")

# ---------------------------------------------------------------- vocabulary

DIMENSIONS: tuple[str, ...] = (
    "project", "service", "environment", "provider", "model", "tier", "task_type", "user_id", "session_id",
    "operation",
)
COLUMNS: dict[str, str] = {d: ("project_id" if d == "project" else d) for d in DIMENSIONS}
HOURLY_DIMENSIONS = frozenset({"project", "service", "environment", "provider", "model", "operation", "task_type",
                               "tier"})
USER_DIMENSIONS = frozenset({"project", "user_id", "task_type", "tier", "model"})
INTERVALS: tuple[str, ...] = ("hour", "day", "week", "month")
DEFAULT_DAYS = 30
DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
MAX_HOURLY_DAYS = 92
MAX_RANGE_DAYS = 800
OTHER = "other"
NANO = Decimal("0.000000001")
TS = "DateTime64(6, 'UTC')"

MEASURES: tuple[str, ...] = (
    "requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total",
)
TOKEN_MEASURES = MEASURES[1:6]
COST_MEASURES = MEASURES[6:]

Filters = Mapping[str, str | int | Sequence[str | int]]


class QueryError(ValueError):
    """Bad input to a query (unknown dimension, bad date, ...): the API answers 400 with the message."""


# ---------------------------------------------------------------- input parsing

def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_when(text: str, name: str) -> datetime:
    """An ISO-8601 date (midnight UTC) or datetime (UTC when it has no offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError:
        raise QueryError(f"{name}={text!r} is not an ISO-8601 date (2025-01-31) or datetime "
                         f"(2025-01-31T12:00:00Z)") from None


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + timedelta(hours=1)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: datetime) -> datetime:
    floored = floor_day(moment)
    return floored if floored == moment else floored + timedelta(days=1)


def time_range(start_text: str | None, end_text: str | None, *, now: datetime | None = None,
               default_days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    """``from``/``to`` parameters → (start, end); default: the last ``default_days`` days.

    The default end is the end of the current hour, so a default range is hour-aligned
    (served by the rollup) and includes everything stored so far.
    """
    end = parse_when(end_text, "to") if end_text else ceil_hour(as_utc(now or datetime.now(UTC)) + timedelta(
        microseconds=1))
    start = parse_when(start_text, "from") if start_text else end - timedelta(days=default_days)
    if start >= end:
        raise QueryError("from must be before to (to is exclusive)")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise QueryError(f"the range may cover at most {MAX_RANGE_DAYS} days")
    return start, end


def parse_window(text: str | None, default: str = "7d") -> timedelta:
    """``7d``, ``24h``, ``90m`` → a timedelta (at most 400 days)."""
    value = (text or default).strip().lower()
    match = re.fullmatch(r"(\d{1,5})\s*([mhdw])", value)
    if not match:
        raise QueryError(f"window={text!r}: use a number and a unit, like 7d, 24h, 2w or 90m")
    amount, unit = int(match.group(1)), match.group(2)
    window = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount),
              "w": timedelta(weeks=amount)}[unit]
    if window <= timedelta(0) or window > timedelta(days=400):
        raise QueryError("window must be more than 0 and at most 400 days")
    return window


def parse_group_by(text: str | Sequence[str] | None) -> list[str]:
    """``task_type,tier`` → ["task_type", "tier"] (order kept, duplicates dropped)."""
    if not text:
        return []
    items = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item not in DIMENSIONS:
            raise QueryError(f"unknown dimension {item!r} in group_by; use any of {', '.join(DIMENSIONS)}")
        if item not in out:
            out.append(item)
    return out


def parse_interval(text: str | None) -> str | None:
    if not text:
        return None
    if text not in INTERVALS:
        raise QueryError(f"unknown interval {text!r}; use one of {', '.join(INTERVALS)}")
    return text


def parse_limit(text: str | int | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT,
                name: str = "limit") -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise QueryError(f"{name}={text!r} is not a whole number") from None
    if not 1 <= value <= maximum:
        raise QueryError(f"{name} must be between 1 and {maximum}")
    return value


def normalize_filters(filters: Filters | None) -> dict[str, list[str | int]]:
    """Validate dimension filters: known dimensions (not ``project``), tiers as integers."""
    out: dict[str, list[str | int]] = {}
    for name, raw in (filters or {}).items():
        if name not in DIMENSIONS:
            raise QueryError(f"unknown filter dimension {name!r}; use any of {', '.join(DIMENSIONS)}")
        if name == "project":
            raise QueryError("filter projects with ?project=<slug>, which narrows the scope")
        values = [raw] if isinstance(raw, str | int) else list(raw)
        if not values:
            continue
        if name == "tier":
            tiers: list[str | int] = []
            for value in values:
                text = str(value).strip()
                if not text.isdigit() or int(text) > 255:
                    raise QueryError(f"tier={value!r}: a tier is a whole number from 0 to 255")
                tiers.append(int(text))
            out[name] = tiers
        else:
            out[name] = [str(v) for v in values]
    return out


def filters_from_query(query: Mapping[str, Any], getlist: Any = None) -> dict[str, list[str | int]]:
    """Dimension filters from request parameters: ``?model=a&model=b`` or ``?model=a,b``."""
    raw: dict[str, list[str]] = {}
    for name in DIMENSIONS:
        if name == "project" or name not in query:
            continue
        values = getlist(name) if getlist else [query[name]]
        items = [item.strip() for value in values for item in str(value).split(",")]
        raw[name] = [item for item in items if item != ""] or [""]
    return normalize_filters(raw)


def _ids(project_ids: Iterable[int]) -> list[int]:
    return sorted({int(p) for p in project_ids})


def _filter_sql(filters: Mapping[str, list[str | int]], alias: str = "") -> tuple[list[str], dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name, values in filters.items():
        column = f"{alias}{COLUMNS[name]}"
        kind = "Array(UInt8)" if name == "tier" else "Array(String)"
        clauses.append(f"{column} IN {{f_{name}:{kind}}}")
        params[f"f_{name}"] = list(values)
    return clauses, params


def _money(value: Decimal | float | int | None) -> str:
    if value is None:
        return "0.000000000"
    return format(Decimal(value).quantize(NANO), "f")


def _iso(moment: datetime | pd.Timestamp | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, pd.Timestamp):
        moment = moment.to_pydatetime()
    text = as_utc(moment).isoformat()
    return text.replace("+00:00", "Z")


def _iso_ns(ns: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- usage: plan and SQL

@dataclass(frozen=True)
class Segment:
    """One source table serving part of the time range."""

    table: str  # usage_daily | usage_hourly | usage_daily_users | spans
    start: datetime
    end: datetime


@dataclass(frozen=True)
class UsageQuery:
    """A usage aggregate: grouped by dimensions (and a time bucket), filtered, top-N limited.

    ``measures`` are the sums to read (a subset of :data:`MEASURES`, in its order; every
    one by default): each is a column read, so pages ask for what they show. Grouped
    queries rank by cost, so they always read cost_total.
    """

    project_ids: Sequence[int]
    start: datetime
    end: datetime
    group_by: Sequence[str] = ()
    interval: str | None = None
    filters: Filters = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    measures: Sequence[str] = MEASURES

    def __post_init__(self) -> None:
        unknown = set(self.measures) - set(MEASURES)
        if unknown or not self.measures:
            raise ValueError(f"measures must be some of {MEASURES}, not {sorted(unknown)}")
        wanted = set(self.measures) | ({"cost_total"} if self.group_by else set())
        object.__setattr__(self, "measures", tuple(m for m in MEASURES if m in wanted))
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        object.__setattr__(self, "group_by", tuple(parse_group_by(list(self.group_by))))
        object.__setattr__(self, "filters", normalize_filters(self.filters))
        parse_interval(self.interval)
        if self.start >= self.end:
            raise QueryError("from must be before to (to is exclusive)")
        if self.interval == "hour" and self.end - self.start > timedelta(days=MAX_HOURLY_DAYS):
            raise QueryError(f"interval=hour covers at most {MAX_HOURLY_DAYS} days; use day, week or month")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")

    @property
    def dimensions(self) -> set[str]:
        """Every dimension the query groups or filters by."""
        return set(self.group_by) | set(self.filters)


# The rollups with usage_hourly's dimensions, coarsest first, with their time grain.
Level = tuple[str, Callable[[datetime], datetime], Callable[[datetime], datetime]]  # (table, floor, ceil)
ROLLUP_LEVELS: tuple[Level, ...] = (("usage_daily", floor_day, ceil_day), ("usage_hourly", floor_hour, ceil_hour))
USER_LEVELS: tuple[Level, ...] = (("usage_daily_users", floor_day, ceil_day),)
USER_TOTAL_LEVELS: tuple[Level, ...] = (("usage_daily_user_totals", floor_day, ceil_day),)
USER_TOTAL_DIMENSIONS = frozenset({"project", "user_id"})


def cover(start: datetime, end: datetime, levels: Sequence[Level]) -> list[Segment]:
    """Segments covering [start, end): the first level's table for its whole units in the
    middle, the finer levels for the ragged ends, ``spans`` for what no level covers."""
    if not levels:
        return [Segment("spans", start, end)]
    (table, floor, ceil), finer = levels[0], levels[1:]
    lo, hi = ceil(start), floor(end)
    if lo >= hi:
        return cover(start, end, finer)
    return [*(cover(start, lo, finer) if start < lo else []), Segment(table, lo, hi),
            *(cover(hi, end, finer) if hi < end else [])]


def plan(query: UsageQuery) -> list[Segment]:
    """Which tables serve which part of the range (see the module docstring)."""
    dims = query.dimensions
    if dims <= HOURLY_DIMENSIONS:
        levels = ROLLUP_LEVELS if query.interval != "hour" else ROLLUP_LEVELS[1:]
    elif dims <= USER_TOTAL_DIMENSIONS and query.interval != "hour":
        levels = USER_TOTAL_LEVELS
    elif dims <= USER_DIMENSIONS and query.interval != "hour":
        levels = USER_LEVELS
    else:
        levels = ()
    return cover(query.start, query.end, levels)


DAY_TABLES = frozenset({"usage_daily", "usage_daily_users", "usage_daily_user_totals"})
TIME_COLUMN = {"spans": "start_time", "usage_hourly": "hour", **{table: "day" for table in DAY_TABLES}}
BUCKET_FUNCTION = {"hour": "toStartOfHour", "day": "toStartOfDay", "week": "toMonday", "month": "toStartOfMonth"}


# Statements that read rollups, samples or a few granules of spans run on one thread:
# spinning up more costs more than it saves on such reads, and a page runs several side
# by side (dashboards.page_fetch). Statements scanning spans over long ranges keep the default.
ONE_THREAD: dict[str, Any] = {"max_threads": 1}
SHORT_SCAN = timedelta(days=1)


def threads_for(segments: Sequence[Segment]) -> dict[str, Any]:
    """:data:`ONE_THREAD` unless a segment scans ``spans`` over more than :data:`SHORT_SCAN`."""
    long_scan = any(seg.table == "spans" and seg.end - seg.start > SHORT_SCAN for seg in segments)
    return {} if long_scan else ONE_THREAD


def _bucket(table: str, interval: str) -> str:
    column = TIME_COLUMN[table]
    if table in DAY_TABLES and interval == "day":
        return f"toDateTime64({column}, 0, 'UTC')"
    return f"toDateTime64({BUCKET_FUNCTION[interval]}({column}), 0, 'UTC')"


def _measure_sql(table: str, measures: Sequence[str]) -> list[str]:
    return [("count()" if table == "spans" and m == "requests" else f"sum({m})") + f" AS m_{m}" for m in measures]


def by_table(segments: Sequence[Segment]) -> list[tuple[str, list[Segment]]]:
    """Segments grouped by table, in order of first appearance: each table is read by one
    SELECT over all its ranges (a range's two ragged ends are one scan, not two)."""
    grouped: dict[str, list[Segment]] = {}
    for seg in segments:
        grouped.setdefault(seg.table, []).append(seg)
    return list(grouped.items())


def source_where(table: str, segments: Sequence[Segment], index: int, filters: Filters) -> tuple[str, dict[str, Any]]:
    """The WHERE conditions of one table's segments: scope, their time ranges (OR-ed),
    ``counted = 1`` on spans, filters. Parameter names carry ``index``."""
    column = TIME_COLUMN[table]
    params: dict[str, Any] = {}
    ranges = []
    for k, seg in enumerate(segments):
        name = f"s{index}_{k}"
        if table in DAY_TABLES:
            ranges.append(f"{column} >= {{{name}_start:Date}} AND {column} < {{{name}_end:Date}}")
            params[f"{name}_start"], params[f"{name}_end"] = seg.start.date(), seg.end.date()
        else:
            ranges.append(f"{column} >= {{{name}_start:{TS}}} AND {column} < {{{name}_end:{TS}}}")
            params[f"{name}_start"], params[f"{name}_end"] = seg.start, seg.end
    where = [f"project_id IN {PROJECT_PARAM}", ranges[0] if len(ranges) == 1 else
             "(" + " OR ".join(f"({r})" for r in ranges) + ")"]
    if table == "spans":
        where.append("counted = 1")
    clauses, filter_params = _filter_sql(normalize_filters(filters))
    params.update(filter_params)
    return " AND ".join([*where, *clauses]), params


def _source_sql(table: str, segments: Sequence[Segment], index: int, query: UsageQuery) -> tuple[str, dict[str, Any]]:
    where, params = source_where(table, segments, index, query.filters)
    keys = [f"{COLUMNS[d]} AS d_{d}" for d in query.group_by]
    if query.interval:
        keys.insert(0, f"{_bucket(table, query.interval)} AS bucket")
    group = ["bucket"] if query.interval else []
    group += [f"d_{d}" for d in query.group_by]
    sql = (f"SELECT {', '.join([*keys, *_measure_sql(table, query.measures)])} FROM {table} "
           f"WHERE {where}" + (f" GROUP BY {', '.join(group)}" if group else ""))
    return sql, params


def _usage_union(query: UsageQuery) -> tuple[str, dict[str, Any]]:
    parts, params = [], {}
    for index, (table, segments) in enumerate(by_table(plan(query))):
        sql, source_params = _source_sql(table, segments, index, query)
        parts.append(sql)
        params.update(source_params)
    return "\nUNION ALL\n".join(parts), params


def _sums_sql(query: UsageQuery) -> str:
    return ", ".join(f"sum(m_{m}) AS {m}" for m in query.measures)


def usage_sql(query: UsageQuery) -> tuple[str, dict[str, Any]]:
    """The statement for a usage query and its parameters (see :func:`usage_table`): groups
    ranked by cost over the whole range, those past the top ``limit`` summed per bucket
    into one row with ``is_top`` false."""
    union, params = _usage_union(query)
    bucket = ["bucket"] if query.interval else []
    if not query.group_by:
        group = " GROUP BY bucket ORDER BY bucket" if query.interval else ""
        return f"SELECT {', '.join([*bucket, _sums_sql(query)])} FROM ({union}){group}", params
    dims = [f"d_{d}" for d in query.group_by]
    defaults = {d: ("0" if d in ("tier", "project") else "''") for d in query.group_by}
    keyed = ", ".join(f"if(is_top, d_{d}, {defaults[d]}) AS g_{d}" for d in query.group_by)
    params["top_n"] = query.limit
    sql = f"""
SELECT {', '.join([*bucket, 'is_top', keyed, _sums_sql(query), 'min(grp_rank) AS first_rank'])}
FROM (
    SELECT *, grp_rank <= {{top_n:UInt32}} AS is_top
    FROM (
        SELECT *, dense_rank() OVER (ORDER BY group_cost DESC, {', '.join(dims)}) AS grp_rank
        FROM (
            SELECT *, sum(m_cost_total) OVER (PARTITION BY {', '.join(dims)}) AS group_cost
            FROM ({union})
        )
    )
)
GROUP BY {', '.join([*bucket, 'is_top', *(f'g_{d}' for d in query.group_by)])}
ORDER BY {', '.join([*bucket, 'is_top DESC', 'first_rank'])}"""
    return sql, params


def few_groups_sql(query: UsageQuery) -> tuple[str, dict[str, Any]]:
    """For a grouped query without interval: every group, largest cost first, at most
    ``limit + 1`` of them (the same rows and order as :func:`usage_sql` when there are no
    more groups than ``limit``, without its window functions)."""
    union, params = _usage_union(query)
    keys = ", ".join(f"d_{d} AS g_{d}" for d in query.group_by)
    order = ", ".join(f"g_{d}" for d in query.group_by)
    params["top_n_1"] = query.limit + 1
    sql = (f"SELECT true AS is_top, {keys}, {_sums_sql(query)} FROM ({union})\nGROUP BY {order}\n"
           f"ORDER BY cost_total DESC, {order} LIMIT {{top_n_1:UInt32}}")
    return sql, params


def usage_table(query: UsageQuery, tag: str = "dashboards.usage") -> pa.Table:
    """Run a usage query: columns [bucket], [is_top, g_<dimension>...], then its measures.

    ``is_top`` is false on the one "other" row per bucket that sums every group past
    the top ``limit`` (ranked by cost over the whole range).
    """
    ids = _ids(query.project_ids)
    if not ids:
        return pa.table({})
    settings = threads_for(plan(query))
    if query.group_by and not query.interval:  # usually fewer groups than the limit: no ranking needed
        sql, params = few_groups_sql(query)
        table = clickhouse.query_arrow(sql, params, tag=tag, projects=ids, settings=settings)
        if table.num_rows <= query.limit:
            return table
    sql, params = usage_sql(query)
    return clickhouse.query_arrow(sql, params, tag=tag, projects=ids, settings=settings)


def project_slugs(project_ids: Iterable[int]) -> dict[int, str]:
    from thinkmeter.models import Project

    return dict(Project.objects.filter(pk__in=list(project_ids)).values_list("pk", "slug"))


def usage_rows(query: UsageQuery, tag: str = "api.usage") -> list[dict[str, Any]]:
    """Rows for ``GET /api/v1/usage``: [bucket], dimensions, token sums and money strings.

    The "other" row has each grouped dimension set to ``"other"`` and ``"other": true``.
    The ``project`` dimension is the project's slug.
    """
    table = usage_table(query, tag)
    if table.num_rows == 0:
        # totals over nothing (no readable project) are still one row of zeros
        return [] if query.group_by or query.interval else [_usage_measures(dict.fromkeys(MEASURES, 0))]
    slugs = project_slugs(query.project_ids) if "project" in query.group_by else {}
    rows: list[dict[str, Any]] = []
    for record in table.to_pylist():
        row: dict[str, Any] = {}
        if query.interval:
            row["bucket"] = _iso(record["bucket"])
        other = bool(query.group_by) and not record["is_top"]
        for dim in query.group_by:
            value = record[f"g_{dim}"]
            if other:
                value = OTHER
            elif dim == "project":
                value = slugs.get(int(value), str(value))
            row[dim] = value
        if other:
            row["other"] = True
        row.update(_usage_measures(record))
        rows.append(row)
    return rows


def _usage_measures(record: Mapping[str, Any]) -> dict[str, Any]:
    tokens = {m: int(record[m] or 0) for m in TOKEN_MEASURES}
    cost = {m: Decimal(record[m] or 0) for m in COST_MEASURES}
    return {
        "requests": int(record["requests"] or 0),
        **tokens,
        "visible_output_tokens": tokens["output_tokens"] - tokens["reasoning_tokens"],
        "cost_usd": _money(cost["cost_total"]),
        "cost_input_usd": _money(cost["cost_input"]),
        "cost_cache_usd": _money(cost["cost_cache_read"] + cost["cost_cache_write"]),
        "cost_output_usd": _money(cost["cost_output_visible"]),
        "cost_reasoning_usd": _money(cost["cost_reasoning"]),
    }


USAGE_COLUMNS: tuple[str, ...] = (
    "requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "visible_output_tokens", "cost_usd", "cost_input_usd", "cost_cache_usd", "cost_output_usd",
    "cost_reasoning_usd",
)


FRAME_MEASURES = ("requests", *TOKEN_MEASURES, "visible_output_tokens", "cost_input", "cost_cache", "cost_output",
                  "cost_reasoning", "cost_total")


def usage_arrays(query: UsageQuery, tag: str = "pages.usage", slugs: Mapping[int, str] | None = None,
                 ) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """A usage query as arrays for charts: (the bucket and each grouped dimension's values,
    ``"other"`` on the other rows; each row's "other" flag; those of :data:`FRAME_MEASURES`
    the query's measures give: requests and token sums as integers, money columns as
    float USD with cost_cache = cache reads + writes and cost_output the visible output).
    ``slugs`` (project id → slug) spares the database lookup when grouping by project."""
    table = usage_table(query, tag)
    rows = table.num_rows
    keys: dict[str, Any] = {}
    if query.interval:
        keys["bucket"] = pd.to_datetime(table.column("bucket").to_pandas(), utc=True) if rows else []
    other = (~np.asarray(table.column("is_top").to_pylist(), dtype=bool) if query.group_by and rows
             else np.zeros(rows, dtype=bool))
    if slugs is None:
        slugs = project_slugs(query.project_ids) if "project" in query.group_by else {}
    for dim in query.group_by:
        values = table.column(f"g_{dim}").to_pylist() if rows else []
        if dim == "project":
            values = [slugs.get(int(v), str(v)) for v in values]
        keys[dim] = [OTHER if is_other else value for value, is_other in zip(values, other, strict=True)]

    def ints(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype("int64") if rows else np.zeros(0, dtype="int64")

    def floats(name: str) -> np.ndarray:
        return pc.cast(table.column(name), pa.float64()).to_numpy() if rows else np.zeros(0)

    read = set(query.measures)
    measures = {m: ints(m) for m in ("requests", *TOKEN_MEASURES) if m in read}
    if {"output_tokens", "reasoning_tokens"} <= read:
        measures["visible_output_tokens"] = measures["output_tokens"] - measures["reasoning_tokens"]
    for name, parts in (("cost_input", ["cost_input"]), ("cost_cache", ["cost_cache_read", "cost_cache_write"]),
                        ("cost_output", ["cost_output_visible"]), ("cost_reasoning", ["cost_reasoning"]),
                        ("cost_total", ["cost_total"])):
        if read.issuperset(parts):
            measures[name] = sum((floats(part) for part in parts), np.zeros(rows))
    return keys, other, measures


def usage_frame(query: UsageQuery, tag: str = "pages.usage", slugs: Mapping[int, str] | None = None) -> pd.DataFrame:
    """A usage query as a DataFrame for charts (:func:`usage_arrays`): [bucket], dimensions,
    ``other``, requests, token sums and float money columns cost_input, cost_cache,
    cost_output, cost_reasoning, cost_total."""
    keys, other, measures = usage_arrays(query, tag, slugs)
    columns = [*keys, "other", *measures]
    if not len(other):
        return pd.DataFrame(columns=columns)
    return pd.DataFrame({**keys, "other": other, **measures})[columns]


# ---------------------------------------------------------------- traces

TRACE_FILTERS: tuple[str, ...] = ("model", "task_type", "tier", "user_id", "service", "provider", "environment",
                                  "session_id", "operation")
TRACE_PAGE_MAX = 500
TRACE_WINDOWS = (timedelta(hours=6), timedelta(days=2), timedelta(days=10))
# each search window is scanned from TRACE_MARGIN earlier (a trace is placed by its first
# span), and the page's traces are then recomputed from TRACE_LOOKBACK before the window
TRACE_MARGIN = timedelta(hours=1)
TRACE_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class TraceSearch:
    """``GET /api/v1/traces`` parameters."""

    project_ids: Sequence[int]
    start: datetime
    end: datetime
    filters: Filters = field(default_factory=dict)
    status: str | None = None
    min_cost: Decimal | None = None
    min_reasoning_tokens: int | None = None
    runaway: bool | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        filters = normalize_filters(self.filters)
        unknown = set(filters) - set(TRACE_FILTERS)
        if unknown:
            raise QueryError(f"traces cannot be filtered by {', '.join(sorted(unknown))}")
        object.__setattr__(self, "filters", filters)
        if self.status not in (None, "ok", "error"):
            raise QueryError("status must be ok (no span failed) or error (a span failed)")
        if self.q is not None and not re.fullmatch(r"[0-9a-fA-F]{1,32}", self.q):
            raise QueryError("q is a trace id or its prefix (hexadecimal)")
        if not 1 <= self.limit <= TRACE_PAGE_MAX:
            raise QueryError(f"limit must be between 1 and {TRACE_PAGE_MAX}")
        if not 0 <= self.offset <= 100_000:
            raise QueryError("offset must be between 0 and 100000")
        if self.start >= self.end:
            raise QueryError("from must be before to (to is exclusive)")


TRACE_AGGREGATES = """
    project_id,
    trace_id,
    min(start_time) AS trace_start,
    toUnixTimestamp64Nano(min(start_time)) AS start_ns,
    max(toUnixTimestamp64Nano(start_time) + toInt64(duration_ns)) AS end_ns,
    if(countIf(parent_span_id = '') > 0, argMinIf(name, start_time, parent_span_id = ''), argMin(name, start_time))
        AS root_name,
    if(countIf(parent_span_id = '') > 0, argMinIf(service, start_time, parent_span_id = ''),
        argMin(service, start_time)) AS root_service,
    uniqExact(span_id) AS span_count,
    countIf(counted = 1) AS llm_calls,
    arraySort(groupUniqArrayIf(model, has_usage AND model != '')) AS models,
    anyIf(task_type, counted = 1 AND task_type != '') AS trace_task_type,
    maxIf(tier, counted = 1) AS trace_tier,
    anyIf(user_id, user_id != '') AS trace_user_id,
    sumIf(input_tokens, counted = 1) AS trace_input_tokens,
    sumIf(output_tokens, counted = 1) AS trace_output_tokens,
    sumIf(reasoning_tokens, counted = 1) AS trace_reasoning_tokens,
    sumIf(cost_total, counted = 1) AS trace_cost,
    if(countIf(status = 'error') > 0, 'error', 'ok') AS trace_status,
    max(runaway) AS trace_runaway"""


def _trace_having(search: TraceSearch) -> tuple[list[str], dict[str, Any]]:
    having: list[str] = []
    params: dict[str, Any] = {}
    for name, values in normalize_filters(search.filters).items():
        kind = "Array(UInt8)" if name == "tier" else "Array(String)"
        having.append(f"countIf({COLUMNS[name]} IN {{f_{name}:{kind}}}) > 0")
        params[f"f_{name}"] = list(values)
    if search.status:
        having.append("trace_status = {status:String}")
        params["status"] = search.status
    if search.min_cost is not None:
        having.append("trace_cost >= {min_cost:Decimal(38, 9)}")
        params["min_cost"] = str(search.min_cost)
    if search.min_reasoning_tokens is not None:
        having.append("trace_reasoning_tokens >= {min_reasoning:UInt64}")
        params["min_reasoning"] = int(search.min_reasoning_tokens)
    if search.runaway is not None:
        having.append(f"trace_runaway = {1 if search.runaway else 0}")
    return having, params


def _trace_row(record: Mapping[str, Any], slugs: Mapping[int, str]) -> dict[str, Any]:
    return {
        "trace_id": record["trace_id"],
        "project": slugs.get(int(record["project_id"]), str(record["project_id"])),
        "start": _iso_ns(int(record["start_ns"])),
        "duration_ms": round((int(record["end_ns"]) - int(record["start_ns"])) / 1e6, 3),
        "root_span_name": record["root_name"],
        "service": record["root_service"],
        "spans": int(record["span_count"]),
        "llm_calls": int(record["llm_calls"]),
        "models": list(record["models"]),
        "task_type": record["trace_task_type"],
        "tier": int(record["trace_tier"]),
        "user_id": record["trace_user_id"],
        "input_tokens": int(record["trace_input_tokens"]),
        "output_tokens": int(record["trace_output_tokens"]),
        "reasoning_tokens": int(record["trace_reasoning_tokens"]),
        "cost_usd": _money(record["trace_cost"]),
        "status": record["trace_status"],
        "runaway": bool(record["trace_runaway"]),
    }


def _trace_where(search: TraceSearch, scan_from: datetime,
                 trace_ids: Sequence[str] | None = None) -> tuple[list[str], dict[str, Any]]:
    where = [f"project_id IN {PROJECT_PARAM}", f"start_time >= {{start:{TS}}}", f"start_time < {{end:{TS}}}"]
    params: dict[str, Any] = {"start": scan_from, "end": search.end}
    if search.q:
        where.append("startsWith(trace_id, {q:String})")
        params["q"] = search.q.lower()
    if trace_ids is not None:
        where.append("trace_id IN {trace_ids:Array(String)}")
        params["trace_ids"] = list(trace_ids)
    return where, params


# the trace totals a search may filter on, computed in its first (light) pass
TRACE_FILTER_AGGREGATES = {
    "trace_status": "if(countIf(status = 'error') > 0, 'error', 'ok')",
    "trace_cost": "sumIf(cost_total, counted = 1)",
    "trace_reasoning_tokens": "sumIf(reasoning_tokens, counted = 1)",
    "trace_runaway": "max(runaway)",
}


def _trace_candidates_query(search: TraceSearch, scan_from: datetime, limit: int) -> tuple[str, dict[str, Any]]:
    """The newest matching traces (ids and first span start only), reading few columns."""
    having, params = _trace_having(search)
    where, where_params = _trace_where(search, scan_from)
    params.update({**where_params, "limit": limit})
    needed = [f"{expr} AS {alias}" for alias, expr in TRACE_FILTER_AGGREGATES.items()
              if any(alias in clause for clause in having)]
    select = ["project_id", "trace_id", "min(start_time) AS trace_start",
              "toUnixTimestamp64Nano(trace_start) AS start_ns", *needed]
    sql = (f"SELECT {', '.join(select)}\nFROM spans WHERE {' AND '.join(where)}\nGROUP BY project_id, trace_id"
           + (f"\nHAVING {' AND '.join(having)}" if having else "")
           + "\nORDER BY trace_start DESC, trace_id LIMIT {limit:UInt32}")
    return sql, params


def _trace_query(search: TraceSearch, scan_from: datetime, trace_ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Every total of the given traces (a search result row each), from their spans since ``scan_from``."""
    where, params = _trace_where(search, scan_from, trace_ids)
    params["limit"] = 4 * len(trace_ids) + 1
    sql = (f"SELECT {TRACE_AGGREGATES}\nFROM spans WHERE {' AND '.join(where)}\n"
           "GROUP BY project_id, trace_id ORDER BY trace_start DESC, trace_id LIMIT {limit:UInt32}")
    return sql, params


def search_traces(search: TraceSearch, tag: str = "api.traces") -> dict[str, Any]:
    """Traces in the range that match, newest first: ``{"traces": [...], "next_offset": n|None}``.

    A trace matches a dimension filter when any of its spans has one of the values; its
    totals count its ``counted`` spans; its status is ``error`` when any span failed, else
    ``ok`` (OTel's "unset" included); it is runaway when any span is.

    To answer fast over long ranges the search looks at the newest hours first
    (:data:`TRACE_WINDOWS`) and widens the window only while the page is not full, and
    it first finds the page's traces reading only the columns the filters need, then
    computes their rows. Each window is scanned from :data:`TRACE_MARGIN` earlier and
    only traces whose first span is inside it count; rows are computed from
    :data:`TRACE_LOOKBACK` before the window. So the answer is that of one scan of the
    whole range, except for a trace whose spans lie more than TRACE_MARGIN apart across a
    window edge (placed and filtered by its later part) or more than TRACE_LOOKBACK
    apart (totalled by it too).
    """
    ids = _ids(search.project_ids)
    if not ids:
        return {"traces": [], "next_offset": None}
    want = search.offset + search.limit + 1
    windows = [search.end - w for w in TRACE_WINDOWS if search.end - w > search.start] + [search.start]
    found: list[dict[str, Any]] = []
    window_start = search.start
    for window_start in windows:
        sql, params = _trace_candidates_query(search, max(search.start, window_start - TRACE_MARGIN), want)
        found = [r for r in clickhouse.execute(sql, params, tag=f"{tag}.find", projects=ids)
                 if window_start == search.start or _ns_to_dt(r["start_ns"]) >= window_start]
        if len(found) >= want:
            break
    chosen = found[search.offset: search.offset + search.limit]
    page: list[dict[str, Any]] = []
    if chosen:
        sql, params = _trace_query(search, max(search.start, window_start - TRACE_LOOKBACK),
                                   sorted({r["trace_id"] for r in chosen}))
        rows = {(r["project_id"], r["trace_id"]): r for r in clickhouse.execute(sql, params, tag=tag, projects=ids)}
        page = [rows[key] for key in ((r["project_id"], r["trace_id"]) for r in chosen) if key in rows]
    slugs = project_slugs(ids)
    next_offset = search.offset + search.limit if len(found) > search.offset + search.limit else None
    return {"traces": [_trace_row(r, slugs) for r in page], "next_offset": next_offset}


def _ns_to_dt(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)


SPAN_COLUMNS = """project_id, span_id, parent_span_id, name, kind, toUnixTimestamp64Nano(start_time) AS start_ns,
    duration_ns, status, status_message, service, environment, instrumentation, provider, model, request_model,
    operation, task_type, tier, user_id, session_id, request_id, response_id, thinking_budget, reasoning_effort,
    ttft_ms, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    reasoning_estimated, has_usage, counted, cost_input, cost_cache_read, cost_cache_write, cost_output_visible,
    cost_reasoning, cost_total, reported_cost, priced, quality, runaway, attributes, resource_attributes"""


def trace_detail(project_ids: Sequence[int], trace_id: str, *, include_text: bool,
                 tag: str = "api.trace") -> dict[str, Any] | None:
    """Every span of one trace (a re-sent span once: its counted copy), with timing,
    tokens, cost parts, flags and attribute maps; None when no readable project has it.

    ``include_text`` adds prompt_text and completion_text (stored only when the project
    stores prompts); the caller decides by role.
    """
    ids = _ids(project_ids)
    trace_id = trace_id.strip().lower()
    if not ids or not re.fullmatch(r"[0-9a-f]{1,64}", trace_id):
        return None
    text = ", prompt_text, completion_text" if include_text else ""
    sql = (f"SELECT {SPAN_COLUMNS}{text} FROM spans WHERE project_id IN {PROJECT_PARAM} "
           "AND trace_id = {trace_id:String} "
           "ORDER BY project_id, span_id, counted DESC, ingested_at LIMIT 1 BY project_id, span_id")
    records = clickhouse.execute(sql, {"trace_id": trace_id}, tag=tag, projects=ids)
    if not records:
        return None
    records.sort(key=lambda r: (int(r["start_ns"]), r["span_id"]))
    origin = min(int(r["start_ns"]) for r in records)
    finish = max(int(r["start_ns"]) + int(r["duration_ns"]) for r in records)
    slugs = project_slugs({int(r["project_id"]) for r in records})
    spans = []
    for r in records:
        cost = {m: Decimal(r[m] or 0) for m in COST_MEASURES}
        span: dict[str, Any] = {
            "span_id": r["span_id"],
            "parent_span_id": r["parent_span_id"] or None,
            "project": slugs.get(int(r["project_id"]), str(r["project_id"])),
            "name": r["name"],
            "kind": r["kind"],
            "start": _iso_ns(int(r["start_ns"])),
            "offset_ms": round((int(r["start_ns"]) - origin) / 1e6, 3),
            "duration_ms": round(int(r["duration_ns"]) / 1e6, 3),
            "status": r["status"],
            "status_message": r["status_message"],
            **{k: r[k] for k in ("service", "environment", "instrumentation", "provider", "model", "request_model",
                                 "operation", "task_type", "user_id", "session_id", "request_id", "response_id",
                                 "reasoning_effort")},
            "tier": int(r["tier"]),
            "thinking_budget": int(r["thinking_budget"]),
            "ttft_ms": round(float(r["ttft_ms"]), 3) if r["ttft_ms"] else None,
            **{m: int(r[m]) for m in TOKEN_MEASURES},
            "visible_output_tokens": int(r["output_tokens"]) - int(r["reasoning_tokens"]),
            "reasoning_estimated": bool(r["reasoning_estimated"]),
            "has_usage": bool(r["has_usage"]),
            "counted": bool(r["counted"]),
            "cost_usd": _money(cost["cost_total"]),
            "cost_input_usd": _money(cost["cost_input"]),
            "cost_cache_usd": _money(cost["cost_cache_read"] + cost["cost_cache_write"]),
            "cost_output_usd": _money(cost["cost_output_visible"]),
            "cost_reasoning_usd": _money(cost["cost_reasoning"]),
            "reported_cost_usd": _money(r["reported_cost"]) if r["reported_cost"] is not None else None,
            "priced": bool(r["priced"]),
            "quality": round(float(r["quality"]), 6) if r["quality"] is not None else None,
            "runaway": bool(r["runaway"]),
            "attributes": dict(r["attributes"] or []),
            "resource_attributes": dict(r["resource_attributes"] or []),
        }
        if include_text:
            span["prompt_text"] = r["prompt_text"]
            span["completion_text"] = r["completion_text"]
        spans.append(span)
    counted = [r for r in records if r["counted"]]
    scores = clickhouse.execute(
        f"""SELECT span_id, name, argMax(value, created_at) AS value, argMax(source, created_at) AS source,
            argMax(comment, created_at) AS comment, toUnixTimestamp64Milli(max(created_at)) AS created_ms
        FROM scores WHERE project_id IN {PROJECT_PARAM} AND trace_id = {{trace_id:String}}
        GROUP BY span_id, name ORDER BY name, span_id""",
        {"trace_id": trace_id}, tag=f"{tag}.scores", projects=ids,
    )
    total = sum((Decimal(r["cost_total"] or 0) for r in counted), Decimal(0))
    return {
        "trace_id": trace_id,
        "start": _iso_ns(origin),
        "duration_ms": round((finish - origin) / 1e6, 3),
        "spans": spans,
        "llm_calls": len(counted),
        "input_tokens": sum(int(r["input_tokens"]) for r in counted),
        "output_tokens": sum(int(r["output_tokens"]) for r in counted),
        "reasoning_tokens": sum(int(r["reasoning_tokens"]) for r in counted),
        "cost_usd": _money(total),
        "runaway": any(bool(r["runaway"]) for r in records),
        "scores": [
            {"span_id": s["span_id"] or None, "name": s["name"], "value": float(s["value"]), "source": s["source"],
             "comment": s["comment"], "created_at": _iso(_ns_to_dt(int(s["created_ms"]) * 1_000_000))}
            for s in scores
        ],
    }


# ---------------------------------------------------------------- trace samples

SAMPLE_CALLS = 50_000  # the budgets' quality statistics
PAGE_SAMPLE_CALLS = 20_000  # the engineering page's per-call statistics (every chart's groups get hundreds)
SAMPLE_UNITS = 65_536
SAMPLED_UNITS = int(_sampling.SAMPLE_BOUND, 16)  # ``sampled_calls`` holds the traces below this bound


@dataclass(frozen=True)
class Sample:
    """A uniform sample of traces: those whose (random, hexadecimal) id sorts below ``bound``.

    ``spans``, ``sampled_calls`` and ``scores`` are sorted by trace id within each
    project and day (week for ``sampled_calls``, month for ``scores``), so the condition
    skips the other granules instead of reading them; a
    trace (and every call and score in it) is either wholly in the sample or wholly out.
    ``fraction`` 1 means no sampling (exact results).
    """

    fraction: float
    bound: str | None

    @property
    def table(self) -> str:
        """Where the sampled calls are read: ``sampled_calls`` (the 0005 migration's table
        of every counted call of the traces below its bound) when the sample fits in it,
        else ``spans`` (its calls have ``counted = 1``)."""
        return "sampled_calls" if self.bound and int(self.bound, 16) <= SAMPLED_UNITS else "spans"

    def sql(self, alias: str = "") -> str:
        return f" AND {alias}trace_id < {{sample_bound:String}}" if self.bound else ""

    def params(self) -> dict[str, Any]:
        return {"sample_bound": self.bound} if self.bound else {}

    def where(self, project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None,
              alias: str = "") -> tuple[str, dict[str, Any]]:
        """WHERE conditions selecting the sampled calls of the range from :attr:`table`."""
        where, params = _where(project_ids, start, end, filters, counted=self.table == "spans", alias=alias)
        return where + self.sql(alias), {**params, **self.params()}


def usage_totals(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None,
                 tag: str = "pages.totals", measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """``measures`` (of :data:`MEASURES`) summed over the range (from the rollups when the
    filters allow; costs as Decimal)."""
    query = UsageQuery(project_ids, start, end, filters=normalize_filters(filters), measures=measures)
    table = usage_table(query, tag=tag)
    row = table.to_pylist()[0] if table.num_rows else {}
    return {m: (row.get(m) or (Decimal(0) if m in COST_MEASURES else 0)) for m in query.measures}


def total_requests(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None) -> int:
    """LLM calls in the range (:func:`usage_totals`)."""
    return int(usage_totals(project_ids, start, end, filters, measures=("requests",))["requests"])


def trace_sample(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None,
                 target: int = SAMPLE_CALLS, total: int | None = None) -> Sample:
    """A trace sample with about ``target`` LLM calls (every trace when there are no more than that)."""
    if total is None:
        total = total_requests(project_ids, start, end, filters)
    if total <= target:
        return Sample(1.0, None)
    units = max(1, int(target * SAMPLE_UNITS / total))
    return Sample(units / SAMPLE_UNITS, f"{units:04x}")


# ---------------------------------------------------------------- budgets

MIN_BUDGET_SAMPLES = 5
STATE_LEVELS = _rollups.QUANTILES.removeprefix("quantilesTDigest(").removesuffix(")")  # the states' levels
STATE_SOURCES: dict[str, str] = _rollups.STATE_SOURCES  # state column -> its per-call value over spans


def _quality_source(score_name: str, sample: Sample, alias: str = "s") -> tuple[str, str, dict[str, Any]]:
    """A LEFT JOIN with the latest score of ``score_name`` per trace, and the per-call quality
    expression: the span's own quality column, else that score."""
    join = f"""LEFT JOIN (
        SELECT project_id, trace_id, toNullable(argMax(value, created_at)) AS score
        FROM scores WHERE project_id IN {PROJECT_PARAM} AND name = {{score_name:String}}{sample.sql()}
        GROUP BY project_id, trace_id
    ) AS sc ON {alias}.project_id = sc.project_id AND {alias}.trace_id = sc.trace_id"""
    expr = f"if({alias}.quality IS NULL, sc.score, toNullable(toFloat64({alias}.quality)))"
    return join, expr, {"score_name": score_name, **sample.params()}


def digest_sql(query: UsageQuery, states: Sequence[str], grouping: str = "") -> tuple[str, dict[str, Any]]:
    """Per group of ``query.group_by`` over the rollups and the ragged ends from spans:
    requests, with_thinking (calls with reasoning tokens) and the merged t-digest
    quantiles (:data:`STATE_LEVELS`) of each rollup state column in ``states``
    (reasoning_q, cost_q, duration_q, ttft_q: see 0003's ``STATE_SOURCES``).

    ``grouping`` replaces the final GROUP BY (for example GROUPING SETS over the keys).
    """
    keys = ", ".join(COLUMNS[d] for d in query.group_by)
    parts, params = [], {}
    for index, (table, segments) in enumerate(by_table(plan(query))):
        where, seg_params = source_where(table, segments, index, query.filters)
        params.update(seg_params)
        if table == "spans":
            select = ["count() AS requests", "countIf(reasoning_tokens > 0) AS with_thinking",
                      *(f"quantilesTDigestState({STATE_LEVELS})({STATE_SOURCES[s]}) AS s_{s}" for s in states)]
        else:
            select = ["sum(requests) AS requests", "sum(with_thinking) AS with_thinking",
                      *(f"quantilesTDigestMergeState({STATE_LEVELS})({s}) AS s_{s}" for s in states)]
        parts.append(f"SELECT {keys}, {', '.join(select)} FROM {table} WHERE {where} GROUP BY {keys}")
    union = "\nUNION ALL\n".join(parts)
    # merge the many rollup rows' states once per group, then (with grouping sets) the few group states
    inner = ", ".join(f"quantilesTDigestMergeState({STATE_LEVELS})(s_{s}) AS s_{s}" for s in states)
    outer = ", ".join(f"quantilesTDigestMerge({STATE_LEVELS})(s_{s}) AS {s}" for s in states)
    sql = f"""SELECT {keys}, sum(requests) AS requests, sum(with_thinking) AS with_thinking, {outer}
    FROM (
        SELECT {keys}, sum(requests) AS requests, sum(with_thinking) AS with_thinking, {inner}
        FROM ({union})
        GROUP BY {keys}
    )
    GROUP BY {grouping or keys}"""
    return sql, params


def budget_stats(project_ids: Sequence[int], window_days: float = 7, *, tolerance: float = 0.02,
                 task_type: str | None = None, score_name: str = "quality",
                 min_samples: int = MIN_BUDGET_SAMPLES, now: datetime | None = None,
                 filters: Filters | None = None, sample_calls: int = SAMPLE_CALLS,
                 tag: str = "budgets") -> list[dict[str, Any]]:
    """Per task class — task type × tier, and task type alone (``tier`` None) — over the
    last ``window_days`` days of LLM calls:

    - over every call (the hourly rollup, ragged window ends from spans): requests;
      reasoning_p50/p90/p95/p99 (t-digest estimates of reasoning tokens per call);
      cost_p95_usd; thinking_share (share of calls with reasoning tokens);
    - over the calls with a quality (in a uniform trace sample of about ``sample_calls``
      calls when the window has more; ``quality_sample_fraction`` says which share of
      traces was read): quality_samples, mean_quality, quality_per_1k_reasoning_tokens
      (mean quality ÷ mean reasoning tokens × 1000), ``budgets`` (per requested
      thinking_budget > 0: calls, scored calls and mean quality) and
      recommended_thinking_budget: the smallest budget with ≥ ``min_samples`` scored calls
      whose mean quality is within ``tolerance`` (absolute) of the best such budget's;
      None without quality data.

    A call's quality is its span's ``quality`` column, else the latest score named
    ``score_name`` of its trace (``scores`` table).
    """
    ids = _ids(project_ids)
    if not ids:
        return []
    if not 0 <= tolerance <= 1:
        raise QueryError("tolerance must be between 0 and 1")
    if window_days <= 0 or window_days > 400:
        raise QueryError("the window must be more than 0 and at most 400 days")
    end = as_utc(now or datetime.now(UTC))
    start = end - timedelta(days=window_days)
    merged = dict(normalize_filters(filters))
    if task_type is not None:
        merged["task_type"] = [task_type]

    sql, params = digest_sql(UsageQuery(ids, start, end, group_by=["task_type", "tier"], filters=merged),
                             ["reasoning_q", "cost_q"], grouping="GROUPING SETS ((task_type, tier), (task_type))")
    stats = clickhouse.execute(sql, params, tag=f"{tag}.classes", projects=ids,
                               settings={"group_by_use_nulls": 1, **threads_for(plan(UsageQuery(ids, start, end)))})
    total = sum(int(r["requests"]) for r in stats if r["tier"] is not None)
    if not total:
        return []

    sample = trace_sample(ids, start, end, merged, target=sample_calls, total=total)
    join, quality, params = _quality_source(score_name, sample)
    where, where_params = sample.where(ids, start, end, merged, alias="s.")
    params.update(where_params)
    quality_rows = clickhouse.execute(
        f"""SELECT task_type, tier, thinking_budget, count() AS requests, count(q) AS quality_samples,
            avg(q) AS mean_quality, avgIf(reasoning_tokens, q IS NOT NULL) AS scored_reasoning
        FROM (
            SELECT s.task_type AS task_type, s.tier AS tier, s.thinking_budget AS thinking_budget,
                s.reasoning_tokens AS reasoning_tokens, {quality} AS q
            FROM {sample.table} AS s {join}
            WHERE {where}
        )
        GROUP BY GROUPING SETS ((task_type, tier), (task_type), (task_type, tier, thinking_budget),
            (task_type, thinking_budget))""",
        params, tag=f"{tag}.quality", projects=ids,
        settings={"group_by_use_nulls": 1, **(ONE_THREAD if sample.table == "sampled_calls" else {})},
    )
    quality_of: dict[tuple[str, int | None], Mapping[str, Any]] = {}
    budgets: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for r in quality_rows:
        key = (r["task_type"], None if r["tier"] is None else int(r["tier"]))
        if r["thinking_budget"] is None:
            quality_of[key] = r
        elif int(r["thinking_budget"]) > 0 and int(r["quality_samples"]) > 0:
            budgets.setdefault(key, []).append({
                "thinking_budget": int(r["thinking_budget"]),
                "requests": int(r["requests"]),
                "quality_samples": int(r["quality_samples"]),
                "mean_quality": round(float(r["mean_quality"]), 6),
            })
    out = []
    for r in stats:
        key = (r["task_type"], None if r["tier"] is None else int(r["tier"]))
        item = _budget_class(r, key, quality_of.get(key))
        options = sorted(budgets.get(key, []), key=lambda b: b["thinking_budget"])
        item["quality_sample_fraction"] = sample.fraction
        item["budgets"] = options
        item["recommended_thinking_budget"] = recommend_budget(options, tolerance, min_samples)
        out.append(item)
    out.sort(key=lambda c: (c["task_type"], c["tier"] is not None, c["tier"] or 0))
    return out


def _budget_class(r: Mapping[str, Any], key: tuple[str, int | None],
                  quality: Mapping[str, Any] | None) -> dict[str, Any]:
    q = [float(x) for x in r["reasoning_q"]]
    requests = int(r["requests"])
    samples = int(quality["quality_samples"]) if quality else 0
    mean_quality = float(quality["mean_quality"]) if quality and samples else None
    scored_reasoning = float(quality["scored_reasoning"]) if quality and samples else 0.0
    per_1k = (mean_quality * 1000 / scored_reasoning) if mean_quality is not None and scored_reasoning > 0 else None
    cost_p95 = float(r["cost_q"][2]) if requests and not math.isnan(float(r["cost_q"][2])) else 0.0
    return {
        "task_type": key[0],
        "tier": key[1],
        "requests": requests,
        "reasoning_p50": round(q[0], 3),
        "reasoning_p90": round(q[1], 3),
        "reasoning_p95": round(q[2], 3),
        "reasoning_p99": round(q[3], 3),
        "cost_p95_usd": _money(Decimal(repr(round(cost_p95, 9)))),
        "thinking_share": round(int(r["with_thinking"]) / requests, 6) if requests else 0.0,
        "quality_samples": samples,
        "mean_quality": round(mean_quality, 6) if mean_quality is not None else None,
        "quality_per_1k_reasoning_tokens": round(per_1k, 6) if per_1k is not None else None,
    }


def recommend_budget(options: Sequence[Mapping[str, Any]], tolerance: float,
                     min_samples: int = MIN_BUDGET_SAMPLES) -> int | None:
    """The smallest thinking budget whose mean quality is within ``tolerance`` of the best
    budget's, among budgets with at least ``min_samples`` scored calls (None if none has)."""
    eligible = [o for o in options if int(o["quality_samples"]) >= min_samples]
    if not eligible:
        return None
    best = max(float(o["mean_quality"]) for o in eligible)
    good = [int(o["thinking_budget"]) for o in eligible if float(o["mean_quality"]) >= best - tolerance - 1e-12]
    return min(good)


# ---------------------------------------------------------------- page data: finance

def spend_over_time(project_ids: Sequence[int], start: datetime, end: datetime, interval: str = "day",
                    filters: Filters | None = None) -> pd.DataFrame:
    """Spend per time bucket, stacked by part. Columns: bucket, requests, cost_input,
    cost_cache, cost_output, cost_reasoning, cost_total (floats, USD)."""
    query = UsageQuery(project_ids, start, end, interval=parse_interval(interval) or "day", filters=filters or {},
                       measures=("requests", *COST_MEASURES))
    return usage_frame(query, tag="pages.spend_over_time").drop(columns=["other"])


def spend_by(project_ids: Sequence[int], start: datetime, end: datetime, dimension: str,
             filters: Filters | None = None, limit: int = 10) -> pd.DataFrame:
    """Spend per value of one dimension (project slug, tier, model, task_type, ...), top
    ``limit`` by cost plus an "other" row (``other`` True). Columns: ``label`` (the value
    as text), the dimension, ``other``, requests, token sums and the float cost columns."""
    query = UsageQuery(project_ids, start, end, group_by=parse_group_by(dimension), filters=filters or {},
                       limit=limit)
    df = usage_frame(query, tag=f"pages.spend_by_{dimension}")
    df.insert(0, "label", df[dimension].astype(str) if len(df) else pd.Series(dtype=str))
    return df


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = floor_day(as_utc(moment)).replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def mtd_query(project_ids: Sequence[int], current: datetime, first: datetime,
              filters: Filters | None = None) -> UsageQuery:
    """Daily requests and spend from ``first`` through the hour of ``current``.

    The range ends at the end of the current hour, as the pages' ranges do: the hourly
    rollup already holds everything stored so far this hour, so the statement reads
    rollups only. Ending at ``current`` itself would read the hour's ragged end from
    ``spans``: every span stored this hour, on every Finance page load (at 10,000
    spans/s, up to 36 million rows). The hour's rest holds only spans stamped ahead of
    this server's clock."""
    end = max(ceil_hour(current), first + timedelta(hours=1))
    return UsageQuery(project_ids, first, end, interval="day", filters=filters or {},
                      measures=("requests", "cost_total"))


def mtd_spend_and_daily(project_ids: Sequence[int], now: datetime | None = None, filters: Filters | None = None,
                        history_days: int = 28) -> dict[str, Any]:
    """Month-to-date spend and daily spend for the budget forecast.

    Returns month_start, month_end (exclusive), now, mtd_cost (float USD, through ``now``),
    days_elapsed (fractional), days_in_month, and ``daily``: a DataFrame [day (date),
    cost_total, requests] for every day from ``history_days`` before the month began (or
    the month start, whichever is earlier) through today, zero-filled.
    """
    current = as_utc(now or datetime.now(UTC))
    month_start, month_end = month_bounds(current)
    first = min(month_start, floor_day(current) - timedelta(days=history_days))
    df = usage_frame(mtd_query(project_ids, current, first, filters), tag="pages.mtd_spend")
    by_day = {pd.Timestamp(b).date(): (float(c), int(r))
              for b, c, r in zip(df["bucket"], df["cost_total"], df["requests"], strict=True)}
    days = [first.date() + timedelta(days=i) for i in range((floor_day(current) - first).days + 1)]
    daily = pd.DataFrame({"day": days, "cost_total": [by_day.get(d, (0.0, 0))[0] for d in days],
                          "requests": [by_day.get(d, (0.0, 0))[1] for d in days]})
    mtd = float(daily.loc[[d >= month_start.date() for d in days], "cost_total"].sum()) if days else 0.0
    return {
        "month_start": month_start,
        "month_end": month_end,
        "now": current,
        "mtd_cost": mtd,
        "days_elapsed": (current - month_start).total_seconds() / 86400,
        "days_in_month": (month_end - month_start).days,
        "daily": daily,
    }


TOP_USER_COLUMNS = ["user_id", "requests", "input_tokens", "output_tokens", "reasoning_tokens", "cost_reasoning",
                    "cost_total"]


def top_users(project_ids: Sequence[int], start: datetime, end: datetime, n: int = 15,
              filters: Filters | None = None) -> pd.DataFrame:
    """The ``n`` users with the most spend (calls without a user left out), largest first.
    Columns: user_id, requests, input_tokens, output_tokens, reasoning_tokens,
    cost_reasoning, cost_total (floats, USD). The range is widened to whole days (UTC),
    which the daily user rollup serves."""
    start, end = floor_day(as_utc(start)), ceil_day(as_utc(end))
    normalized = normalize_filters(filters)
    if not _ids(project_ids):
        return pd.DataFrame(columns=TOP_USER_COLUMNS)
    if set(normalized) <= USER_DIMENSIONS:
        clauses, params = _filter_sql(normalized)
        params.update({"start": start.date(), "end": end.date(), "n": n})
        table = "usage_daily_users" if normalized else "usage_daily_user_totals"
        df = _df(
            f"""SELECT user_id, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
                sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens,
                toFloat64(sum(cost_reasoning)) AS cost_reasoning, toFloat64(sum(cost_total)) AS cost_total
            FROM {table}
            WHERE {' AND '.join([f"project_id IN {PROJECT_PARAM}", "day >= {start:Date}", "day < {end:Date}",
                                 "user_id != ''", *clauses])}
            GROUP BY user_id ORDER BY cost_total DESC, user_id LIMIT {{n:UInt32}}""",
            params, project_ids, "pages.top_users", settings=ONE_THREAD,
        )
        return df[TOP_USER_COLUMNS]
    query = UsageQuery(project_ids, start, end, group_by=["user_id"], filters=normalized, limit=n + 1)
    frame = usage_frame(query, tag="pages.top_users")
    frame = frame[~frame["other"] & (frame["user_id"] != "")].head(n)
    return frame[TOP_USER_COLUMNS].reset_index(drop=True)


def reasoning_share(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None,
                    by: str | None = None, interval: str | None = None) -> pd.DataFrame:
    """The share of spend (and of output tokens) that went to thinking, overall or per
    dimension ``by`` and/or time bucket. Columns: [bucket], [by], cost_total,
    cost_reasoning, share (of cost, 0–1), output_tokens, reasoning_tokens, token_share."""
    query = UsageQuery(project_ids, start, end, group_by=parse_group_by(by), interval=parse_interval(interval),
                       filters=filters or {}, limit=MAX_LIMIT,
                       measures=("output_tokens", "reasoning_tokens", "cost_reasoning", "cost_total"))
    df = usage_frame(query, tag="pages.reasoning_share")
    keys = [*(["bucket"] if interval else []), *([by] if by else [])]
    out = df[[*keys, "cost_total", "cost_reasoning", "output_tokens", "reasoning_tokens"]].copy()
    out["share"] = (out["cost_reasoning"] / out["cost_total"].where(out["cost_total"] > 0)).fillna(0.0)
    out["token_share"] = (out["reasoning_tokens"] / out["output_tokens"].where(out["output_tokens"] > 0)).fillna(0.0)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- page data: engineering
#
# Distributions, latencies, escalations, the quality frontier and budget against use need
# single calls, not sums. They are computed from one table of calls (:func:`call_sample`):
# every LLM call of the range when it has at most PAGE_SAMPLE_CALLS, else a uniform trace
# sample of about that many, read from ``sampled_calls`` when it is small enough
# (:attr:`Sample.table`). A page reads it once and passes it as ``calls=`` (each function
# reads its own otherwise). DataFrames carry ``attrs["sample_fraction"]``;
# counts named ``requests`` (and with_thinking, ttft_requests, escalated, llm_calls) are
# scaled up to the whole range.

def _where(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None,
           counted: bool = True, alias: str = "") -> tuple[str, dict[str, Any]]:
    """WHERE conditions over ``spans`` (or ``sampled_calls``, ``counted=False``) for a page query."""
    clauses = [f"{alias}project_id IN {PROJECT_PARAM}", f"{alias}start_time >= {{start:{TS}}}",
               f"{alias}start_time < {{end:{TS}}}"]
    params: dict[str, Any] = {"start": as_utc(start), "end": as_utc(end)}
    if counted:
        clauses.append(f"{alias}counted = 1")
    filter_clauses, filter_params = _filter_sql(normalize_filters(filters), alias=alias)
    return " AND ".join([*clauses, *filter_clauses]), {**params, **filter_params}


def _df(sql: str, params: dict[str, Any], project_ids: Sequence[int], tag: str,
        settings: dict[str, Any] | None = None) -> pd.DataFrame:
    return clickhouse.query_df(sql, params, tag=tag, projects=_ids(project_ids), settings=settings)


CALL_COLUMNS = ["project_id", "task_type", "tier", "model", "thinking_budget", "reasoning_effort",
                "reasoning_tokens", "duration_ms", "ttft_ms", "quality", "request_key", "pick"]
# the two columns ``sampled_calls`` computes at insert, over spans
COMPUTED = {name: _sampling.SAMPLED_CALLS[name][1] for name in ("request_key", "pick")}
# strings come back as dictionaries (pandas categoricals): cheap to group by
CALL_SETTINGS = {"output_format_arrow_low_cardinality_as_dictionary": 1}


def call_sample(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None, *,
                score_name: str = "quality", sample_calls: int = PAGE_SAMPLE_CALLS,
                total: int | None = None) -> pd.DataFrame:
    """LLM calls (``counted = 1``) of the range — all of them, or a uniform sample of traces
    with about ``sample_calls`` calls — one row each: project_id, task_type, tier,
    model, thinking_budget, reasoning_effort, reasoning_tokens, duration_ms, ttft_ms (0 when
    not reported), quality (the span's, else the trace's latest ``score_name`` score; NaN
    without), request_key (a hash of the request id, or of the trace id for calls without
    one) and pick (a hash of the call, for sub-sampling). ``attrs["sample_fraction"]`` is
    the share of traces read. ``total`` (the range's LLM calls, when the caller has it)
    spares reading it to size the sample. A page reads it once and passes it as ``calls=``
    to the functions below.
    """
    if not _ids(project_ids):
        return _empty(CALL_COLUMNS)
    return _read_calls(project_ids, start, end, normalize_filters(filters), score_name, sample_calls, total)


def _read_calls(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters, score_name: str,
                sample_calls: int, total: int | None) -> pd.DataFrame:
    sample = trace_sample(project_ids, start, end, filters, sample_calls, total)
    where, params = sample.where(project_ids, start, end, filters, alias="s.")
    join, quality, quality_params = _quality_source(score_name, sample)
    params.update(quality_params)
    computed = {name: f"s.{name}" if sample.table == "sampled_calls" else expression.replace("spans.", "s.")
                for name, expression in COMPUTED.items()}
    df = _df(
        f"""SELECT s.project_id AS project_id, s.task_type AS task_type, s.tier AS tier,
            s.model AS model, s.thinking_budget AS thinking_budget, s.reasoning_effort AS reasoning_effort,
            s.reasoning_tokens AS reasoning_tokens, s.duration_ns / 1e6 AS duration_ms,
            toFloat64(s.ttft_ms) AS ttft_ms, {quality} AS quality, {computed["request_key"]} AS request_key,
            {computed["pick"]} AS pick
        FROM {sample.table} AS s {join}
        WHERE {where}""",
        params, project_ids, "pages.call_sample",
        settings={**CALL_SETTINGS, **(ONE_THREAD if sample.table == "sampled_calls" else {})},
    )
    df["quality"] = df["quality"].astype("float64")
    df.attrs["sample_fraction"] = sample.fraction
    return df


def _empty(columns: Sequence[str], fraction: float = 1.0) -> pd.DataFrame:
    df = pd.DataFrame(columns=list(columns))
    df.attrs["sample_fraction"] = fraction
    return df


def _calls(calls: pd.DataFrame | None, project_ids: Sequence[int], start: datetime, end: datetime,
           filters: Filters | None, **kwargs: Any) -> pd.DataFrame:
    return calls if calls is not None else call_sample(project_ids, start, end, filters, **kwargs)


def _scaled(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Counts in a sample → estimated counts in the whole range."""
    return np.round(np.asarray(counts, dtype="float64") / fraction).astype(np.int64)


def _codes(column: pd.Series) -> np.ndarray:
    """Integers standing for a column's values (equal values, equal codes), in linear time."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64)
    return pd.factorize(column.to_numpy())[0].astype(np.int64)


def _values(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """The column's values at ``rows`` (strings for categorical columns, decoded for those rows only)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.categories.to_numpy().astype(str)[column.cat.codes.to_numpy()[rows]]
    return column.to_numpy()[rows]


@dataclass(frozen=True)
class _Groups:
    """Rows of ``frame`` grouped by some key columns (numpy, no pandas groupby), numbered in
    order of first appearance: each group's first row (``first``), each row's group
    (``inverse``) and each group's row count (``counts``)."""

    frame: pd.DataFrame
    first: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray

    def key(self, name: str) -> np.ndarray:
        """Each group's value of key column ``name``."""
        return _values(self.frame[name], self.first)

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.inverse, weights=values, minlength=len(self.counts))

    def quantiles(self, values: np.ndarray, levels: Sequence[float], rows: np.ndarray | None = None) -> np.ndarray:
        """Per group (rows) and level (columns): the quantile of ``values`` (over the rows
        where ``rows`` is true), interpolating linearly between closest ranks (numpy's
        default); NaN for a group without values."""
        inverse = self.inverse if rows is None else self.inverse[rows]
        values = values if rows is None else values[rows]
        counts = np.bincount(inverse, minlength=len(self.counts))
        small = inverse.astype(np.uint16) if len(self.counts) <= 1 << 16 else inverse  # sorts in linear time
        grouped = values[np.argsort(small, kind="stable")].astype("float64")
        out = np.full((len(counts), len(levels)), math.nan)
        for group, (end, count) in enumerate(zip(np.cumsum(counts), counts, strict=True)):
            if count:
                out[group] = np.quantile(grouped[end - count:end], levels)
        return out


def _group(df: pd.DataFrame, keys: Sequence[str]) -> _Groups:
    """Group the rows of ``df`` by the ``keys`` columns (hash-based codes, linear time)."""
    combined = np.zeros(len(df), dtype=np.int64)
    for key in keys:
        codes = _codes(df[key])
        width = int(codes.max(initial=-1)) + 1
        if int(combined.max(initial=0)) >= (1 << 62) // max(width, 1):  # renumber before it could overflow
            combined = pd.factorize(combined)[0].astype(np.int64)
        combined = combined * width + codes
    inverse = pd.factorize(combined)[0]  # groups numbered in order of first appearance
    running = np.maximum.accumulate(inverse) if len(inverse) else inverse
    first = np.flatnonzero(np.r_[True, running[1:] > running[:-1]]) if len(inverse) else inverse
    return _Groups(df, first, inverse, np.bincount(inverse))


def _frame(columns: Sequence[str], data: Mapping[str, Any], order: Sequence[Any] | np.ndarray,
           fraction: float) -> pd.DataFrame:
    """A result frame: ``data``'s columns in ``order`` (group indexes), with the sample fraction."""
    index = np.asarray(order, dtype=np.int64)
    out = pd.DataFrame({name: np.asarray(data[name])[index] for name in columns})
    out.attrs["sample_fraction"] = fraction
    return out


QUANTILE_LEVELS = (0.5, 0.9, 0.95, 0.99)
QUANTILE_NAMES = ("p50", "p90", "p95", "p99")


def reasoning_distribution(project_ids: Sequence[int], start: datetime, end: datetime,
                           filters: Filters | None = None, classes: int = 12,
                           calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reasoning tokens per call for the ``classes`` busiest task classes (task type × tier)
    that think at all: task_type, tier, requests, with_thinking, p50, p90, p95, p99 (calls
    without thinking included, as the runaway check counts them; interpolating between
    closest ranks like numpy's default)."""
    columns = ["task_type", "tier", "requests", "with_thinking", *QUANTILE_NAMES]
    df = _calls(calls, project_ids, start, end, filters)
    fraction = df.attrs.get("sample_fraction", 1.0)
    if df.empty:
        return _empty(columns, fraction)
    groups = _group(df, ["task_type", "tier"])
    reasoning = df["reasoning_tokens"].to_numpy()
    thinking = groups.sum(reasoning > 0)
    task, tier = groups.key("task_type"), groups.key("tier").astype(np.int64)
    order = sorted(np.flatnonzero(thinking > 0), key=lambda g: (-groups.counts[g], task[g], tier[g]))[:classes]
    levels = groups.quantiles(reasoning, QUANTILE_LEVELS)
    data = {"task_type": task, "tier": tier, "requests": _scaled(groups.counts, fraction),
            "with_thinking": _scaled(thinking, fraction), **dict(zip(QUANTILE_NAMES, levels.T, strict=True))}
    return _frame(columns, data, order, fraction)


def latency_by_tier(project_ids: Sequence[int], start: datetime, end: datetime,
                    filters: Filters | None = None, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per tier: requests, duration_p50/p95 and ttft_p50/p95 in ms (time to first token over
    the calls that reported one, ``ttft_requests``; NaN when none did)."""
    columns = ["tier", "requests", "duration_p50", "duration_p95", "ttft_requests", "ttft_p50", "ttft_p95"]
    df = _calls(calls, project_ids, start, end, filters)
    fraction = df.attrs.get("sample_fraction", 1.0)
    if df.empty:
        return _empty(columns, fraction)
    groups = _group(df, ["tier"])
    duration = groups.quantiles(df["duration_ms"].to_numpy(), (0.5, 0.95))
    ttft = df["ttft_ms"].to_numpy()
    streamed = ttft > 0
    first_token = groups.quantiles(ttft, (0.5, 0.95), rows=streamed)
    tier = groups.key("tier").astype(np.int64)
    data = {"tier": tier, "requests": _scaled(groups.counts, fraction), "duration_p50": duration[:, 0],
            "duration_p95": duration[:, 1], "ttft_requests": _scaled(groups.sum(streamed), fraction),
            "ttft_p50": first_token[:, 0], "ttft_p95": first_token[:, 1]}
    return _frame(columns, data, np.argsort(tier, kind="stable"), fraction)


def escalation_rate_by_task_type(project_ids: Sequence[int], start: datetime, end: datetime,
                                 filters: Filters | None = None, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per task type: requests, escalated (requests with more than one LLM attempt), llm_calls
    and rate (escalated ÷ requests), busiest first.

    A request is the LLM calls sharing ``thinkmeter.request_id`` (the ``request_id``
    column) or, for calls without one, the calls of one trace.
    """
    columns = ["task_type", "requests", "escalated", "llm_calls", "rate"]
    df = _calls(calls, project_ids, start, end, filters)
    fraction = df.attrs.get("sample_fraction", 1.0)
    if df.empty:
        return _empty(columns, fraction)
    requests = _group(df, ["project_id", "task_type", "request_key"])
    attempts = requests.counts
    tasks = _group(df.iloc[requests.first][["task_type"]], ["task_type"])  # one row per request
    count, escalated, calls_made = tasks.counts, tasks.sum(attempts > 1), tasks.sum(attempts)
    task = tasks.key("task_type")
    data = {"task_type": task, "requests": _scaled(count, fraction), "escalated": _scaled(escalated, fraction),
            "llm_calls": _scaled(calls_made, fraction), "rate": escalated / count}
    order = sorted(range(len(task)), key=lambda g: (-count[g], task[g]))
    return _frame(columns, data, order, fraction)


def quality_vs_reasoning(project_ids: Sequence[int], start: datetime, end: datetime,
                         filters: Filters | None = None, score_name: str = "quality", min_samples: int = 1,
                         calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """The efficiency frontier: per task class and requested budget (thinking_budget and
    reasoning_effort), the calls with a quality (span column, else the trace's latest
    ``score_name`` score; with ``calls=`` given, the score it was fetched with). Columns:
    task_type, tier, thinking_budget, reasoning_effort, scored (calls with a quality read),
    requests (scored calls in the whole range), mean_reasoning_tokens, mean_quality;
    groups with fewer than ``min_samples`` scored calls are left out."""
    keys = ["task_type", "tier", "thinking_budget", "reasoning_effort"]
    columns = [*keys, "scored", "requests", "mean_reasoning_tokens", "mean_quality"]
    df = _calls(calls, project_ids, start, end, filters, score_name=score_name)
    fraction = df.attrs.get("sample_fraction", 1.0)
    scored = df.loc[df["quality"].notna().to_numpy(), [*keys, "reasoning_tokens", "quality"]]
    if scored.empty:
        return _empty(columns, fraction)
    groups = _group(scored, keys)
    counts = groups.counts
    data = {"task_type": groups.key("task_type"), "tier": groups.key("tier").astype(np.int64),
            "thinking_budget": groups.key("thinking_budget").astype(np.int64),
            "reasoning_effort": groups.key("reasoning_effort"), "scored": counts,
            "requests": _scaled(counts, fraction),
            "mean_reasoning_tokens": groups.sum(scored["reasoning_tokens"].to_numpy(dtype="float64")) / counts,
            "mean_quality": groups.sum(scored["quality"].to_numpy(dtype="float64")) / counts}
    order = sorted(np.flatnonzero(counts >= min_samples), key=lambda g: tuple(data[k][g] for k in keys))
    return _frame(columns, data, order, fraction)


def budget_vs_used(project_ids: Sequence[int], start: datetime, end: datetime, filters: Filters | None = None,
                   sample: int = 2000, calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """Requested thinking budget against reasoning tokens used: up to ``sample`` calls with a
    budget (those with the smallest ``pick`` hash). Columns: task_type, tier, model,
    thinking_budget, reasoning_tokens, ratio (used ÷ budget)."""
    columns = ["task_type", "tier", "model", "thinking_budget", "reasoning_tokens", "ratio"]
    df = _calls(calls, project_ids, start, end, filters)
    fraction = df.attrs.get("sample_fraction", 1.0)
    if df.empty:
        return _empty(columns, fraction)
    rows = np.flatnonzero(df["thinking_budget"].to_numpy() > 0)
    rows = rows[np.argsort(df["pick"].to_numpy()[rows], kind="stable")[:sample]]
    budget = df["thinking_budget"].to_numpy()[rows].astype(np.int64)
    used = df["reasoning_tokens"].to_numpy()[rows].astype(np.int64)
    data = {"task_type": _values(df["task_type"], rows).astype(str), "tier": df["tier"].to_numpy()[rows].astype(
        np.int64), "model": _values(df["model"], rows).astype(str), "thinking_budget": budget,
        "reasoning_tokens": used, "ratio": used / budget}
    return _frame(columns, data, np.arange(len(rows)), fraction)


def runaway_traces(project_ids: Sequence[int], start: datetime, end: datetime, limit: int = 25,
                   filters: Filters | None = None, slugs: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """The newest traces with a runaway call (``runaway = 1``; with ``filters``, a runaway call
    matching them), as :func:`search_traces` rows, newest first. Looks at the newest hours
    first and widens the window until it has ``limit`` traces; each try is one statement
    that finds the traces and computes their rows from :data:`TRACE_LOOKBACK` before the
    window (as trace search does). ``slugs`` (project id → slug) spares the database lookup."""
    ids = _ids(project_ids)
    if not ids:
        return []
    start, end = as_utc(start), as_utc(end)
    clauses, params = _filter_sql({k: v for k, v in normalize_filters(filters).items() if k in TRACE_FILTERS})
    search = TraceSearch(ids, start, end, limit=limit)
    windows = [end - w for w in TRACE_WINDOWS if end - w > start] + [start]
    rows: list[dict[str, Any]] = []
    for window_start in windows:
        where, where_params = _trace_where(search, max(start, window_start - TRACE_LOOKBACK))
        find = " AND ".join([f"project_id IN {PROJECT_PARAM}", f"start_time >= {{window_start:{TS}}}",
                             f"start_time < {{end:{TS}}}", "runaway = 1", *clauses])
        rows = clickhouse.execute(
            f"""SELECT {TRACE_AGGREGATES}
            FROM spans
            WHERE {' AND '.join(where)} AND trace_id IN (
                SELECT trace_id FROM spans WHERE {find}
                GROUP BY trace_id ORDER BY min(start_time) DESC, trace_id LIMIT {{limit:UInt32}})
            GROUP BY project_id, trace_id ORDER BY trace_start DESC, trace_id""",
            {**params, **where_params, "window_start": window_start, "limit": limit},
            tag="pages.runaway_traces", projects=ids, settings=ONE_THREAD,  # a few granules of each day
        )
        if len(rows) >= limit:
            break
    if slugs is None:
        slugs = project_slugs(ids)
    return [_trace_row(r, slugs) for r in rows]


# ---------------------------------------------------------------- page data: prices

def rollup_rows_sql(columns: str, start: datetime, end: datetime, filters: Filters | None = None,
                    ) -> tuple[str, dict[str, Any]]:
    """``SELECT {columns}`` over the rollup rows of the range widened to whole hours:
    ``usage_daily`` for its whole days, ``usage_hourly`` for the other hours (UNION ALL;
    ``filters`` on :data:`HOURLY_DIMENSIONS` only)."""
    lo, hi = floor_hour(as_utc(start)), ceil_hour(as_utc(end))
    parts, params = [], {}
    for index, (table, segments) in enumerate(by_table(cover(lo, max(hi, lo + timedelta(hours=1)), ROLLUP_LEVELS))):
        where, seg_params = source_where(table, segments, index, filters or {})
        parts.append(f"SELECT {columns} FROM {table} WHERE {where}")
        params.update(seg_params)
    return "\nUNION ALL\n".join(parts), params


def unpriced_models(project_ids: Sequence[int], start: datetime, end: datetime) -> pd.DataFrame:
    """Models whose LLM calls had no price (``priced = false``), from the hourly rollup (the
    range widened to whole hours): provider, model, requests (unpriced calls), first_seen
    and last_seen (start of the first and last hour with one) — most calls first."""
    columns = ["provider", "model", "requests", "first_seen", "last_seen"]
    if not _ids(project_ids):
        return pd.DataFrame(columns=columns)
    params = {"start": floor_hour(as_utc(start)), "end": ceil_hour(as_utc(end))}
    return _df(
        f"""SELECT provider, model, sum(unpriced) AS requests,
            toDateTime64(minIf(hour, unpriced > 0), 0, 'UTC') AS first_seen,
            toDateTime64(maxIf(hour, unpriced > 0), 0, 'UTC') AS last_seen
        FROM usage_hourly
        WHERE project_id IN {PROJECT_PARAM} AND hour >= {{start:{TS}}} AND hour < {{end:{TS}}}
        GROUP BY provider, model HAVING requests > 0 ORDER BY requests DESC, provider, model LIMIT 500""",
        params, project_ids, "pages.unpriced_models", settings=ONE_THREAD,
    )
