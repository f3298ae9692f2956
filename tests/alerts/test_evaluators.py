"""The pure evaluators: runaway thresholds and scans, quota levels, budgets, spikes, parameters."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from alerts import budget, quota, runaway, spike
from alerts.findings import CRITICAL, WARNING
from alerts.params import ParamError, parse_filters, parse_params, parse_window
from ingest.rows import SCHEMA


def stat(samples: int, p95: float, cost_p95: float = 0.01) -> runaway.ClassStat:
    return runaway.ClassStat(samples, (p95 / 2, p95 * 0.9, p95, p95 * 1.2), (cost_p95 / 2, 0, cost_p95, 0))


def rule(**overrides: object) -> runaway.RunawayRule:
    params = {**parse_params("runaway", {}), **overrides}
    filters = params.pop("filters", {})
    return runaway.RunawayRule.from_params(7, "r", params, filters)  # type: ignore[arg-type]


# ---------------------------------------------------------------- runaway thresholds


def test_threshold_falls_back_from_class_to_task_type_to_cap() -> None:
    stats = runaway.Stats(7 * 86400, classes={("summarize", 2): stat(80, 1000.0), ("summarize", 3): stat(10, 9000.0)},
                          task_types={"summarize": stat(90, 1500.0), "rare": stat(5, 100.0)})
    thresholds = runaway.Thresholds(rule(absolute_cap=50_000), stats)
    by_class = thresholds.for_class("summarize", 2)
    assert by_class is not None and by_class.value == 2000.0 and by_class.basis == runaway.BASIS_CLASS
    assert by_class.samples == 80 and by_class.p95 == 1000.0
    # tier 3 has only 10 samples (< 50): the task type over all tiers decides
    by_type = thresholds.for_class("summarize", 3)
    assert by_type is not None and by_type.value == 3000.0 and by_type.basis == runaway.BASIS_TASK_TYPE
    # too few samples at both levels: the absolute cap
    capped = thresholds.for_class("rare", 1)
    assert capped is not None and capped.value == 50_000 and capped.basis == runaway.BASIS_CAP
    assert thresholds.minimum == 2000.0
    # without a cap, an unknown class is not judged
    assert runaway.Thresholds(rule(), stats).for_class("unknown", 1) is None


def test_a_class_that_never_thinks_gives_no_threshold() -> None:
    stats = runaway.Stats(86400, classes={("chat", 1): stat(500, 0.0)})
    assert runaway.Thresholds(rule(), stats).for_class("chat", 1) is None


def spans_table(rows: list[dict[str, object]]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    defaults: dict[str, object] = {"attributes": {}, "resource_attributes": {}}
    for row in rows:
        for name, kind in zip(SCHEMA.names, SCHEMA.types, strict=True):
            if name in row:
                value = row[name]
            elif name in defaults:
                value = defaults[name]
            elif pa.types.is_string(kind):
                value = ""
            elif pa.types.is_decimal(kind):
                value = Decimal(0)
            elif pa.types.is_boolean(kind):
                value = False
            elif pa.types.is_timestamp(kind):
                value = datetime(2025, 6, 1, tzinfo=UTC)
            else:
                value = 0
            columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def test_scan_table_flags_counted_calls_above_threshold_only() -> None:
    stats = runaway.Stats(86400, classes={("summarize", 2): stat(100, 1000.0)})
    thresholds = runaway.Thresholds(rule(), stats)
    table = spans_table([
        {"trace_id": "a", "span_id": "1", "task_type": "summarize", "tier": 2, "counted": 1, "reasoning_tokens": 1500},
        {"trace_id": "b", "span_id": "2", "task_type": "summarize", "tier": 2, "counted": 1, "reasoning_tokens": 3000},
        # a duplicate copy (counted = 0) is never judged
        {"trace_id": "c", "span_id": "3", "task_type": "summarize", "tier": 2, "counted": 0, "reasoning_tokens": 9000},
        # exactly at the threshold is not above it
        {"trace_id": "d", "span_id": "4", "task_type": "summarize", "tier": 2, "counted": 1, "reasoning_tokens": 2000},
    ])
    result = runaway.scan_table(table, [thresholds], "https://tm.example")
    assert result.flagged == [1]
    (rule_id, finding), = result.findings
    assert rule_id == 7 and finding.key == "b" and finding.value == 3000 and finding.threshold == 2000
    assert finding.evidence["trace_url"] == "https://tm.example/traces/b/"
    assert finding.evidence["p95"] == 1000.0 and finding.evidence["samples"] == 100
    flagged = runaway.with_runaway_flags(table, result.flagged)
    assert flagged.column("runaway").to_pylist() == [0, 1, 0, 0]
    assert flagged.schema == table.schema


def test_scan_table_by_cost_and_with_filters() -> None:
    stats = runaway.Stats(86400, classes={("qa", 1): stat(100, 10.0, cost_p95=0.02)})
    by_cost = runaway.Thresholds(rule(metric="cost"), stats)
    only_bob = runaway.Thresholds(rule(metric="cost", filters=parse_filters({"user": "bob"})), stats)
    table = spans_table([
        {"trace_id": "a", "span_id": "1", "task_type": "qa", "tier": 1, "counted": 1, "cost_total": Decimal("0.05"),
         "user_id": "alice"},
        {"trace_id": "b", "span_id": "2", "task_type": "qa", "tier": 1, "counted": 1, "cost_total": Decimal("0.03"),
         "user_id": "bob"},
    ])
    assert [f.key for _, f in runaway.scan_table(table, [by_cost]).findings] == ["a"]
    assert runaway.scan_table(table, [only_bob]).findings == []


def test_trace_rules_are_left_to_the_sweep() -> None:
    stats = runaway.Stats(86400, classes={("qa", 1): stat(100, 10.0)})
    thresholds = runaway.Thresholds(rule(scope="trace"), stats)
    table = spans_table([{"trace_id": "a", "task_type": "qa", "tier": 1, "counted": 1, "reasoning_tokens": 999}])
    assert runaway.scan_table(table, [thresholds]).findings == []
    rows = [{"trace_id": "a", "task_type": "qa", "tier": 1, "value": 999.0, "spans": 3}]
    (finding,) = runaway.evaluate_rows(thresholds.rule, thresholds, rows)
    assert finding.title.startswith("Runaway trace") and finding.evidence["spans"] == 3


# ---------------------------------------------------------------- quota


def test_quota_warns_at_80_percent_and_fires_at_100() -> None:
    params = parse_params("quota", {"limit": 10_000})
    day = date(2025, 6, 3)
    found = {f.evidence["subject"]: f for f in quota.evaluate(
        {"u-79": 7_900, "u-80": 8_000, "u-99": 9_999, "u-100": 10_000, "u-150": 15_000, "": 99_999}, params, day)}
    assert set(found) == {"u-80", "u-99", "u-100", "u-150"}
    assert found["u-80"].severity == WARNING and found["u-99"].severity == WARNING
    assert found["u-100"].severity == CRITICAL and found["u-150"].severity == CRITICAL
    assert found["u-80"].key == "user:u-80:2025-06-03"
    assert found["u-80"].threshold == 8_000 and found["u-100"].threshold == 10_000


def test_quota_thresholds_are_configurable() -> None:
    params = parse_params("quota", {"limit": 100, "warn_at": 0.5, "fire_at": 0.9, "metric": "cost", "per": "session"})
    levels = {f.evidence["subject"]: f.severity for f in quota.evaluate({"a": 49, "b": 50, "c": 90}, params,
                                                                           date(2025, 1, 1))}
    assert levels == {"b": WARNING, "c": CRITICAL}


# ---------------------------------------------------------------- budget


def test_budget_fires_when_spent_and_warns_on_forecast() -> None:
    now = datetime(2025, 6, 10, 12, tzinfo=UTC)
    params = parse_params("budget", {})
    spent = budget.evaluate(1_050.0, [100.0] * 9, 1_000.0, now, params)
    assert spent is not None and spent.severity == CRITICAL and spent.key == "2025-06"
    # $100/day with 20.5 days left: forecast ≈ 3,000 > 2,500 → early warning
    forecast = budget.evaluate(950.0, [100.0] * 9, 2_500.0, now, params, today_so_far=50.0)
    assert forecast is not None and forecast.severity == WARNING
    assert forecast.value == pytest.approx(950 + 100 * 20.5)
    assert forecast.evidence["forecast_usd"] == pytest.approx(3_000.0)
    # plenty of room: nothing
    assert budget.evaluate(950.0, [100.0] * 9, 10_000.0, now, params) is None
    # without the forecast, only the cap counts
    assert budget.evaluate(950.0, [100.0] * 9, 2_500.0, now, parse_params("budget", {"forecast": False})) is None
    share = budget.evaluate(2_100.0, [100.0] * 9, 2_500.0, now, parse_params("budget", {"forecast": False,
                                                                                          "warn_at": 0.8}))
    assert share is not None and share.severity == WARNING and share.threshold == 2_000.0


# ---------------------------------------------------------------- spike


def series_with(baseline: list[float], current: float, hour: datetime) -> dict[datetime, float]:
    values = {hour - timedelta(days=k + 1): v for k, v in enumerate(baseline)}
    values[hour] = current
    return values


def test_robust_z_score() -> None:
    score = spike.robust_z(10.0, [1, 2, 3, 4, 5])
    assert score.median == 3 and score.mad == 1 and score.z == pytest.approx(0.6745 * 7)
    assert spike.robust_z(5.0, [5, 5, 5]).z == 0
    assert math.isinf(spike.robust_z(6.0, [5, 5, 5]).z)
    flat_but_one = spike.robust_z(9.0, [5, 5, 5, 5, 7])  # MAD 0, mean absolute deviation 0.4
    assert flat_but_one.z == pytest.approx(4 / (1.2533 * 0.4))


def test_spike_needs_z_volume_and_baseline() -> None:
    hour = datetime(2025, 6, 10, 14, tzinfo=UTC)
    params = parse_params("spike", {"metric": "cost", "z": 4, "min_value": 5})
    first = hour - timedelta(days=30)
    baseline = [2.0, 2.2, 1.8, 2.1, 1.9, 2.0, 2.3]
    found = spike.evaluate(series_with(baseline, 12.0, hour), hour, params, first)
    assert found is not None and found.severity == CRITICAL and found.evidence["z"] > 4
    assert found.threshold is not None and 2.0 < found.threshold < 12.0
    assert spike.evaluate(series_with(baseline, 2.6, hour), hour, params, first) is None  # not unusual
    small = parse_params("spike", {"metric": "cost", "z": 4, "min_value": 50})
    assert spike.evaluate(series_with(baseline, 12.0, hour), hour, small, first) is None  # below the volume
    # only two days of history: not enough baseline
    assert spike.evaluate(series_with(baseline, 12.0, hour), hour, params, hour - timedelta(days=2)) is None


def test_quiet_days_count_as_zero_once_the_project_had_data() -> None:
    hour = datetime(2025, 6, 10, 3, tzinfo=UTC)
    series = {hour - timedelta(days=1): 0.5, hour: 40.0}
    baseline = spike.baseline_for(series, hour, 7, first_seen=hour - timedelta(days=4))
    assert baseline == [0.5, 0.0, 0.0, 0.0]


# ---------------------------------------------------------------- parameters


def test_params_defaults_and_errors() -> None:
    assert parse_params("runaway", {}) == {"multiplier": 2.0, "window": "7d", "min_samples": 50,
                                           "metric": "reasoning_tokens", "scope": "span", "absolute_cap": None}
    assert parse_params("runaway", {"window": "48h"})["window"] == "2d"
    assert parse_window("30d") == 30 * 86400
    with pytest.raises(ParamError) as bad:
        parse_params("runaway", {"multiplier": -1, "window": "soon", "metric": "vibes", "colour": "red"})
    assert set(bad.value.errors) == {"multiplier", "window", "metric", "params"}
    with pytest.raises(ParamError) as no_limit:
        parse_params("quota", {})
    assert "limit" in no_limit.value.errors
    assert parse_params("quota", {"limit": 5, "per": "api_key"})["per"] == "api_key"
    with pytest.raises(ParamError) as per_team:
        parse_params("quota", {"limit": 5, "per": "team"})
    assert per_team.value.errors["per"] == "must be one of user, session, api_key"
    with pytest.raises(ParamError):
        parse_params("quota", {"limit": 5, "warn_at": 0.9, "fire_at": 0.8})
    assert parse_filters({"tier": "2", "user": ["bob", "alice"]}) == {"tier": [2], "user": ["alice", "bob"]}
    with pytest.raises(ParamError):
        parse_filters({"colour": "red"})
