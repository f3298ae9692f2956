"""End-of-month spend forecast with an uncertainty band (pure: no Django, no ClickHouse).

Method (documented here because finance will ask):

- The daily spend rate is estimated from the most recent complete days (up to 28, so a
  forecast on the 2nd of the month still has history from the month before). Today is
  left out of the rate because it is not over yet.
- Daily spends are treated as independent draws with mean ``m`` and standard deviation
  ``s``. The spend still to come over the ``R`` remaining days (a fraction counts, so the
  rest of today is ``1 - elapsed``) is forecast as ``m · R``.
- The band is the Student-t prediction interval for a sum of ``R`` future draws whose mean
  is itself estimated from ``n`` days: ``± t(conf, n−1) · s · sqrt(R + R²/n)``. The ``R``
  term is day-to-day noise, the ``R²/n`` term is the doubt about the rate itself, which is
  why the band is wide early in a month with little history and narrows as days pass.
- The month-end total is month-to-date plus the remaining spend; the low end never goes
  below what has already been spent.
- With fewer than two complete days there is no spread to measure: the forecast
  extrapolates the rate seen so far (today's partial spend scaled to a full day when that
  is all there is) and the band runs from the month-to-date spend to twice the expected
  remaining spend; ``method`` says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

MAX_HISTORY_DAYS = 28


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom.

    Exact for 1 and 2 degrees of freedom, a Cornish–Fisher expansion around the normal
    quantile otherwise (error below 0.5 % for df ≥ 3 at the usual confidence levels).
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be ≥ 1, got {df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    v = float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


@dataclass(frozen=True)
class Forecast:
    """A month-end spend forecast: ``expected`` within [``low``, ``high``] at ``confidence``."""

    month_to_date: float
    expected: float
    low: float
    high: float
    daily_mean: float
    daily_sd: float
    days_observed: int
    days_remaining: float
    confidence: float
    method: str

    def at(self, days_ahead: float) -> tuple[float, float, float]:
        """(expected, low, high) cumulative spend ``days_ahead`` days from now (for the chart's cone)."""
        r = min(max(days_ahead, 0.0), self.days_remaining)
        expected = self.month_to_date + self.daily_mean * r
        if self.days_remaining <= 0:
            return expected, expected, expected
        share = r / self.days_remaining
        if self.days_observed >= 2:
            half = _half_width(self.daily_sd, self.days_observed, r, self.confidence)
        else:
            half = (self.high - self.expected) * share
        return expected, max(self.month_to_date, expected - half), expected + half

    def share_of(self, budget: float) -> float | None:
        """Expected month-end spend as a fraction of ``budget`` (None without a budget)."""
        return self.expected / budget if budget > 0 else None


def _half_width(sd: float, n: int, remaining: float, confidence: float) -> float:
    t = t_quantile(0.5 + confidence / 2, n - 1)
    return t * sd * math.sqrt(remaining + remaining**2 / n)


def forecast_month_end(
    month_to_date: float,
    history: Sequence[float],
    days_remaining: float,
    *,
    today_so_far: float = 0.0,
    today_elapsed: float = 0.0,
    confidence: float = 0.9,
) -> Forecast:
    """Forecast the month's total spend.

    ``month_to_date``: spent so far this month, today included. ``history``: spend of the
    most recent complete days, oldest first (may reach into last month; only the last
    28 are used). ``days_remaining``: days left in the month from now, the rest of today
    included (e.g. 17.25). ``today_so_far`` / ``today_elapsed`` (0–1): today's spend and
    how much of today has passed, used only when there are no complete days.
    """
    if days_remaining < 0:
        raise ValueError(f"days_remaining must be ≥ 0, got {days_remaining}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if month_to_date < 0 or any(v < 0 for v in history):
        raise ValueError("spend cannot be negative")
    days = [float(v) for v in history][-MAX_HISTORY_DAYS:]
    n = len(days)
    if n >= 2:
        mean = sum(days) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in days) / (n - 1))
        expected = month_to_date + mean * days_remaining
        half = _half_width(sd, n, days_remaining, confidence)
        return Forecast(
            month_to_date=month_to_date, expected=expected, low=max(month_to_date, expected - half),
            high=expected + half, daily_mean=mean, daily_sd=sd, days_observed=n,
            days_remaining=days_remaining, confidence=confidence,
            method=f"mean of the last {n} complete days ± t·sd·√(R + R²/n)",
        )
    if n == 1:
        mean, method = days[0], "one complete day of history: rate extrapolated, band ×2"
    elif today_elapsed > 0:
        mean, method = today_so_far / max(today_elapsed, 1 / 24), "no complete day yet: today's rate extrapolated, band ×2"
    else:
        mean, method = 0.0, "no spend history"
    remaining = mean * days_remaining
    return Forecast(
        month_to_date=month_to_date, expected=month_to_date + remaining, low=month_to_date,
        high=month_to_date + 2 * remaining, daily_mean=mean, daily_sd=0.0, days_observed=n,
        days_remaining=days_remaining, confidence=confidence, method=method,
    )
