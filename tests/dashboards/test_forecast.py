"""The end-of-month forecast: the rate, the band and its edge cases."""

from __future__ import annotations

import math
import random

import pytest

from dashboards.forecast import forecast_month_end, t_quantile


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.95, 1, 6.314), (0.95, 2, 2.920), (0.95, 3, 2.353), (0.975, 4, 2.776), (0.95, 10, 1.812), (0.975, 27, 2.052)],
)
def test_t_quantile_matches_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, rel=2e-3)


def test_constant_spend_forecasts_exactly_with_no_band() -> None:
    f = forecast_month_end(100.0, [10.0] * 10, days_remaining=20)
    assert f.expected == pytest.approx(300.0)
    assert f.low == pytest.approx(300.0)
    assert f.high == pytest.approx(300.0)
    assert f.at(10) == pytest.approx((200.0, 200.0, 200.0))


def test_band_matches_the_prediction_interval_formula() -> None:
    history = [8.0, 12.0, 10.0, 9.0, 11.0]
    f = forecast_month_end(50.0, history, days_remaining=10, confidence=0.9)
    sd = math.sqrt(sum((v - 10) ** 2 for v in history) / 4)
    half = t_quantile(0.95, 4) * sd * math.sqrt(10 + 100 / 5)
    assert f.expected == pytest.approx(150.0)
    assert f.high - f.expected == pytest.approx(half)
    assert f.expected - f.low == pytest.approx(half)
    # The cone widens with the horizon and ends at the month-end band.
    widths = [f.at(r)[2] - f.at(r)[1] for r in (0, 2, 5, 10)]
    assert widths == sorted(widths) and widths[0] == 0
    assert f.at(10)[2] == pytest.approx(f.high)


def test_band_covers_the_truth_about_as_often_as_promised() -> None:
    rng = random.Random(7)
    hits = 0
    trials = 400
    for _ in range(trials):
        past = [max(rng.gauss(100, 20), 0) for _ in range(14)]
        future = [max(rng.gauss(100, 20), 0) for _ in range(16)]
        f = forecast_month_end(sum(past), past, days_remaining=16, confidence=0.9)
        hits += f.low <= sum(past) + sum(future) <= f.high
    assert 0.84 <= hits / trials <= 0.96


def test_low_end_never_below_month_to_date_and_more_history_narrows() -> None:
    wild = [0.0, 50.0, 0.0, 60.0]
    f = forecast_month_end(30.0, wild, days_remaining=25)
    assert f.low == 30.0
    rng = random.Random(1)
    short = [rng.gauss(10, 2) for _ in range(3)]
    long = short + [rng.gauss(10, 2) for _ in range(25)]
    assert (forecast_month_end(0, long, 20).high - forecast_month_end(0, long, 20).low) < (
        forecast_month_end(0, short, 20).high - forecast_month_end(0, short, 20).low
    )


def test_only_the_last_28_days_count() -> None:
    f = forecast_month_end(0.0, [1000.0] * 10 + [5.0] * 28, days_remaining=10)
    assert f.daily_mean == pytest.approx(5.0)
    assert f.days_observed == 28


def test_first_day_of_month_extrapolates_todays_rate() -> None:
    f = forecast_month_end(6.0, [], days_remaining=30.75, today_so_far=6.0, today_elapsed=0.25)
    assert f.daily_mean == pytest.approx(24.0)
    assert f.expected == pytest.approx(6.0 + 24.0 * 30.75)
    assert f.low == 6.0 and f.high == pytest.approx(6.0 + 2 * 24.0 * 30.75)
    assert "no complete day" in f.method
    assert f.at(30.75)[2] == pytest.approx(f.high)


def test_no_history_at_all_is_flat() -> None:
    f = forecast_month_end(0.0, [], days_remaining=12)
    assert (f.expected, f.low, f.high) == (0.0, 0.0, 0.0)
    assert f.share_of(100.0) == 0.0
    assert f.share_of(0.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"days_remaining": -1}, {"confidence": 1.0}, {"history": [-1.0, 2.0]}, {"month_to_date": -5.0}],
)
def test_bad_input_is_refused(kwargs: dict) -> None:
    args = {"month_to_date": 1.0, "history": [1.0, 2.0], "days_remaining": 3.0, **kwargs}
    confidence = args.pop("confidence", 0.9)
    with pytest.raises(ValueError):
        forecast_month_end(args["month_to_date"], args["history"], args["days_remaining"], confidence=confidence)
