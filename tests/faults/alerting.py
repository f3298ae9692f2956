"""The alert scenario the delivery fault tests share: a runaway rule, its Slack channel, runaway calls.

:func:`arm_runaway_rule` sends a task class's history through the real ``/v1/traces``,
then creates a Slack channel pointing at the test's receiver and a runaway rule (no
grouping: every runaway trace is its own alert and its own delivery) and loads the
rule's thresholds. :func:`runaway_calls` makes calls far above them, one trace each.
:func:`answered_ok` counts, per idempotency key, the requests the receiver answered 2xx:
a delivery that reached the receiver exactly once has exactly one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.alerts.helpers import baseline, call, make_rule
from tests.alerts.receiver import Receiver

HISTORY = 60  # calls of the class before the rule judges (its min_samples is 50)


def arm_runaway_rule(project: Any, project_key: str, receiver_url: str) -> float:
    """History sent, channel and rule created, thresholds loaded; returns the class's p95."""
    from alerts.models import Channel
    from alerts.runtime import runtime

    values = baseline(project_key, HISTORY)
    channel = Channel.objects.create(project=project, kind="slack", name="#alerts",
                                     url=receiver_url + "/services/T000/B000/XXXX")
    make_rule(project, "runaway", channels=[channel], group_seconds=0)
    snapshot = runtime.refresh(project.pk, stats_max_age=0)
    assert snapshot.rules, f"the runaway rule was not loaded: {snapshot.error}"
    return float(sorted(values)[int(0.95 * (len(values) - 1))])


def runaway_calls(p95: float, count: int, trace_id: str | None = None) -> list[dict[str, Any]]:
    """``count`` calls at 3 × p95 reasoning tokens (the rule fires above 2 ×), each in a trace of its own
    unless ``trace_id`` is given (then they are occurrences of one alert)."""
    return [call(int(3 * p95) + i, trace_id=trace_id) for i in range(count)]


def answered_ok(receiver: Receiver) -> Counter[str]:
    """Per idempotency key, how many requests the receiver answered with a 2xx status."""
    return Counter(r.headers.get("idempotency-key", "") for r in receiver.requests if 200 <= r.answered < 300)
