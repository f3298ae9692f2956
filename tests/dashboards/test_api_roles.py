"""Who may see what in the analytics API (issue 4, item 6), one denial per test.

Viewers and finance see aggregates; where a project hides per-user drill-down they get
403 for grouping by or filtering on user_id/session_id; traces and their spans (prompt
text included) need the engineer role; keys need the read scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.dashboards.api_support import call, issue_key, key_client, person_client, priced_catalog, send

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "finance", "engineer", "admin")
AGGREGATES = ("/api/v1/usage", "/api/v1/usage?group_by=task_type,tier&interval=day", "/api/v1/budgets")
USER_DRILLDOWN = ("/api/v1/usage?group_by=user_id", "/api/v1/usage?group_by=session_id",
                  "/api/v1/usage?group_by=task_type,user_id", "/api/v1/usage?user_id=alice",
                  "/api/v1/usage?session_id=s1", "/api/v1/usage?group_by=model&user_id=alice&format=csv")


@pytest.fixture
def priced(project: Any, other_project: Any) -> Iterator[None]:
    yield from priced_catalog(project, other_project)


@pytest.fixture
def trace_id(ch: ModuleType, priced: None, project: Any, project_key: str) -> str:
    """One stored call with captured prompt text, by user alice."""
    project.store_prompts = True
    project.save()
    span = call("tm-reasoner", datetime.now(UTC) - timedelta(hours=1), task_type="support", tier=2, user="alice",
                session="s1", input_tokens=100, output_tokens=50, reasoning_tokens=20,
                extra={"gen_ai.prompt.0.content": "secret question", "gen_ai.completion.0.content": "answer"})
    send(project_key, [span])
    return str(span["trace_id"])


def client_for(django_user_model: Any, project: Any, role: str) -> APIClient:
    return person_client(django_user_model, f"{role}-user", project, role)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_aggregates(trace_id: str, django_user_model: Any, project: Any, role: str) -> None:
    client = client_for(django_user_model, project, role)
    for url in AGGREGATES:
        response = client.get(url)
        assert response.status_code == 200, (role, url, response.content)
    assert client.get("/api/v1/usage").json()["rows"][0]["requests"] == 1


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_hidden_user_drilldown_is_403_for_viewer_and_finance(trace_id: str, django_user_model: Any, project: Any,
                                                            role: str) -> None:
    client = client_for(django_user_model, project, role)
    for url in USER_DRILLDOWN:  # allowed while the project does not hide it
        assert client.get(url).status_code == 200, url
    project.hide_user_drilldown = True
    project.save()
    for url in USER_DRILLDOWN:
        response = client.get(url)
        assert response.status_code == 403, (role, url)
        assert "drill-down" in response.json()["detail"]
    assert client.get("/api/v1/usage?group_by=task_type").status_code == 200


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_hidden_user_drilldown_stays_open_to_engineers(trace_id: str, django_user_model: Any, project: Any,
                                                       role: str, project_key: str) -> None:
    project.hide_user_drilldown = True
    project.save()
    client = client_for(django_user_model, project, role)
    for url in USER_DRILLDOWN:
        assert client.get(url).status_code == 200, (role, url)
    rows = client.get("/api/v1/usage?group_by=user_id").json()["rows"]
    assert [r["user_id"] for r in rows] == ["alice"]
    assert key_client(project_key).get("/api/v1/usage?group_by=user_id").status_code == 200


def test_hidden_drilldown_in_one_of_several_projects(trace_id: str, django_user_model: Any, project: Any,
                                                     other_project: Any) -> None:
    from thinkmeter.models import Membership

    other_project.hide_user_drilldown = True
    other_project.save()
    client = client_for(django_user_model, project, "viewer")
    Membership.objects.create(user=django_user_model.objects.get(username="viewer-user"),
                              organization=other_project.organization, role="viewer")
    assert client.get("/api/v1/usage?group_by=user_id").status_code == 403  # covers globex too
    assert client.get("/api/v1/usage?group_by=user_id&project=acme").status_code == 200


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_traces_are_403_for_viewer_and_finance(trace_id: str, django_user_model: Any, project: Any,
                                               role: str) -> None:
    client = client_for(django_user_model, project, role)
    for url in ("/api/v1/traces", f"/api/v1/traces/{trace_id}", "/api/v1/traces?project=acme"):
        response = client.get(url)
        assert response.status_code == 403, (role, url)
        assert "engineer" in response.json()["detail"]


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_engineers_see_traces_and_prompt_text(trace_id: str, django_user_model: Any, project: Any,
                                              role: str) -> None:
    client = client_for(django_user_model, project, role)
    listed = client.get("/api/v1/traces").json()["traces"]
    assert [t["trace_id"] for t in listed] == [trace_id]
    detail = client.get(f"/api/v1/traces/{trace_id}").json()
    assert detail["spans"][0]["prompt_text"] == "secret question"
    assert detail["spans"][0]["completion_text"] == "answer"


def test_superuser_and_read_keys_see_traces(trace_id: str, django_user_model: Any, project: Any) -> None:
    admin = person_client(django_user_model, "root", superuser=True)
    assert admin.get(f"/api/v1/traces/{trace_id}").json()["spans"][0]["prompt_text"] == "secret question"
    read_key = key_client(issue_key(project, "read"))
    assert read_key.get(f"/api/v1/traces/{trace_id}").json()["spans"][0]["prompt_text"] == "secret question"


def test_engineer_elsewhere_is_not_engineer_here(trace_id: str, django_user_model: Any, project: Any,
                                                 other_project: Any) -> None:
    from thinkmeter.models import Membership

    client = client_for(django_user_model, other_project, "engineer")
    Membership.objects.create(user=django_user_model.objects.get(username="engineer-user"),
                              organization=project.organization, role="viewer")
    assert client.get(f"/api/v1/traces/{trace_id}").status_code == 404  # only globex's traces are searched
    assert client.get("/api/v1/traces?project=acme").status_code == 403
    assert client.get("/api/v1/traces?project=globex").status_code == 200


def test_keys_without_read_scope_are_403(trace_id: str, project: Any) -> None:
    for scopes in (("ingest",), ("write",), ("ingest", "write")):
        client = key_client(issue_key(project, *scopes))
        for url in ("/api/v1/usage", "/api/v1/budgets", "/api/v1/traces", f"/api/v1/traces/{trace_id}"):
            response = client.get(url)
            assert response.status_code == 403, (scopes, url)
            assert "read" in response.json()["detail"]


def test_anonymous_and_non_members_see_nothing(trace_id: str, django_user_model: Any, project: Any) -> None:
    anonymous = APIClient()
    for url in ("/api/v1/usage", "/api/v1/budgets", "/api/v1/traces", f"/api/v1/traces/{trace_id}"):
        assert anonymous.get(url).status_code in (401, 403), url
    stranger = person_client(django_user_model, "stranger")
    assert stranger.get("/api/v1/usage?project=acme").status_code == 404
    assert stranger.get("/api/v1/usage").json()["rows"][0]["requests"] == 0
    assert stranger.get("/api/v1/traces").status_code == 403
