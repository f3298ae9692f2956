"""Helpers for the analytics API tests: priced test models, known LLM calls sent through
``POST /v1/traces``, API clients, people with roles, and costs computed by hand.

Import the fixtures by name into a test module to use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from tests.dashboards.pages_support import person
from tests.ingest.otlp_builders import llm_span, new_span_id, new_trace_id, post_spans, span_dict, start_ns_of

# USD per million tokens: input, cache read, cache write, output, reasoning
RATES: dict[str, tuple[str, str, str, str, str]] = {
    "tm-reasoner": ("2.00", "0.50", "2.50", "8.00", "10.00"),
    "tm-fast": ("1.00", "0.25", "1.25", "4.00", "4.00"),
}
NANO = Decimal("0.000000001")


def cost_parts(model: str, input_tokens: int, output_tokens: int, reasoning: int = 0, cache_read: int = 0,
               cache_write: int = 0) -> dict[str, Decimal]:
    """The DESIGN.md §5 formula, by hand: input, cache, output (visible) and reasoning parts and the total."""
    rin, rread, rwrite, rout, rreason = (Decimal(r) / 1_000_000 for r in RATES[model])
    parts = {
        "input": ((input_tokens - cache_read - cache_write) * rin).quantize(NANO),
        "cache": (cache_read * rread).quantize(NANO) + (cache_write * rwrite).quantize(NANO),
        "output": ((output_tokens - reasoning) * rout).quantize(NANO),
        "reasoning": (reasoning * rreason).quantize(NANO),
    }
    parts["total"] = sum(parts.values(), Decimal(0))
    return parts


def money(value: Decimal) -> str:
    return format(value.quantize(NANO), "f")


def priced_catalog(project: Any, other_project: Any) -> Iterator[None]:
    """Project price overrides for the test models (exact, round rates), in both projects.

    Use as ``yield from`` in a fixture: the in-memory catalog is refreshed before and after.
    """
    from ingest import catalog
    from ingest.models import ModelPrice, PriceRate

    for proj in (project, other_project):
        for position, (model, rates) in enumerate(RATES.items()):
            entry = ModelPrice.objects.create(project=proj, model=model, provider="openai", pattern=f"^{model}$",
                                              tier=2, reasoning=True, position=position)
            PriceRate.objects.create(model_price=entry, effective_from="2020-01-01", input=rates[0],
                                     cache_read=rates[1], cache_write=rates[2], output=rates[3], reasoning=rates[4])
    catalog.invalidate()
    yield
    catalog.invalidate()


def base_time() -> datetime:
    """10:00 UTC five days ago: inside the default 30-day range, away from its edges."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=5) + timedelta(hours=10)


def call(model: str, start: datetime, *, task_type: str = "", tier: int | None = None, user: str = "",
         session: str = "", trace_id: str | None = None, parent_span_id: str = "", response_id: str = "",
         extra: dict[str, Any] | None = None, **usage: Any) -> dict[str, Any]:
    """One LLM call span with our attributes (those left empty are not sent)."""
    ours = {"thinkmeter.task_type": task_type, "thinkmeter.tier": tier, "user.id": user, "session.id": session,
            "gen_ai.response.id": response_id}
    attributes = {**(extra or {}), **{name: value for name, value in ours.items() if value not in ("", None)}}
    return llm_span(model, start=start, trace_id=trace_id or new_trace_id(), parent_span_id=parent_span_id,
                    attributes=attributes, **usage)


def root(start: datetime, trace_id: str, span_id: str, name: str = "handle_request",
         duration_ms: float = 5000.0, status: int = 0) -> dict[str, Any]:
    return span_dict(name, {"http.route": "/answer"}, trace_id=trace_id, span_id=span_id,
                     start_ns=start_ns_of(start), duration_ms=duration_ms, status=status)


def send(key: str, spans: list[dict[str, Any]], service: str = "svc-a", environment: str = "prod") -> None:
    post_spans(Client(), key, spans, {"service.name": service, "deployment.environment": environment})


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + secret)
    return client


def person_client(django_user_model: Any, username: str, project: Any | None = None, role: str | None = None,
                  superuser: bool = False) -> APIClient:
    """An API client logged in (session) as a new user with ``role`` in ``project``'s organization."""
    client = APIClient()
    client.force_login(person(django_user_model, username, project, role, superuser))
    return client


def issue_key(project: Any, *scopes: str) -> str:
    from thinkmeter.models import ApiKey

    _, secret = ApiKey.issue(project, tuple(scopes), name="scoped test key")
    return secret


def set_runaway(project_id: int, trace_id: str) -> None:
    """Flag a trace's LLM spans runaway, as the alert engine does after the fact."""
    from thinkmeter import clickhouse

    clickhouse.execute(
        "ALTER TABLE spans UPDATE runaway = 1 WHERE project_id IN {project_ids:Array(UInt32)} "
        "AND trace_id = {trace_id:String} AND has_usage",
        {"trace_id": trace_id}, tag="tests.runaway", projects=project_id, settings={"mutations_sync": 2},
    )


def add_score(project_id: int, trace_id: str, value: float, name: str = "quality",
              created_at: datetime | None = None) -> None:
    """A score row as the scores API stores it (trace-level: empty span id)."""
    from thinkmeter import clickhouse

    clickhouse.insert("scores", {
        "project_id": [project_id], "trace_id": [trace_id], "span_id": [""], "name": [name], "value": [value],
        "source": ["test"], "comment": [""], "created_at": [created_at or datetime.now(UTC)],
    }, tag="tests.scores", project=project_id)


__all__ = [
    "RATES", "add_score", "base_time", "call", "cost_parts", "issue_key", "key_client", "money",
    "new_span_id", "new_trace_id", "person_client", "priced_catalog", "root", "send", "set_runaway",
]
