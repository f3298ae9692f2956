"""Helpers of the alert tests: sending LLM spans through the real ingest path, making rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.test import Client

from tests.ingest.otlp_builders import llm_span, new_span_id, new_trace_id, post_spans

TASK = {"thinkmeter.task_type": "summarize", "thinkmeter.tier": 2}


def call(reasoning: int, *, trace_id: str | None = None, start: datetime | None = None, user: str = "",
         session: str = "", task: dict[str, Any] | None = None, model: str = "o3-mini") -> dict[str, Any]:
    """One LLM call span with ``reasoning`` reasoning tokens (output = reasoning + 100)."""
    attributes = dict(task if task is not None else TASK)
    if user:
        attributes["user.id"] = user
    if session:
        attributes["session.id"] = session
    return llm_span(model, input_tokens=500, output_tokens=reasoning + 100, reasoning_tokens=reasoning,
                    start=start, attributes=attributes, trace_id=trace_id or new_trace_id(), span_id=new_span_id())


def send(key: str, spans: list[dict[str, Any]]) -> None:
    """POST the spans to /v1/traces (asserts 200) and wait until the writer's hooks ran."""
    from alerts.runtime import runtime

    post_spans(Client(), key, spans)
    runtime.drain()


def baseline(key: str, count: int = 60, low: int = 1000, step: int = 10, **kw: Any) -> list[int]:
    """``count`` calls of the summarize / tier 2 class with reasoning tokens low, low+step, ..."""
    values = [low + step * i for i in range(count)]
    send(key, [call(v, **kw) for v in values])
    return values


def make_rule(project: Any, kind: str = "runaway", *, channels: list[Any] | None = None, **params: Any) -> Any:
    from alerts.models import AlertRule
    from alerts.params import parse_filters, parse_params

    filters = parse_filters(params.pop("filters", None))
    cooldown = params.pop("cooldown_minutes", 60)
    group = params.pop("group_seconds", 60)
    rule = AlertRule.objects.create(project=project, name=f"{kind} rule", kind=kind,
                                    params=parse_params(kind, params), filters=filters,
                                    cooldown_minutes=cooldown, group_seconds=group)
    if channels:
        rule.channels.set(channels)
    return rule


def wait_background(timeout: float = 20.0) -> None:
    """Let the runaway outbox and the in-process task worker finish what was queued."""
    from alerts.runtime import runtime
    from thinkmeter import background

    assert runtime.drain(timeout), "the alert outbox did not drain"
    assert background.drain(timeout), "the in-process task worker did not drain"
