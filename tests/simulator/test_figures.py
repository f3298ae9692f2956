"""The cost–quality figure is built from a result dict alone (pure)."""

from __future__ import annotations

import pytest

from simulator.figures import cost_quality_figure


def sweep_result() -> dict:
    points = [
        {"value": 0.0, "cost_usd": 9.0, "quality": 0.9, "strong_share": 1.0},
        {"value": 0.5, "cost_usd": 5.0, "quality": 0.85, "strong_share": 0.5},
        {"value": 0.8, "cost_usd": 6.0, "quality": 0.8, "strong_share": 0.2},
        {"value": 1.0, "cost_usd": None, "quality": None, "strong_share": 0.0},
    ]
    return {
        "cost_usd": 5.0, "quality": 0.85, "ci95": {"cost_usd": [4.5, 5.6], "quality": [0.84, 0.86]},
        "actual_cost_usd": 7.0, "actual_quality": 0.82,
        "sweep": {"parameter": "threshold", "points": points, "pareto": [1, 0],
                  "weak": {"cost_usd": 1.0, "quality": 0.6}, "strong": {"cost_usd": 9.0, "quality": 0.9}},
    }


def test_the_figure_shows_actual_simulated_curve_and_frontier() -> None:
    fig = cost_quality_figure(sweep_result())
    by_name = {trace.name: trace for trace in fig.data}
    assert set(by_name) == {"sweep of threshold", "Pareto frontier", "all weak", "all strong", "actual",
                            "simulated policy"}
    assert list(by_name["sweep of threshold"].x) == [9.0, 5.0, 6.0]  # the point without a number is left out
    assert list(by_name["Pareto frontier"].x) == [5.0, 9.0] and list(by_name["Pareto frontier"].y) == [0.85, 0.9]
    simulated = by_name["simulated policy"]
    assert simulated.error_x.array[0] == pytest.approx(0.6) and simulated.error_x.arrayminus[0] == pytest.approx(0.5)
    assert by_name["actual"].x == (7.0,)
    assert fig.layout.xaxis.tickprefix == "$"


def test_an_unknown_result_says_so() -> None:
    fig = cost_quality_figure({"cost_usd": None, "quality": None, "actual_cost_usd": None, "actual_quality": None})
    assert not fig.data and "Nothing to plot" in fig.layout.annotations[0].text
    only_actual = cost_quality_figure({"cost_usd": None, "quality": None, "actual_cost_usd": 3.0,
                                       "actual_quality": 0.7})
    assert [t.name for t in only_actual.data] == ["actual"]
