"""Quotas: reasoning tokens or spend per user, per session or per API key and day (pure).

A subject at or above ``warn_at`` × limit (default 80 %) gives a warning; at or above
``fire_at`` × limit (default 100 %) a critical finding. The key is the subject and the
day, so the warning and the firing of one subject on one day are one event that
escalates, and the next day starts afresh.

Subjects are the raw values of the spans column (a user id, a session id, an API key's
id); a :class:`Subject` says how a finding names one (an API key by its name and
visible prefix, see :mod:`alerts.subjects`) and where it links to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from alerts.findings import CRITICAL, WARNING, Finding, fmt_metric

SUBJECT_LABEL = {"user": "User", "session": "Session", "api_key": "API key"}


@dataclass(frozen=True)
class Subject:
    """How findings name one subject: ``label`` in the title and evidence, a link, more evidence."""

    label: str
    url: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)


def level(used: float, limit: float, warn_at: float, fire_at: float) -> str | None:
    """``critical``, ``warning`` or None for ``used`` against ``limit``."""
    if used >= fire_at * limit:
        return CRITICAL
    if used >= warn_at * limit:
        return WARNING
    return None


def evaluate(usage: Mapping[str, float], params: Mapping[str, Any], day: date,
             subjects: Mapping[str, Subject] | None = None) -> list[Finding]:
    """Findings for every subject of ``usage`` ({subject: amount used on ``day``}) over its threshold.

    ``subjects`` names and links subjects (a subject missing from it is named by its raw value).
    """
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
        described = (subjects or {}).get(subject) or Subject(subject)
        share = used / limit
        verb = "over quota" if found == CRITICAL else "near quota"
        title = (f"{SUBJECT_LABEL.get(per, per)} {described.label} {verb}: {fmt_metric(metric, used)} of "
                 f"{fmt_metric(metric, limit)} on {day.isoformat()} ({share:.0%})")
        evidence: dict[str, Any] = {
            "subject_kind": per, "subject": described.label, "day": day.isoformat(), "metric": metric,
            "value": used, "limit": limit, "share": round(share, 4), "warn_at": warn_at, "fire_at": fire_at,
        }
        if described.label != subject:
            evidence["subject_id"] = subject
        if described.url:
            evidence["url"] = described.url
        evidence.update(described.evidence)
        threshold = (fire_at if found == CRITICAL else warn_at) * limit
        findings.append(Finding(key=f"{per}:{subject}:{day.isoformat()}", severity=found, title=title,
                                value=float(used), threshold=threshold, evidence=evidence))
    return findings
