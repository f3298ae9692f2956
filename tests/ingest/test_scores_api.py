"""``POST/GET /api/v1/scores``: scores stored in ClickHouse per project, the latest wins,
bad input is refused with a clear 400, and keys only reach their own project.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.ingest.api_helpers import (  # noqa: F401  (autouse fixtures)
    fresh_caches,
    issue_key,
    key_client,
    person_client,
    shipped_catalog,
)
from tests.ingest.otlp_builders import new_span_id, new_trace_id
from thinkmeter.clickhouse import PROJECT_PARAM

pytestmark = pytest.mark.django_db


def test_post_then_get_scores_and_the_latest_wins(ch: ModuleType, project: Any, project_key: str) -> None:
    api = key_client(project_key)
    trace, span = new_trace_id(), new_span_id()
    created = api.post("/api/v1/scores", {"trace_id": trace, "name": "quality", "value": 0.25,
                                          "comment": "verifier failed", "source": "verifier"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["project"], body["trace_id"], body["span_id"], body["name"], body["value"]) == (
        "acme", trace, "", "quality", 0.25)
    assert body["created_at"].endswith("Z")
    assert api.post("/api/v1/scores", {"trace_id": trace.upper(), "span_id": span, "name": "latency_ms",
                                       "value": 1234.5}, format="json").status_code == 201
    assert api.post("/api/v1/scores", {"trace_id": trace, "value": 0.9, "comment": "re-checked"},
                    format="json").status_code == 201  # name defaults to quality; replaces 0.25

    rows = ch.execute(f"SELECT count() AS n FROM scores WHERE project_id IN {PROJECT_PARAM}",
                      tag="tests.scores.count", projects=project.pk)
    assert rows[0]["n"] == 3  # stored in ClickHouse, both quality scores until a merge
    read = api.get("/api/v1/scores", {"trace_id": trace})
    assert read.status_code == 200
    results = read.json()["results"]
    assert [(r["span_id"], r["name"], r["value"], r["comment"], r["source"]) for r in results] == [
        ("", "quality", 0.9, "re-checked", "api"),
        (span, "latency_ms", 1234.5, "", "api"),
    ]
    assert all(r["project"] == "acme" for r in results)
    assert api.get("/api/v1/scores", {"trace_id": new_trace_id()}).json()["results"] == []


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"trace_id": "xyz", "value": 0.5}, "trace_id", "32 hex digits"),
        ({"value": 0.5}, "trace_id", "required"),
        ({"trace_id": "a" * 32, "span_id": "123", "value": 0.5}, "span_id", "16 hex digits"),
        ({"trace_id": "a" * 32, "value": 1.5}, "value", "between 0 and 1"),
        ({"trace_id": "a" * 32, "value": -0.1, "name": "quality"}, "value", "between 0 and 1"),
        ({"trace_id": "a" * 32, "value": "good"}, "value", "valid number"),
        ({"trace_id": "a" * 32}, "value", "required"),
        ({"trace_id": "a" * 32, "value": 1, "name": "has space"}, "name", "letters, digits"),
    ],
)
def test_bad_scores_get_400(ch: ModuleType, project_key: str, payload: dict[str, Any], field: str,
                            message: str) -> None:
    response = key_client(project_key).post("/api/v1/scores", payload, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field]), response.json()


def test_other_names_take_any_finite_number(ch: ModuleType, project_key: str) -> None:
    response = key_client(project_key).post("/api/v1/scores", {"trace_id": "b" * 32, "name": "reward",
                                                                "value": -3.5}, format="json")
    assert response.status_code == 201 and response.json()["value"] == -3.5


def test_who_may_post_and_read_scores(
    ch: ModuleType, project: Any, project_key: str, other_project: Any, other_project_key: str,
) -> None:
    trace = new_trace_id()
    score = {"trace_id": trace, "value": 0.7}
    read_only = key_client(issue_key(project, "read"))
    refused = read_only.post("/api/v1/scores", score, format="json")
    assert refused.status_code == 403 and "scope" in refused.json()["detail"]
    ingest_only = key_client(issue_key(project, "ingest"))
    assert ingest_only.post("/api/v1/scores", score, format="json").status_code == 201
    assert ingest_only.get("/api/v1/scores", {"trace_id": trace}).status_code == 403
    assert read_only.get("/api/v1/scores", {"trace_id": trace}).json()["results"][0]["value"] == 0.7
    assert read_only.get("/api/v1/scores").status_code == 400  # trace_id is required

    # The same trace id in another project is another trace: neither sees the other's scores.
    other = key_client(other_project_key)
    assert other.get("/api/v1/scores", {"trace_id": trace}).json()["results"] == []
    assert other.post("/api/v1/scores", {"trace_id": trace, "value": 0.1}, format="json").status_code == 201
    assert [r["value"] for r in read_only.get("/api/v1/scores", {"trace_id": trace}).json()["results"]] == [0.7]
    assert other.get("/api/v1/scores", {"trace_id": trace, "project": "acme"}).status_code == 404

    viewer = person_client(project, "viewer")
    assert viewer.get("/api/v1/scores", {"trace_id": trace, "project": "acme"}).status_code == 200
    assert viewer.post("/api/v1/scores?project=acme", score, format="json").status_code == 403
    engineer = person_client(project, "engineer")
    posted = engineer.post("/api/v1/scores?project=acme", {**score, "value": 0.8}, format="json")
    assert posted.status_code == 201 and posted.json()["project"] == "acme"
    assert engineer.post("/api/v1/scores?project=globex", score, format="json").status_code == 404
