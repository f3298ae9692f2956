"""Runaway detection: calls (or traces) whose reasoning tokens or cost exceed k × p95 of their class.

Pure: works on Arrow tables and plain rows; the p95 statistics come in as
:class:`Stats` (see :mod:`alerts.stats` for where they are computed).

A call's threshold is ``multiplier × p95`` of its task class — task type and tier —
over the rule's trailing window, when the class has at least ``min_samples`` calls;
else of its task type over all tiers, with the same minimum; else the rule's
``absolute_cap``; else the call is not judged. A class whose p95 is 0 (no thinking at
all) gives no threshold: the next level is tried.

:func:`scan_table` is what runs at ingest, on the span writer's thread, for every batch:
one vectorized comparison against the smallest threshold of each rule picks the few
candidate rows, a vectorized lookup of each candidate's own threshold keeps the calls
above it, and only those (the runaways) are looked at one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alerts.findings import CRITICAL, Finding, fmt_metric, fmt_number
from alerts.params import describe_window, parse_window, row_matches

BASIS_CLASS = "task class"
BASIS_TASK_TYPE = "task type"
BASIS_CAP = "absolute cap"
ROW_COLUMNS = ("trace_id", "span_id", "task_type", "tier", "model", "service", "environment", "user_id",
               "session_id", "start_time")


@dataclass(frozen=True)
class ClassStat:
    """Distribution of one task class over a window: sample count and quantiles per metric."""

    samples: int
    reasoning: tuple[float, float, float, float]  # p50, p90, p95, p99
    cost: tuple[float, float, float, float]

    def p95(self, metric: str) -> float:
        return (self.cost if metric == "cost" else self.reasoning)[2]


@dataclass(frozen=True)
class Stats:
    """p95 statistics of one project over one window: per (task type, tier) and per task type."""

    window_seconds: int
    classes: dict[tuple[str, int], ClassStat] = field(default_factory=dict)
    task_types: dict[str, ClassStat] = field(default_factory=dict)
    computed_at: float = 0.0  # time.time() when read


@dataclass(frozen=True)
class RunawayRule:
    rule_id: int
    name: str
    metric: str
    multiplier: float
    min_samples: int
    window_seconds: int
    absolute_cap: float | None
    scope: str
    filters: dict[str, list[Any]]

    @classmethod
    def from_params(cls, rule_id: int, name: str, params: Mapping[str, Any],
                    filters: Mapping[str, list[Any]]) -> RunawayRule:
        cap = params.get("absolute_cap")
        return cls(rule_id=rule_id, name=name, metric=str(params.get("metric", "reasoning_tokens")),
                   multiplier=float(params.get("multiplier", 2.0)), min_samples=int(params.get("min_samples", 50)),
                   window_seconds=parse_window(params.get("window", "7d")),
                   absolute_cap=None if cap is None else float(cap), scope=str(params.get("scope", "span")),
                   filters={k: list(v) for k, v in filters.items()})


@dataclass(frozen=True)
class Threshold:
    value: float
    p95: float | None
    samples: int
    basis: str
    task_class: str


class Thresholds:
    """Every threshold one rule applies, precomputed from the statistics."""

    def __init__(self, rule: RunawayRule, stats: Stats | None) -> None:
        self.rule = rule
        self.by_class: dict[tuple[str, int], Threshold] = {}
        self.by_task_type: dict[str, Threshold] = {}
        for (task_type, tier), stat in (stats.classes.items() if stats else ()):
            found = self._from_stat(stat, BASIS_CLASS, f"{task_type or '(none)'} / tier {tier}")
            if found is not None:
                self.by_class[(task_type, tier)] = found
        for task_type, stat in (stats.task_types.items() if stats else ()):
            found = self._from_stat(stat, BASIS_TASK_TYPE, f"{task_type or '(none)'} / all tiers")
            if found is not None:
                self.by_task_type[task_type] = found
        self.cap = (Threshold(rule.absolute_cap, None, 0, BASIS_CAP, "any") if rule.absolute_cap is not None
                    else None)
        candidates = [t.value for t in (*self.by_class.values(), *self.by_task_type.values())]
        if self.cap is not None:
            candidates.append(self.cap.value)
        self.minimum: float | None = min(candidates) if candidates else None
        # the same thresholds as a dense table for vectorized lookups: row = task type (last: unknown
        # ones), column = tier; inf where nothing applies (nothing is above inf)
        names = sorted({t for t, _ in self.by_class} | set(self.by_task_type))
        self._names = pa.array(names, pa.string())
        fallback = self.cap.value if self.cap is not None else np.inf
        table = np.full((len(names) + 1, 256), fallback, dtype=np.float64)
        for row, name in enumerate(names):
            if name in self.by_task_type:
                table[row, :] = self.by_task_type[name].value
        position = {name: row for row, name in enumerate(names)}
        for (task_type, tier), threshold in self.by_class.items():
            if 0 <= tier < 256:
                table[position[task_type], tier] = threshold.value
        self._table = table

    def _from_stat(self, stat: ClassStat, basis: str, label: str) -> Threshold | None:
        p95 = stat.p95(self.rule.metric)
        if stat.samples < self.rule.min_samples or not p95 or p95 <= 0:
            return None
        return Threshold(self.rule.multiplier * p95, p95, stat.samples, basis, label)

    def for_class(self, task_type: str, tier: int) -> Threshold | None:
        return self.by_class.get((task_type, tier)) or self.by_task_type.get(task_type) or self.cap

    def values_for(self, task_types: pa.Array | pa.ChunkedArray, tiers: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Each row's threshold value (vectorized :meth:`for_class`; inf where none applies)."""
        index = pc.index_in(task_types, value_set=self._names).fill_null(len(self._names))
        rows = np.asarray(index.to_numpy(zero_copy_only=False), dtype=np.int64)
        columns = np.asarray(pc.cast(tiers, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64) & 0xFF
        return self._table[rows, columns]


def metric_array(table: pa.Table, metric: str) -> pa.ChunkedArray:
    """The compared column: reasoning tokens, or total cost as float USD."""
    if metric == "cost":
        return pc.cast(table.column("cost_total"), pa.float64())
    return table.column("reasoning_tokens")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1e9, UTC).isoformat()
    return str(value or "")


def finding_for(rule: RunawayRule, threshold: Threshold, row: Mapping[str, Any], value: float,
                trace_url: str = "") -> Finding:
    """The finding for one runaway call or trace (``row`` holds the ROW_COLUMNS it has)."""
    trace_id = str(row.get("trace_id", ""))
    subject = "trace" if rule.scope == "trace" else "call"
    ratio = value / threshold.p95 if threshold.p95 else None
    if threshold.basis == BASIS_CAP:
        why = f"above the absolute cap of {fmt_metric(rule.metric, threshold.value)}"
    else:
        why = f"{ratio:.1f}× the p95 of {threshold.task_class}" if ratio else "above its threshold"
    title = f"Runaway {subject}: {fmt_metric(rule.metric, value)}, {why}"
    evidence: dict[str, Any] = {
        "trace_id": trace_id, "trace_url": trace_url, "span_id": str(row.get("span_id", "")),
        "metric": rule.metric, "value": value, "threshold": threshold.value, "p95": threshold.p95,
        "samples": threshold.samples, "basis": threshold.basis, "task_class": threshold.task_class,
        "multiplier": rule.multiplier, "window": describe_window(rule.window_seconds), "scope": rule.scope,
        "ratio_to_p95": round(ratio, 3) if ratio else None,
        "task_type": str(row.get("task_type", "")), "tier": int(row.get("tier") or 0),
        "model": str(row.get("model", "")), "service": str(row.get("service", "")),
        "environment": str(row.get("environment", "")), "user_id": str(row.get("user_id", "")),
        "start_time": _iso(row.get("start_time")),
    }
    if "spans" in row:
        evidence["spans"] = int(row["spans"])
    return Finding(key=trace_id, severity=CRITICAL, title=title, value=value, threshold=threshold.value,
                   evidence=evidence)


def judge(rule: RunawayRule, thresholds: Thresholds, row: Mapping[str, Any], value: float) -> Threshold | None:
    """The threshold ``row`` exceeds, if it passes the rule's filters and exceeds one."""
    threshold = thresholds.for_class(str(row.get("task_type", "")), int(row.get("tier") or 0))
    if threshold is None or value <= threshold.value:
        return None
    if rule.filters and not row_matches(rule.filters, row):
        return None
    return threshold


@dataclass
class ScanResult:
    """Rows to flag ``runaway = 1`` and what was found, per rule."""

    flagged: list[int] = field(default_factory=list)
    findings: list[tuple[int, Finding]] = field(default_factory=list)  # (rule id, finding)


def scan_table(table: pa.Table, rules: Sequence[Thresholds], base_url: str = "") -> ScanResult:
    """Find runaway calls in a batch of spans rows (``counted = 1`` rows only).

    Vectorized: per rule, one comparison of the metric column with the rule's smallest
    threshold; the few rows above it are judged one at a time.
    """
    result = ScanResult()
    if not table.num_rows or not rules:
        return result
    counted = pc.equal(table.column("counted"), 1)
    flagged: set[int] = set()
    for thresholds in rules:
        rule = thresholds.rule
        if rule.scope != "span" or thresholds.minimum is None:
            continue
        values = metric_array(table, rule.metric)
        # cheap first pass: above the rule's smallest threshold at all
        candidates = pc.indices_nonzero(pc.and_(counted, pc.greater(values, thresholds.minimum)))
        if not len(candidates):
            continue
        # second pass, still vectorized: above the threshold of each row's own class
        picked = pc.take(values, candidates)
        limits = thresholds.values_for(pc.take(table.column("task_type"), candidates),
                                       pc.take(table.column("tier"), candidates))
        above = np.asarray(picked.to_numpy(zero_copy_only=False), dtype=np.float64) > limits
        if not above.any():
            continue
        chosen = pa.array(np.asarray(candidates.to_numpy(zero_copy_only=False))[above])
        rows = table.select(list(ROW_COLUMNS)).take(chosen).to_pylist()
        for index, row, value in zip(chosen.to_pylist(), rows, pc.take(values, chosen).to_pylist(), strict=True):
            threshold = judge(rule, thresholds, row, float(value))
            if threshold is None:
                continue
            flagged.add(index)
            url = f"{base_url}/traces/{row['trace_id']}/" if base_url else ""
            result.findings.append((rule.rule_id, finding_for(rule, threshold, row, float(value), url)))
    result.flagged = sorted(flagged)
    return result


def with_runaway_flags(table: pa.Table, flagged: Iterable[int]) -> pa.Table:
    """``table`` with ``runaway`` = 1 on the given rows (other rows keep their value)."""
    indices = list(flagged)
    if not indices:
        return table
    position = table.schema.get_field_index("runaway")
    values = table.column("runaway").to_numpy().copy()
    values[indices] = 1
    return table.set_column(position, "runaway", pa.array(values, pa.uint8()))


def evaluate_rows(rule: RunawayRule, thresholds: Thresholds, rows: Iterable[Mapping[str, Any]],
                  base_url: str = "") -> list[Finding]:
    """Judge plain rows (the periodic sweep's): each needs ``value`` and the ROW_COLUMNS it has."""
    findings = []
    for row in rows:
        value = float(row["value"])
        threshold = judge(rule, thresholds, row, value)
        if threshold is not None:
            url = f"{base_url}/traces/{row['trace_id']}/" if base_url else ""
            findings.append(finding_for(rule, threshold, row, value, url))
    return findings


def describe_threshold(threshold: Threshold, metric: str) -> str:
    if threshold.basis == BASIS_CAP:
        return f"absolute cap {fmt_metric(metric, threshold.value)}"
    return (f"{fmt_metric(metric, threshold.value)} (p95 {fmt_number(threshold.p95 or 0)} of "
            f"{threshold.task_class}, {threshold.samples} samples)")
