"""Figure builders: pure functions from data to Plotly figures (no Django, no ClickHouse)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboards import figures
from dashboards.forecast import forecast_month_end

PART_COLUMNS = [column for column, _, _ in figures.PARTS]


def _trace(fig: go.Figure, name: str) -> go.BaseTraceType:
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def test_spend_over_time_stacks_the_four_parts_in_order() -> None:
    df = pd.DataFrame({
        "bucket": [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)],
        "cost_input": [Decimal("1.5"), Decimal("2")], "cost_cache": [0.25, 0],
        "cost_output": [3, 4], "cost_reasoning": [10, 0.125],
    })
    fig = figures.spend_over_time(df)
    assert [t.name for t in fig.data] == ["Input", "Cache", "Visible output", "Reasoning"]
    assert list(_trace(fig, "Reasoning").y) == [10.0, 0.125]
    assert list(_trace(fig, "Input").y) == [1.5, 2.0]
    assert fig.layout.barmode == "stack"
    assert fig.layout.yaxis.tickprefix == "$"
    json.loads(fig.to_json())


def test_figures_carry_no_template_bloat() -> None:
    df = pd.DataFrame({"bucket": [datetime(2026, 3, 1)], **{c: [1.0] for c in PART_COLUMNS}})
    assert len(figures.spend_over_time(df).to_json()) < 4000


def test_spend_by_sorts_largest_on_top_and_caps_bars() -> None:
    df = pd.DataFrame({
        "label": [f"m{i}" for i in range(20)],
        "cost_input": [float(i) for i in range(20)], "cost_cache": [0.0] * 20,
        "cost_output": [1.0] * 20, "cost_reasoning": [0.0] * 20,
    })
    fig = figures.spend_by(df, max_bars=5)
    labels = list(_trace(fig, "Input").y)
    assert labels == ["m15", "m16", "m17", "m18", "m19"]  # bottom to top: the largest is drawn last (on top)
    totals = [t for t in fig.data if t.type == "scatter"][0]
    assert list(totals.text) == ["$16.00", "$17.00", "$18.00", "$19.00", "$20.00"]


def test_spend_by_names_blank_groups() -> None:
    df = pd.DataFrame({"label": ["", "summarize"], **{c: [1.0, 2.0] for c in PART_COLUMNS}})
    assert "(none)" in list(figures.spend_by(df).data[0].y)


def test_money_formatting() -> None:
    assert figures.money(1234.5) == "$1,234.50"
    assert figures.money(0.01234) == "$0.0123"
    assert figures.money(0) == "$0.00"


def test_donut_reports_reasoning_share() -> None:
    fig = figures.cost_parts_donut({"cost_input": 1, "cost_cache": 0, "cost_output": 1, "cost_reasoning": 2})
    assert list(fig.data[0].values) == [1.0, 0.0, 1.0, 2.0]
    assert "50%" in fig.layout.annotations[0].text
    assert "No data" in figures.cost_parts_donut({}).layout.annotations[0].text


def test_reasoning_share_by_computes_fractions() -> None:
    df = pd.DataFrame({"label": ["a", "b", "c"], "cost_reasoning": [1, 3, 0], "cost_total": [4, 4, 0]})
    fig = figures.reasoning_share_by(df)
    assert list(fig.data[0].y) == ["a", "b"]  # c has no spend: left out
    assert list(fig.data[0].x) == [0.25, 0.75]


def test_top_users_labels_anonymous() -> None:
    df = pd.DataFrame({"user_id": ["", "ann"], "cost_total": [1.0, 5.0], "requests": [3, 4]})
    fig = figures.top_users(df)
    assert list(fig.data[0].y) == ["(anonymous)", "ann"]


def test_reasoning_distribution_marks_p95_per_class() -> None:
    df = pd.DataFrame({
        "task_class": ["code · tier 3", "chat · tier 1"],
        "p50": [4000, 100], "p90": [9000, 300], "p95": [12000, 450], "p99": [90000, 900],
    })
    fig = figures.reasoning_distribution(df)
    band = _trace(fig, "p50 – p90")
    assert list(band.y) == ["chat · tier 1", "code · tier 3"]
    assert list(band.base) == [100.0, 4000.0]
    assert list(band.x) == [200.0, 5000.0]  # bar lengths: p90 − p50
    assert list(_trace(fig, "median").x) == [100.0, 4000.0]
    assert list(_trace(fig, "p95 (runaway threshold)").x) == [450.0, 12000.0]
    assert list(_trace(fig, "0 – p99").x) == [0.0, 900.0, None, 0.0, 90000.0, None]
    # The long tail of one class does not set the axis: it stops a little past the largest p95.
    assert fig.layout.xaxis.range[1] == pytest.approx(12000 * 1.35)


def test_latency_by_tier_has_p50_and_p95_for_both_measures() -> None:
    df = pd.DataFrame({"tier": [3, 1], "duration_p50": [9000, 800], "duration_p95": [20000, 1500],
                       "ttft_p50": [3000, 200], "ttft_p95": [7000, 400]})
    fig = figures.latency_by_tier(df)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 4
    assert list(bars[0].x) == ["tier 1", "tier 3"]
    assert list(bars[1].y) == [1.5, 20.0]  # latency p95, in seconds
    assert list(bars[3].y) == [0.4, 7.0]  # ttft p95


def test_escalation_rate_divides_and_survives_zero_requests() -> None:
    df = pd.DataFrame({"task_type": ["a", "b", "c"], "requests": [10, 4, 0], "escalated": [1, 2, 0]})
    fig = figures.escalation_rate(df)
    assert dict(zip(fig.data[0].y, fig.data[0].x, strict=True)) == {"a": 0.1, "b": 0.5, "c": 0.0}


@pytest.mark.parametrize(
    ("points", "frontier"),
    [
        ([(1, 0.5), (2, 0.4), (3, 0.9), (3, 0.7), (5, 0.9)], [(1, 0.5), (3, 0.9)]),
        ([(4, 0.1)], [(4, 0.1)]),
        ([], []),
        ([(2, 0.8), (1, 0.8)], [(1, 0.8)]),
    ],
)
def test_pareto_frontier(points: list, frontier: list) -> None:
    assert figures.pareto_frontier(points) == frontier


def test_quality_frontier_draws_points_and_frontier_per_task_type() -> None:
    df = pd.DataFrame({
        "task_type": ["code", "code", "code", "chat"],
        "budget": ["1k", "4k", "16k", "1k"],
        "reasoning_tokens": [800, 3000, 12000, 200],
        "quality": [0.6, 0.85, 0.84, None],
        "requests": [10, 20, 5, 3],
    })
    fig = figures.quality_frontier(df)
    points = _trace(fig, "code")
    assert list(points.x) == [800.0, 3000.0, 12000.0]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 1 and list(lines[0].x) == [800.0, 3000.0]  # 16k is dominated
    assert "chat" not in [t.name for t in fig.data]  # no quality, no point
    assert list(fig.layout.yaxis.range) == pytest.approx([0.52, 0.89])  # zoomed to the points
    assert "No quality" in figures.quality_frontier(df.iloc[3:]).layout.annotations[0].text


def test_budget_vs_used_boxes_calls_per_budget_and_marks_the_budget() -> None:
    df = pd.DataFrame({"thinking_budget": [4000, 4000, 4000, 1024, 1024],
                       "reasoning_tokens": [1000, 3000, 5000, 900, 100]})
    fig = figures.budget_vs_used(df)
    boxes = [t for t in fig.data if t.type == "box"]
    assert [b.name for b in boxes] == ["1,024", "4,000"]
    assert list(boxes[1].y) == [1000.0, 3000.0, 5000.0]
    assert "33% over budget" in boxes[1].hovertemplate  # 5,000 of 4,000
    marker = _trace(fig, "requested budget")
    assert list(marker.x) == ["1,024", "4,000"] and list(marker.y) == [1024, 4000]


def test_span_waterfall_positions_bars_and_colours_errors() -> None:
    df = pd.DataFrame({
        "span_id": ["b", "a", "c"], "name": ["llm call", "agent", "tool"], "kind": ["llm", "agent", "tool"],
        "status": ["ok", "ok", "error"], "offset_ms": [10.0, 0.0, 500.0], "duration_ms": [400.0, 1000.0, 50.0],
        "depth": [1, 0, 1], "cost_total": [0.01, 0, 0], "reasoning_tokens": [300, 0, 0],
    })
    fig = figures.span_waterfall(df)
    bars = fig.data[0]
    assert list(bars.base) == [0.0, 10.0, 500.0]
    assert list(bars.x) == [1000.0, 400.0, 50.0]
    assert bars.y[1].startswith("· llm call")
    assert bars.marker.color[2] == figures.ERROR_COLOR
    assert bars.marker.color[1] == figures.KIND_COLORS["llm"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert "error" in [t.name for t in fig.data]


def test_budget_burn_draws_spent_forecast_band_and_budget() -> None:
    month_start = datetime(2026, 3, 1, tzinfo=UTC)
    month_end = datetime(2026, 4, 1, tzinfo=UTC)
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)
    daily = pd.DataFrame({"day": [date(2026, 3, d) for d in range(1, 12)], "cost": [10.0] * 10 + [5.0]})
    forecast = forecast_month_end(105.0, [9.0, 11.0] * 5, days_remaining=20.5)
    fig = figures.budget_burn(daily, month_start=month_start, month_end=month_end, now=now, budget=500.0,
                              forecast=forecast)
    spent = _trace(fig, "Spent")
    assert spent.y[0] == 0 and spent.y[-1] == pytest.approx(105.0)
    assert spent.x[-1] == now
    forecast_line = _trace(fig, "Forecast")
    assert forecast_line.y[0] == pytest.approx(105.0)
    assert forecast_line.y[-1] == pytest.approx(forecast.expected)
    band = _trace(fig, "90% band")
    assert band.fill == "tonexty" and band.y[-1] == pytest.approx(forecast.high)
    budget = _trace(fig, "Budget $500.00")
    assert list(budget.y) == [500.0, 500.0]


def test_empty_inputs_give_a_message_not_an_error() -> None:
    empty = pd.DataFrame()
    for build in (figures.spend_over_time, figures.spend_by, figures.reasoning_distribution,
                  figures.latency_by_tier, figures.escalation_rate, figures.budget_vs_used,
                  figures.span_waterfall, figures.top_users, figures.reasoning_share_by, figures.quality_frontier):
        fig = build(empty)
        assert fig.layout.annotations, build.__name__
        json.loads(fig.to_json())


def test_budget_burn_scales_to_the_spend_when_the_budget_is_far_above() -> None:
    month_start = datetime(2026, 3, 1, tzinfo=UTC)
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)
    daily = pd.DataFrame({"day": [date(2026, 3, d) for d in range(1, 12)], "cost": [1.0] * 11})
    forecast = forecast_month_end(11.0, [1.0] * 10, days_remaining=20.5)
    fig = figures.budget_burn(daily, month_start=month_start, month_end=datetime(2026, 4, 1, tzinfo=UTC),
                              now=now, budget=10_000.0, forecast=forecast)
    assert not [t for t in fig.data if str(t.name).startswith("Budget")]
    assert fig.layout.yaxis.range[1] == pytest.approx(forecast.high * 1.2)
    assert "budget $10,000.00 is far above this scale" in fig.layout.annotations[0].text
