"""Monthly budgets: project spend per calendar month against a cap (pure).

Critical when month-to-date spend reaches the cap; a warning earlier when the
month-end forecast (:func:`dashboards.forecast.forecast_month_end`, the same forecast
the Finance page draws) reaches it, or when spend passes ``warn_at`` × cap if set. The
key is the month, so one month is one event that may escalate from warning to critical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.findings import CRITICAL, WARNING, Finding
from dashboards.forecast import forecast_month_end


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


def evaluate(month_to_date: float, history: Sequence[float], cap: float, now: datetime,
             params: Mapping[str, Any], *, today_so_far: float = 0.0) -> Finding | None:
    """The finding for this month, or None.

    ``history``: spend of the most recent complete days, oldest first (as the forecast
    wants); ``today_so_far``: spend today.
    """
    now = now.astimezone(UTC)
    month = month_start(now).strftime("%Y-%m")
    end = next_month(now)
    days_remaining = (end - now).total_seconds() / 86400
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight).total_seconds() / 86400
    forecast = forecast_month_end(month_to_date, list(history), days_remaining, today_so_far=today_so_far,
                                  today_elapsed=elapsed)
    evidence: dict[str, Any] = {
        "month": month, "month_to_date_usd": round(month_to_date, 6), "cap_usd": cap,
        "forecast_usd": round(forecast.expected, 6), "forecast_low_usd": round(forecast.low, 6),
        "forecast_high_usd": round(forecast.high, 6), "forecast_method": forecast.method,
        "share": round(month_to_date / cap, 4) if cap else None,
    }
    if month_to_date >= cap:
        return Finding(key=month, severity=CRITICAL, value=month_to_date, threshold=cap, evidence=evidence,
                       title=f"Budget exceeded: ${month_to_date:,.2f} of ${cap:,.2f} spent in {month}")
    warn_at = params.get("warn_at")
    if warn_at is not None and month_to_date >= float(warn_at) * cap:
        return Finding(key=month, severity=WARNING, value=month_to_date, threshold=float(warn_at) * cap,
                       evidence=evidence,
                       title=f"Budget {month_to_date / cap:.0%} used: ${month_to_date:,.2f} of ${cap:,.2f} in {month}")
    if params.get("forecast", True) and forecast.expected >= cap:
        return Finding(key=month, severity=WARNING, value=forecast.expected, threshold=cap, evidence=evidence,
                       title=f"Budget forecast: ${forecast.expected:,.2f} by month end, over the "
                             f"${cap:,.2f} cap ({month})")
    return None
