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

import os
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

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = int(os.environ.get("THINKMETER_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
SENDS_OUTSIDE = ("POST", "/api/v1/channels/{id}/test")
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture
def fuzz_world(ch: Any, project: Any, other_project: Any, django_user_model: Any, settings: Any) -> World:
    return build_world(project, other_project, django_user_model, settings)


def load(world: World, headers: dict[str, str]) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), headers=headers)
    return schema.exclude(method=SENDS_OUTSIDE[0], path=SENDS_OUTSIDE[1])


@pytest.fixture
def key_schema(fuzz_world: World) -> Any:
    return load(fuzz_world, {"Authorization": f"Bearer {fuzz_world.key_a}"})


@pytest.fixture
def session_auth(fuzz_world: World) -> dict[str, str]:
    """Cookies and CSRF header of A's admin, logged in through the real login form."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value
    response = client.post("/login/", {"username": "alice_a", "password": "pw-a-123456",
                                       "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.content[:300]
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}; csrftoken={client.cookies['csrftoken'].value}",
            "X-CSRFToken": client.cookies["csrftoken"].value}


@pytest.fixture
def session_schema(fuzz_world: World, session_auth: dict[str, str]) -> Any:
    return load(fuzz_world, session_auth)


def settle(case: Any) -> None:
    """A simulation POST queues a job on the in-process worker: let it finish before the next request."""
    if case.method.upper() == "POST" and case.path == "/api/v1/simulations":
        from thinkmeter import background

        background.drain()


def fuzz(schema: Any, headers: dict[str, str], pin_project: str | None) -> list[str]:
    """Every operation, valid (positive) and invalid (negative) inputs; returns the failures found.

    (Schemathesis' own pytest plugin does not run on pytest 9 yet, so each operation's
    Hypothesis strategy is driven here directly.)
    """
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 34, [op.label for op in operations]
    for operation in operations:
        fixed = {"project": pin_project} if pin_project and any(p.name == "project" for p in operation.query) else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode, query=fixed))
            def run(case: Any) -> None:
                try:
                    case.call_and_validate(headers=headers, checks=CHECKS)
                finally:
                    settle(case)

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: B036 -- schemathesis' FailureGroup: collect all, report at the end
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    return failures


def test_api_with_a_project_key(key_schema: Any, fuzz_world: World) -> None:
    failures = fuzz(key_schema, {"Authorization": f"Bearer {fuzz_world.key_a}"}, pin_project=None)
    assert not failures, "\n\n".join(failures)


def test_api_with_a_session(session_schema: Any, fuzz_world: World, session_auth: dict[str, str]) -> None:
    failures = fuzz(session_schema, session_auth, pin_project=fuzz_world.a.slug)
    assert not failures, "\n\n".join(failures)
