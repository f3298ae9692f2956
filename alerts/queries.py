"""ClickHouse reads (and the one write) of the alert engine, as named SQL with bound parameters.

Every statement is scoped to one project (``project_id IN {project_ids:Array(UInt32)}``)
and sums only ``counted = 1`` rows. Rollups are used where a rule's filters allow:
``usage_hourly`` has every filter dimension but the user, ``usage_daily_users`` has the
user, task type, tier and model; other combinations read ``spans``.

- :func:`swept_spans` / :func:`swept_traces`: what the periodic runaway sweep judges —
  spans *ingested* in the sweep interval (whatever their start time, so late arrivals
  are caught), and the whole traces they belong to.
- :func:`mark_runaway`: sets ``runaway = 1`` on spans the sweep found (a mutation; rare).
- :func:`quota_usage`, :func:`daily_spend`, :func:`hourly_series`: inputs of the quota,
  budget and spike rules (per-user quotas read ``usage_daily_users`` when their filters
  allow; per-session and per-API-key quotas read ``spans``, whose ``api_key_id`` records
  the key that sent each span).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from alerts.params import FILTER_COLUMNS
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

log = logging.getLogger(__name__)

TS = "DateTime64(6, 'UTC')"
SWEEP_HORIZON = timedelta(days=2)  # spans that start earlier than this before their ingestion are not judged
SWEEP_LIMIT = 10_000
HOURLY_FILTERS = frozenset({"task_type", "tier", "model", "service", "environment"})
DAILY_USER_FILTERS = frozenset({"task_type", "tier", "model", "user"})


def filter_sql(filters: Mapping[str, list[Any]], alias: str = "") -> tuple[str, dict[str, Any]]:
    """`` AND column IN {f_name:Array(...)}`` for each filter, and the parameters."""
    clauses, params = [], {}
    for name, values in sorted(filters.items()):
        if not values:
            continue
        kind = "Array(UInt8)" if name == "tier" else "Array(String)"
        clauses.append(f"{alias}{FILTER_COLUMNS[name]} IN {{f_{name}:{kind}}}")
        params[f"f_{name}"] = [int(v) for v in values] if name == "tier" else [str(v) for v in values]
    return "".join(f" AND {c}" for c in clauses), params


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- runaway sweep

SWEPT_SPANS = f"""
SELECT trace_id, span_id, task_type, toInt16(tier) AS tier, model, service, environment, user_id, session_id,
    start_time, reasoning_tokens, toFloat64(cost_total) AS cost
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND runaway = 0
    AND start_time >= {{horizon:{TS}}}
    AND ingested_at >= {{since:{TS}}} AND ingested_at < {{until:{TS}}}
    AND (reasoning_tokens > {{min_tokens:Float64}} OR toFloat64(cost_total) > {{min_cost:Float64}})
    {{filters}}
ORDER BY ingested_at
LIMIT {SWEEP_LIMIT}
"""

SWEPT_TRACES = f"""
SELECT trace_id AS t_trace_id, argMax(task_type, reasoning_tokens) AS t_task_type,
    toInt16(argMax(tier, reasoning_tokens)) AS t_tier, argMax(model, reasoning_tokens) AS t_model,
    any(service) AS t_service, any(environment) AS t_environment, any(user_id) AS t_user_id,
    any(session_id) AS t_session_id, min(start_time) AS t_start_time, sum(reasoning_tokens) AS t_reasoning_tokens,
    sum(toFloat64(cost_total)) AS t_cost, count() AS t_spans, argMax(span_id, reasoning_tokens) AS t_span_id
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND start_time >= {{horizon:{TS}}}
    AND trace_id IN (
        SELECT trace_id FROM spans
        WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND start_time >= {{horizon:{TS}}}
            AND ingested_at >= {{since:{TS}}} AND ingested_at < {{until:{TS}}}
    )
    {{filters}}
GROUP BY trace_id
HAVING t_reasoning_tokens > {{min_tokens:Float64}} OR t_cost > {{min_cost:Float64}}
ORDER BY t_trace_id
LIMIT {SWEEP_LIMIT}
"""


def _sweep_params(since: datetime, until: datetime, min_tokens: float, min_cost: float) -> dict[str, Any]:
    return {"horizon": _utc(since) - SWEEP_HORIZON, "since": _utc(since), "until": _utc(until),
            "min_tokens": float(min_tokens), "min_cost": float(min_cost)}


def swept_spans(project_id: int, since: datetime, until: datetime, *, min_tokens: float, min_cost: float,
                filters: Mapping[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Counted spans ingested in [since, until) not already flagged, above either floor."""
    where, params = filter_sql(filters or {})
    sql = SWEPT_SPANS.replace("{filters}", where)
    return clickhouse.execute(sql, {**_sweep_params(since, until, min_tokens, min_cost), **params},
                              tag="alerts.sweep_spans", projects=project_id)


def swept_traces(project_id: int, since: datetime, until: datetime, *, min_tokens: float, min_cost: float,
                 filters: Mapping[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Whole traces (sums over their counted spans) that gained a span in [since, until)."""
    where, params = filter_sql(filters or {})
    sql = SWEPT_TRACES.replace("{filters}", where)
    rows = clickhouse.execute(sql, {**_sweep_params(since, until, min_tokens, min_cost), **params},
                              tag="alerts.sweep_traces", projects=project_id)
    return [{name[2:]: value for name, value in row.items()} for row in rows]


MARK_RUNAWAY = f"""
ALTER TABLE spans UPDATE runaway = 1
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND start_time >= {{horizon:{TS}}}
    AND trace_id IN {{trace_ids:Array(String)}} {{spans}}
"""


def mark_runaway(project_id: int, horizon: datetime, trace_ids: Iterable[str],
                 span_ids: Iterable[str] | None = None) -> None:
    """Flag spans the sweep found (all counted spans of the traces when ``span_ids`` is None).

    A mutation, run asynchronously by ClickHouse; skipped on a cluster, where spans is a
    Distributed table (the alert events carry the finding either way).
    """
    from django.conf import settings

    traces = sorted(set(trace_ids))
    if not traces:
        return
    if settings.CLICKHOUSE_CLUSTER:
        log.info("cluster mode: not flagging %d runaway traces found by the sweep", len(traces))
        return
    params: dict[str, Any] = {"horizon": _utc(horizon), "trace_ids": traces}
    spans = ""
    if span_ids is not None:
        spans = "AND span_id IN {span_ids:Array(String)}"
        params["span_ids"] = sorted(set(span_ids))
    clickhouse.execute(MARK_RUNAWAY.replace("{spans}", spans), params, tag="alerts.mark_runaway",
                       projects=project_id)


# ---------------------------------------------------------------- quota, budget, spike inputs

METRIC_SQL = {"reasoning_tokens": "toFloat64(sum(reasoning_tokens))", "cost": "toFloat64(sum(cost_total))"}
# quota subject ("per") → (spans column, the value of calls that belong to no such subject)
QUOTA_SUBJECTS = {"user": ("user_id", "''"), "session": ("session_id", "''"), "api_key": ("api_key_id", "0")}


def quota_usage(project_id: int, day: date, metric: str, per: str, filters: Mapping[str, list[Any]],
                floor: float) -> dict[str, float]:
    """{subject: amount used on ``day`` (UTC)} for subjects at or above ``floor``.

    Subjects are user ids, session ids or API key ids (as strings); calls without one are left out.
    """
    value = METRIC_SQL[metric]
    if per == "user" and set(filters) <= DAILY_USER_FILTERS:
        where, params = filter_sql(filters)
        sql = f"""SELECT user_id AS subject, {value} AS used FROM usage_daily_users
            WHERE project_id IN {PROJECT_PARAM} AND day = {{day:Date}}{where}
            GROUP BY subject HAVING used >= {{floor:Float64}} ORDER BY used DESC LIMIT 10000"""
        params.update({"day": day, "floor": float(floor)})
    else:
        column, nobody = QUOTA_SUBJECTS[per]
        where, params = filter_sql(filters)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        sql = f"""SELECT toString({column}) AS subject, {value} AS used FROM spans
            WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND {column} != {nobody}
                AND start_time >= {{start:{TS}}} AND start_time < {{end:{TS}}}{where}
            GROUP BY subject HAVING used >= {{floor:Float64}} ORDER BY used DESC LIMIT 10000"""
        params.update({"start": start, "end": start + timedelta(days=1), "floor": float(floor)})
    rows = clickhouse.execute(sql, params, tag="alerts.quota", projects=project_id)
    return {str(r["subject"]): float(r["used"]) for r in rows}


def _series_source(filters: Mapping[str, list[Any]]) -> tuple[str, str]:
    """(table, hour expression) able to apply ``filters``."""
    if set(filters) <= HOURLY_FILTERS:
        return "usage_hourly", "hour"
    return "spans", "toStartOfHour(start_time)"


def hourly_series(project_id: int, start: datetime, metric: str,
                  filters: Mapping[str, list[Any]]) -> tuple[dict[datetime, float], datetime | None]:
    """({hour start: value} since ``start``, the first hour the project ever had data (with the filters))."""
    table, hour = _series_source(filters)
    value = METRIC_SQL[metric]
    where, params = filter_sql(filters)
    counted = " AND counted = 1" if table == "spans" else ""
    sql = f"""SELECT {hour} AS h, {value} AS v FROM {table}
        WHERE project_id IN {PROJECT_PARAM}{counted} AND {hour} >= {{start:{TS}}}{where}
        GROUP BY h ORDER BY h"""
    rows = clickhouse.execute(sql, {**params, "start": _utc(start)}, tag="alerts.spike", projects=project_id)
    first_sql = f"""SELECT min({hour}) AS first, count() AS n FROM {table}
        WHERE project_id IN {PROJECT_PARAM}{counted}{where}"""
    first_rows = clickhouse.execute(first_sql, params, tag="alerts.spike_first", projects=project_id)
    first = first_rows[0]["first"] if first_rows and first_rows[0]["n"] else None
    series = {_utc(r["h"]): float(r["v"]) for r in rows}
    return series, (_utc(first) if first is not None else None)


def daily_spend(project_id: int, start: datetime, filters: Mapping[str, list[Any]]) -> dict[date, float]:
    """{UTC day: spend in USD} since ``start``."""
    if set(filters) <= HOURLY_FILTERS:
        table, day, counted = "usage_hourly", "toDate(hour)", ""
        time_column = "hour"
    elif set(filters) <= DAILY_USER_FILTERS:
        table, day, counted = "usage_daily_users", "day", ""
        time_column = "day"
    else:
        table, day, counted = "spans", "toDate(start_time)", " AND counted = 1"
        time_column = "start_time"
    where, params = filter_sql(filters)
    sql = f"""SELECT {day} AS d, toFloat64(sum(cost_total)) AS cost FROM {table}
        WHERE project_id IN {PROJECT_PARAM}{counted} AND {time_column} >= {{start:{TS}}}{where}
        GROUP BY d ORDER BY d"""
    if time_column == "day":
        sql = sql.replace(f"{{start:{TS}}}", "{start_day:Date}")
        params["start_day"] = _utc(start).date()
    else:
        params["start"] = _utc(start)
    rows = clickhouse.execute(sql, params, tag="alerts.budget", projects=project_id)
    return {r["d"] if isinstance(r["d"], date) else date.fromisoformat(str(r["d"])): float(r["cost"]) for r in rows}
