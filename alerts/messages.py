"""The content of a notification, independent of the channel it goes to (pure).

:func:`build_message` turns one or more alert events (plain dicts) into a message dict
that is frozen into the :class:`alerts.models.Notification` when it is created, so every
retry sends the same thing; :mod:`alerts.channels` renders it for Slack or a webhook.
A burst — several events of one rule within the rule's grouping window — is one
message with a count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alerts.findings import SEVERITY_RANK, WARNING

REASONS = ("firing", "escalated", "reminder", "resolved", "test")
MAX_LISTED = 10


def build_message(*, reason: str, project: str, rule: Mapping[str, Any], events: Sequence[Mapping[str, Any]],
                  base_url: str, created_at: str) -> dict[str, Any]:
    """A notification about ``events`` (each: id, title, severity, state, value, threshold,
    count, new_occurrences, first_seen, last_seen, evidence)."""
    if reason not in REASONS:
        raise ValueError(f"unknown notification reason {reason!r}")
    if not events:
        raise ValueError("a notification needs at least one event")
    severity = max((str(e.get("severity", WARNING)) for e in events), key=lambda s: SEVERITY_RANK.get(s, 0))
    occurrences = sum(int(e.get("new_occurrences") or e.get("count") or 1) for e in events)
    history_url = f"{base_url}/alerts/history/?project={project}&rule={rule.get('id', '')}"
    if len(events) == 1:
        event = events[0]
        title = str(event["title"])
        if reason == "resolved":
            title = "Resolved: " + title
        elif reason == "reminder" and occurrences > 1:
            title = f"{title} (×{occurrences} since the last notice)"
    else:
        noun = "resolved alerts" if reason == "resolved" else "alerts"
        title = f"{len(events)} {noun} from rule “{rule.get('name', '')}” ({occurrences} occurrences)"
    listed = [dict(e) for e in events[:MAX_LISTED]]
    text = f"[{project}] {title}"
    first_trace = next((e.get("evidence", {}).get("trace_url") for e in events
                        if e.get("evidence", {}).get("trace_url")), "")
    if first_trace:
        text += f" — {first_trace}"
    return {
        "reason": reason, "project": project, "rule": dict(rule), "severity": severity, "title": title,
        "text": text, "count": len(events), "occurrences": occurrences, "events": listed,
        "more": max(0, len(events) - MAX_LISTED), "history_url": history_url, "created_at": created_at,
    }


def sample_message(*, project: str, channel_name: str, base_url: str, created_at: str) -> dict[str, Any]:
    """What the "send test" action sends: a sample runaway event, clearly labelled as a test."""
    event = {
        "id": 0, "title": "Test notification from Thinkmeter: a runaway trace would look like this",
        "severity": WARNING, "state": "firing", "value": 48210.0, "threshold": 24000.0, "count": 1,
        "new_occurrences": 1, "first_seen": created_at, "last_seen": created_at,
        "evidence": {"trace_url": f"{base_url}/traces/", "metric": "reasoning_tokens", "value": 48210.0,
                     "threshold": 24000.0, "p95": 12000.0, "samples": 250, "task_class": "example / tier 3"},
    }
    rule = {"id": 0, "name": f"test of channel {channel_name}", "kind": "test"}
    return build_message(reason="test", project=project, rule=rule, events=[event], base_url=base_url,
                         created_at=created_at)
