"""Schemathesis against ``/api/schema/``: every operation, fuzzed in-process through the WSGI app.

Two callers, one test each: project A's key (every scope; random ``?project=`` values
included, which must answer 404, never 500) and A's admin with a session (CSRF token
sent; ``?project=`` pinned to A so the other parameters reach the queries). Both run on
real parts: the Django WSGI application, the test database and the embedded ClickHouse
store holding a few spans of both projects.

Checks: no 5xx, status codes, content types and headers as documented, and bodies that
validate against the documented schema. Each operation gets ``FUZZ_EXAMPLES`` examples
(environment ``THINKMETER_FUZZ_EXAMPLES``, default 25), derandomized so CI is
repeatable; raise it locally to search longer.

Left out: ``POST /api/v1/channels/{id}/test`` sends a real HTTP request to the channel's
URL, and a fuzzed channel may point anywhere on the internet; the isolation matrix and
the alert tests cover it against 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hardening.world import World, build_world

pytestmark = pytest.mark.django_db(transaction=True)  # real WSGI requests close the connection at their end

FUZZ_EXAMPLES = int(os.environ.get("THINKMETER_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
SENDS_OUTSIDE = ("POST", "/api/v1/channels/{id}/test")
calls: Counter[str] = Counter()  # requests made per operation in the current run
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck), database=None)


@dataclass
class Caller:
    """How one kind of caller authenticates, and A's own objects (ids) to aim path parameters at."""

    headers: dict[str, str]
    cookies: dict[str, str]
    own: dict[str, Any]
    pin_project: str | None = None


def a_objects(world: World) -> dict[str, Any]:
    """One object of each kind in project A, so operations on an id reach the view with a real object."""
    from alerts.models import AlertEvent, AlertRule, Channel
    from ingest.models import ClassificationRule, ModelPrice, PriceRate
    from simulator.models import SimulationRun

    a = world.a
    price = ModelPrice.objects.create(project=a, model="a-model", provider="openai", pattern="^a-model$")
    PriceRate.objects.create(model_price=price, effective_from="2024-01-01", input="1", output="2")
    channel = Channel.objects.create(project=a, kind=Channel.Kind.WEBHOOK, name="a", url="http://127.0.0.1:9/a")
    rule = AlertRule.objects.create(project=a, name="a", kind=AlertRule.Kind.BUDGET, params={"cap_usd": 10.0})
    now = datetime.now(UTC)
    event = AlertEvent.objects.create(project=a, rule=rule, rule_name="a", kind=AlertRule.Kind.BUDGET,
                                      fingerprint="a", title="a", value=1.0, first_seen_at=now, last_seen_at=now)
    run = SimulationRun.objects.create(project=a, name="a", policy={"kind": "static", "tier": 1, "thinking_budget": 0})
    class_rule = ClassificationRule.objects.create(project=a, field="span_name", pattern="^a$", task_type="a")
    return {"/api/v1/alert-rules/": rule.pk, "/api/v1/channels/": channel.pk, "/api/v1/alerts/": event.pk,
            "/api/v1/simulations/": run.pk, "/api/v1/prices/": price.pk,
            "/api/v1/classification-rules/": class_rule.pk}


@pytest.fixture
def fuzz_world(ch: Any, project: Any, other_project: Any, django_user_model: Any, settings: Any) -> World:
    return build_world(project, other_project, django_user_model, settings)


def load(app: Any, headers: dict[str, str], cookies: dict[str, str]) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app, headers={
        **headers, **({"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {})})
    return schema.exclude(method=SENDS_OUTSIDE[0], path=SENDS_OUTSIDE[1])


@pytest.fixture
def key_caller(fuzz_world: World) -> Caller:
    return Caller(headers={"Authorization": f"Bearer {fuzz_world.key_a}"}, cookies={}, own=a_objects(fuzz_world))


@pytest.fixture
def session_caller(fuzz_world: World) -> Caller:
    """A's admin, signed in through the real login form; the CSRF token goes with every request."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    token = client.get("/login/").cookies["csrftoken"].value
    response = client.post("/login/", {"username": "alice_a", "password": "pw-a-123456",
                                       "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.content[:300]
    cookies = {name: client.cookies[name].value for name in ("sessionid", "csrftoken")}
    return Caller(headers={"X-CSRFToken": cookies["csrftoken"]}, cookies=cookies, own=a_objects(fuzz_world),
                  pin_project=fuzz_world.a.slug)


def settle(case: Any) -> None:
    """A simulation POST queues a job on the in-process worker: let it finish before the next request."""
    if case.method.upper() == "POST" and case.path == "/api/v1/simulations":
        from thinkmeter import background

        background.drain()


def own_object(caller: Caller, path: str) -> dict[str, Any] | None:
    """Path parameters naming A's own object for an operation on ``/<collection>/{id}...``."""
    for prefix, pk in caller.own.items():
        if path.startswith(prefix + "{id}"):
            return {"id": pk}
    return None


def fuzz(app: Any, caller: Caller) -> tuple[list[str], dict[str, set[int]]]:
    """Every operation with valid (positive) and invalid (negative) inputs, and operations on an id once
    more aimed at A's own object; returns the failures found and the statuses each operation answered.

    (Schemathesis' own pytest plugin does not run on pytest 9 yet, so each operation's
    Hypothesis strategy is driven here directly.)
    """
    schema = load(app, caller.headers, caller.cookies)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    calls.clear()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 34, [op.label for op in operations]
    for operation in operations:
        query = ({"project": caller.pin_project}
                 if caller.pin_project and any(p.name == "project" for p in operation.query) else None)
        rounds: list[tuple[str, Any]] = [
            ("positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE, query=query)),
            ("negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, query=query)),
        ]
        path_parameters = own_object(caller, operation.path)
        if path_parameters:
            rounds.append(("own object", operation.as_strategy(path_parameters=path_parameters, query=query)))
        for label, strategy in rounds:
            try:
                fuzz_round(operation.label, strategy, caller, failures, statuses)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: B036 -- schemathesis' FailureGroup: collect all, report at the end
                failures.append(f"{operation.label} [{label}]: {str(exc)[:1500]}")
    return failures, statuses


def fuzz_round(label: str, strategy: Any, caller: Caller, failures: list[str], statuses: dict[str, set[int]]) -> None:
    """One Hypothesis run of one operation's strategy: call, validate, record the status."""

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        try:
            response = case.call_and_validate(headers=caller.headers, cookies=caller.cookies, checks=CHECKS)
            statuses.setdefault(label, set()).add(response.status_code)
            calls[label] += 1
            sent_key = any(k.lower() == "authorization" for k in (case.headers or {}))
            if response.status_code == 401 and not sent_key:  # only a generated (bad) key may be refused
                failures.append(f"{label}: 401 without a generated Authorization header")
        finally:
            settle(case)

    run()


def reached(statuses: dict[str, set[int]]) -> set[str]:
    """Operations that answered at least one 2xx: the fuzzer got past validation into the view."""
    return {label for label, seen in statuses.items() if any(200 <= s < 300 for s in seen)}


def check_run(caller: Caller) -> None:
    app = get_wsgi_application()  # (re)configures logging: quieten django.request after it
    quiet = logging.getLogger("django.request")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # thousands of expected 4xx; a 5xx still logs (and fails the check)
    try:
        failures, statuses = fuzz(app, caller)
    finally:
        quiet.setLevel(level)
    assert not failures, "\n\n".join(failures)
    print(f"schemathesis: {len(statuses)} operations ({len(reached(statuses))} answered a 2xx), "
          f"{sum(calls.values())} requests; operations per status "
          f"{dict(sorted(Counter(code for seen in statuses.values() for code in seen).items()))}")
    assert len(reached(statuses)) >= 25, sorted(set(statuses) - reached(statuses))


def test_api_with_a_project_key(key_caller: Caller) -> None:
    check_run(key_caller)


def test_api_with_a_session(session_caller: Caller) -> None:
    check_run(session_caller)
