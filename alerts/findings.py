"""What an evaluator reports: a :class:`Finding` (pure: no Django, no ClickHouse).

Evaluators (:mod:`alerts.runaway`, :mod:`alerts.quota`, :mod:`alerts.budget`,
:mod:`alerts.spike`) return findings; :mod:`alerts.services` turns them into alert
events. ``key`` identifies the condition within its rule (a trace, a user and day, a
month): the event's fingerprint is ``<kind>:<rule id>:<key>``, so the same condition
seen again updates one event instead of opening another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WARNING = "warning"
CRITICAL = "critical"
SEVERITY_RANK = {WARNING: 1, CRITICAL: 2}


@dataclass(frozen=True)
class Finding:
    key: str
    severity: str
    title: str
    value: float
    threshold: float | None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what a task message carries); cheaper than dataclasses.asdict."""
        return {"key": self.key, "severity": self.severity, "title": self.title, "value": self.value,
                "threshold": self.threshold, "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(key=str(data["key"]), severity=str(data["severity"]), title=str(data["title"]),
                   value=float(data["value"]),
                   threshold=None if data.get("threshold") is None else float(data["threshold"]),
                   evidence=dict(data.get("evidence") or {}))


def fmt_number(value: float) -> str:
    """12,345 for counts; 3 significant decimals for small values."""
    if value == int(value) and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def fmt_metric(metric: str, value: float) -> str:
    if metric == "cost":
        return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
    return f"{fmt_number(value)} reasoning tokens"
