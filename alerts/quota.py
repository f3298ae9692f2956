"""Quotas: reasoning tokens or spend per user or per session and day (pure).

A subject at or above ``warn_at`` × limit (default 80 %) gives a warning; at or above
``fire_at`` × limit (default 100 %) a critical finding. The key is the subject and the
day, so the warning and the firing of one subject on one day are one event that
escalates, and the next day starts afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from alerts.findings import CRITICAL, WARNING, Finding, fmt_metric

SUBJECT_LABEL = {"user": "user", "session": "session", "api_key": "API key"}


def level(used: float, limit: float, warn_at: float, fire_at: float) -> str | None:
    """``critical``, ``warning`` or None for ``used`` against ``limit``."""
    if used >= fire_at * limit:
        return CRITICAL
    if used >= warn_at * limit:
        return WARNING
    return None


def evaluate(usage: Mapping[str, float], params: Mapping[str, Any], day: date,
             links: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings for every subject of ``usage`` ({subject: amount used on ``day``}) over its threshold."""
    limit = float(params["limit"])
    warn_at, fire_at = float(params["warn_at"]), float(params["fire_at"])
    metric, per = str(params["metric"]), str(params["per"])
    findings = []
    for subject, used in sorted(usage.items()):
        if not subject:
            continue  # calls without a user or session id belong to no one's quota
        found = level(float(used), limit, warn_at, fire_at)
        if found is None:
            continue
        share = used / limit
        label = SUBJECT_LABEL.get(per, per)
        verb = "over quota" if found == CRITICAL else "near quota"
        title = (f"{label.capitalize()} {subject} {verb}: {fmt_metric(metric, used)} of "
                 f"{fmt_metric(metric, limit)} on {day.isoformat()} ({share:.0%})")
        evidence: dict[str, Any] = {
            "subject_kind": per, "subject": subject, "day": day.isoformat(), "metric": metric, "value": used,
            "limit": limit, "share": round(share, 4), "warn_at": warn_at, "fire_at": fire_at,
        }
        if links and subject in links:
            evidence["url"] = links[subject]
        threshold = (fire_at if found == CRITICAL else warn_at) * limit
        findings.append(Finding(key=f"{per}:{subject}:{day.isoformat()}", severity=found, title=title,
                                value=float(used), threshold=threshold, evidence=evidence))
    return findings
