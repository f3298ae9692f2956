"""Spikes: hourly spend or reasoning tokens against the same hour's baseline (pure).

The baseline of an hour is the same hour of day on each of the previous
``baseline_days`` days (a day before the project's first data is left out, a quiet day
counts as 0). The robust z-score is ``0.6745 × (x − median) / MAD``; when the MAD is 0
(a flat baseline) the mean absolute deviation × 1.2533 stands in for it, and when
that is 0 too any increase is infinitely unusual. A spike needs z ≥ ``z`` and the hour's
value ≥ ``min_value`` (so a jump from $0.01 to $0.05 is not news), and at least
``min_baseline`` baseline days.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.findings import CRITICAL, Finding, fmt_metric

MAD_TO_SIGMA = 0.6745
MEAN_AD_TO_SIGMA = 1.2533


@dataclass(frozen=True)
class Score:
    z: float
    median: float
    mad: float
    scale: float  # z = (x − median) / scale; 0 for a flat baseline


def robust_z(value: float, baseline: Sequence[float]) -> Score:
    if not baseline:
        raise ValueError("a baseline needs at least one value")
    median = statistics.median(baseline)
    mad = statistics.median([abs(v - median) for v in baseline])
    if mad > 0:
        scale = mad / MAD_TO_SIGMA
        return Score((value - median) / scale, median, mad, scale)
    mean_ad = sum(abs(v - median) for v in baseline) / len(baseline)
    if mean_ad > 0:
        scale = MEAN_AD_TO_SIGMA * mean_ad
        return Score((value - median) / scale, median, 0.0, scale)
    if value == median:
        return Score(0.0, median, 0.0, 0.0)
    return Score(math.inf if value > median else -math.inf, median, 0.0, 0.0)


def baseline_for(series: Mapping[datetime, float], hour: datetime, days: int,
                 first_seen: datetime | None) -> list[float]:
    """Values at ``hour`` − 1 day … − ``days`` days; missing hours are 0 once the project had data."""
    values = []
    for k in range(1, days + 1):
        moment = hour - timedelta(days=k)
        if first_seen is None or moment < first_seen.replace(minute=0, second=0, microsecond=0):
            break
        values.append(float(series.get(moment, 0.0)))
    return values


def evaluate(series: Mapping[datetime, float], hour: datetime, params: Mapping[str, Any],
             first_seen: datetime | None, *, partial: bool = False) -> Finding | None:
    """The spike finding for ``hour`` (an hour start in ``series``' time zone), or None.

    ``partial``: the hour is not over yet (its value can only grow, so exceeding is final).
    """
    metric = str(params["metric"])
    value = float(series.get(hour, 0.0))
    baseline = baseline_for(series, hour, int(params["baseline_days"]), first_seen)
    if len(baseline) < int(params["min_baseline"]) or value < float(params["min_value"]):
        return None
    score = robust_z(value, baseline)
    if score.z < float(params["z"]):
        return None
    z_text = "∞" if math.isinf(score.z) else f"{score.z:.1f}"
    noun = "Spend" if metric == "cost" else "Reasoning-token"
    title = (f"{noun} spike: {fmt_metric(metric, value)} in the hour from {hour:%Y-%m-%d %H:00} UTC"
             f"{' (so far)' if partial else ''} vs a baseline of {fmt_metric(metric, score.median)} (z = {z_text})")
    evidence = {
        "metric": metric, "hour": hour.isoformat(), "value": value, "baseline_median": score.median,
        "baseline_mad": score.mad, "baseline_days": len(baseline), "baseline": baseline,
        "z": None if math.isinf(score.z) else round(score.z, 3), "z_threshold": float(params["z"]),
        "min_value": float(params["min_value"]), "partial_hour": partial,
    }
    # the threshold: the value at which z reaches the rule's z (for a flat baseline: anything above it)
    threshold = score.median + float(params["z"]) * score.scale
    return Finding(key="series", severity=CRITICAL, title=title, value=value, threshold=threshold,
                   evidence=evidence)
