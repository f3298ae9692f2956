"""Recompute stored span costs for one project and a range of whole UTC days (``manage.py reprice``).

Ingest prices each span once, with the catalog of that moment. After a price changes
(a new override, a corrected rate, a model that was unpriced), :func:`reprice` brings the
stored costs in line with the current catalog:

1. :func:`plan` lists the models with usage in the range and splits the range at the
   catalog's effective dates into (model, days, rates) groups — exactly the rate that
   ingest would pick today for a span of that model on that day (:meth:`Entry.rates_on`),
   or no rate (the spans become ``priced = false`` with zero costs, as at ingest).
2. Each group is one mutation, ``ALTER TABLE spans UPDATE cost_... WHERE project, model,
   days, has_usage`` with ``mutations_sync = 2``. The costs are computed in SQL with the
   same exact arithmetic as :func:`ingest.pricing.price` (tokens × the integer rate in
   pico-dollars per token, each part rounded half-even to 1e-9 USD, the total the sum of
   the rounded parts), so a repriced span equals a span ingested with the new rates to
   the last nano-dollar.
3. Mutations do not reach materialized views, so the rollups are rebuilt for the range:
   the project's rows of those days are deleted and re-inserted with the views' own
   SELECT (:func:`rollup_select` of the 0003 migration) restricted to the project and days.

Everything is recomputed from token counts, so running it twice gives the same result.
Dashboards may briefly see a range without rollup rows between the delete and the
insert, and spans arriving for those days while a rebuild runs may be missed or counted
twice in the rollups (never in ``spans``): reprice ranges that are no longer receiving
traffic, or run it again afterwards. In cluster mode the statements must target the
local tables ``ON CLUSTER``; this module covers the single-server and embedded modes.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ingest.catalog import Catalog, Entry
from ingest.pricing import Rates
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

_rollups: Any = importlib.import_module("thinkmeter.clickhouse.migrations.0003_rollups")
ROLLUPS: dict[str, tuple[str, str, str]] = _rollups.ROLLUPS
rollup_select: Callable[..., str] = _rollups.rollup_select
rollup_columns: Callable[[str], list[str]] = _rollups.rollup_columns

TAG = "ingest.reprice"
SYNC = {"mutations_sync": 2}
RATE_SCALE = 12  # a rate of R USD per million tokens is R·10⁶ pico-dollars per token (pricing.Rates.micro)

DAYS = "toDate(start_time) >= {day_from:Date} AND toDate(start_time) < {day_to:Date}"
RANGE = f"project_id IN {PROJECT_PARAM} AND {DAYS}"

MODELS_SQL = f"""
SELECT model, toDate(start_time) AS day, count() AS spans
FROM spans
WHERE {RANGE} AND has_usage
GROUP BY model, day
ORDER BY model, day
"""

TOTALS_SQL = f"""
SELECT count() AS requests, countIf(NOT priced) AS unpriced, toDecimal128(sum(cost_total), 9) AS cost_total
FROM spans
WHERE {RANGE} AND counted = 1
"""

UNCACHED = "greatest(toInt64(input_tokens) - toInt64(cache_read_tokens) - toInt64(cache_write_tokens), 0)"
VISIBLE = "greatest(toInt64(output_tokens) - toInt64(reasoning_tokens), 0)"


def _part(tokens: str, rate_param: str) -> str:
    """tokens × per-token rate, rounded half-even to 1e-9 USD (pricing._part in SQL)."""
    return (
        f"CAST(roundBankers(toDecimal256({tokens}, 0) * toDecimal256({{{rate_param}:String}}, {RATE_SCALE}), 9) "
        "AS Decimal(18, 9))"
    )


PARTS = {
    "cost_input": _part(UNCACHED, "rate_input"),
    "cost_cache_read": _part("cache_read_tokens", "rate_cache_read"),
    "cost_cache_write": _part("cache_write_tokens", "rate_cache_write"),
    "cost_output_visible": _part(VISIBLE, "rate_output"),
    "cost_reasoning": _part("reasoning_tokens", "rate_reasoning"),
}
GROUP_WHERE = f"project_id IN {PROJECT_PARAM} AND model = {{model:String}} AND {DAYS} AND has_usage"

PRICE_SQL = (
    "ALTER TABLE spans UPDATE\n    "
    + ",\n    ".join(f"{column} = {expression}" for column, expression in PARTS.items())
    + ",\n    cost_total = " + " + ".join(PARTS.values())
    + ",\n    price_id = {price_id:UInt32},\n    priced = true\n"
    + f"WHERE {GROUP_WHERE}"
)

UNPRICE_SQL = (
    "ALTER TABLE spans UPDATE\n    "
    + ",\n    ".join(f"{column} = 0" for column in [*PARTS, "cost_total"])
    + ",\n    price_id = 0,\n    priced = false\n"
    + f"WHERE {GROUP_WHERE}"
)


def delete_rollup_sql(target: str) -> str:
    time_column = ROLLUPS[target][0]
    return (
        f"ALTER TABLE {target} DELETE WHERE project_id IN {PROJECT_PARAM} "
        f"AND toDate({time_column}) >= {{day_from:Date}} AND toDate({time_column}) < {{day_to:Date}}"
    )


def insert_rollup_sql(target: str) -> str:
    columns = ", ".join(rollup_columns(target))
    return f"INSERT INTO {target} ({columns})\n{rollup_select(target, RANGE)}"


@dataclass(frozen=True)
class Group:
    """Spans of one model over consecutive days that get the same rates (None: unpriced)."""

    model: str
    day_from: date
    day_to: date  # exclusive
    rates: Rates | None
    entry: str | None  # the catalog entry's model name
    spans: int

    @property
    def label(self) -> str:
        last = self.day_to - timedelta(days=1)
        what = f"price {self.rates.price_id}" if self.rates else "unpriced"
        return f"{self.model or '(no model)'} {self.day_from}..{last} {what} ({self.spans} spans)"


@dataclass
class Totals:
    requests: int
    unpriced: int
    cost_total: Decimal


@dataclass
class RepriceResult:
    project_id: int
    day_from: date
    day_to: date  # exclusive
    groups: list[Group] = field(default_factory=list)
    before: Totals | None = None
    after: Totals | None = None

    @property
    def spans(self) -> int:
        return sum(group.spans for group in self.groups)


Progress = Callable[[int, int, str], None]


def rate_text(micro: int) -> str:
    """A rate in micro-dollars per million tokens as the USD-per-token string that SQL parses (exact)."""
    return format(Decimal(micro).scaleb(-RATE_SCALE), "f")


def rate_params(rates: Rates) -> dict[str, Any]:
    """Bound parameters for PRICE_SQL: the same integer rates (and defaults) as :func:`ingest.pricing.price`."""
    micro_input, micro_cache_read, micro_cache_write, micro_output, micro_reasoning = rates.micro
    return {
        "rate_input": rate_text(micro_input),
        "rate_cache_read": rate_text(micro_cache_read),
        "rate_cache_write": rate_text(micro_cache_write),
        "rate_output": rate_text(micro_output),
        "rate_reasoning": rate_text(micro_reasoning),
        "price_id": rates.price_id,
    }


def segments(entry: Entry | None, day_from: date, day_to: date) -> list[tuple[date, date, Rates | None]]:
    """Split [day_from, day_to) where the entry's rate in effect changes; adjacent equal rates merge."""
    if entry is None:
        return [(day_from, day_to, None)]
    cuts = {day_from, day_to}
    for period in entry.periods:
        for edge in (period.start, period.end):
            if edge is not None and day_from < edge < day_to:
                cuts.add(edge)
    edges = sorted(cuts)
    result: list[tuple[date, date, Rates | None]] = []
    for start, end in zip(edges, edges[1:], strict=False):
        rates = entry.rates_on(start)
        if result and result[-1][2] == rates:
            result[-1] = (result[-1][0], end, rates)
        else:
            result.append((start, end, rates))
    return result


def _range(day_from: date, day_to: date) -> dict[str, Any]:
    return {"day_from": day_from, "day_to": day_to}


def plan(project_id: int, day_from: date, day_to: date, catalog: Catalog | None = None) -> list[Group]:
    """The (model, days, rates) groups for the project's spans with usage in [day_from, day_to)."""
    catalog = catalog or Catalog()  # a fresh snapshot: the prices as stored right now
    per_day: dict[str, dict[date, int]] = defaultdict(dict)
    rows = clickhouse.execute(MODELS_SQL, _range(day_from, day_to), tag=f"{TAG}.plan", projects=project_id)
    for row in rows:
        per_day[row["model"]][row["day"]] = int(row["spans"])
    groups = []
    for model, days in sorted(per_day.items()):
        entry = catalog.match(project_id, model) if model else None
        for start, end, rates in segments(entry, day_from, day_to):
            count = sum(n for day, n in days.items() if start <= day < end)
            if count:
                groups.append(Group(model, start, end, rates, entry.model if entry else None, count))
    return groups


def totals(project_id: int, day_from: date, day_to: date) -> Totals:
    row = clickhouse.execute(TOTALS_SQL, _range(day_from, day_to), tag=f"{TAG}.totals", projects=project_id)[0]
    return Totals(int(row["requests"]), int(row["unpriced"]), Decimal(row["cost_total"] or 0))


def apply_group(project_id: int, group: Group) -> None:
    params: dict[str, Any] = {"model": group.model, **_range(group.day_from, group.day_to)}
    if group.rates is None:
        clickhouse.execute(UNPRICE_SQL, params, tag=f"{TAG}.spans", projects=project_id, settings=SYNC)
    else:
        clickhouse.execute(PRICE_SQL, {**params, **rate_params(group.rates)}, tag=f"{TAG}.spans",
                           projects=project_id, settings=SYNC)


def rebuild_rollups(project_id: int, day_from: date, day_to: date, progress: Callable[[str], None]) -> None:
    """Delete the project's rollup rows of [day_from, day_to) and insert them again from spans."""
    params = _range(day_from, day_to)
    for target in ROLLUPS:
        clickhouse.execute(delete_rollup_sql(target), params, tag=f"{TAG}.rollup.delete", projects=project_id,
                           settings=SYNC)
        progress(f"{target}: deleted {day_from}..{day_to - timedelta(days=1)}")
        clickhouse.execute(insert_rollup_sql(target), params, tag=f"{TAG}.rollup.insert", projects=project_id)
        progress(f"{target}: rebuilt from spans")


def reprice(project_id: int, day_from: date, day_to: date, progress: Progress | None = None,
            catalog: Catalog | None = None) -> RepriceResult:
    """Reprice the project's spans of [day_from, day_to) (UTC days, end exclusive) and rebuild rollups."""
    if day_to <= day_from:
        raise ValueError(f"empty range: {day_from} .. {day_to} (the end is exclusive)")
    result = RepriceResult(project_id, day_from, day_to)
    result.before = totals(project_id, day_from, day_to)
    result.groups = plan(project_id, day_from, day_to, catalog)
    steps = len(result.groups) + 2 * len(ROLLUPS)
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps, label)

    for group in result.groups:
        apply_group(project_id, group)
        step(group.label)
    rebuild_rollups(project_id, day_from, day_to, step)
    result.after = totals(project_id, day_from, day_to)
    return result
