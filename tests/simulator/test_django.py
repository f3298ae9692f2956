"""The simulator's Django side on real parts: demo traffic through the real ingest path into chdb,
``manage.py simulate``, the loader, the API with its Celery job (the in-process worker), and the page.

Transactional DB access: the in-process servers and the task worker use their own connections.
"""

from __future__ import annotations

import json
import time
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from ingest import scores as score_store
from simulator import loader, services
from simulator.engine.requests import build_requests
from simulator.engine.run import REQUIRED_KEYS
from simulator.models import SimulationRun
from tests.dashboards.pages_support import person, send_demo_traffic
from thinkmeter import background
from thinkmeter.clickhouse import PROJECT_PARAM
from thinkmeter.models import ApiKey, Project, Role

pytestmark = pytest.mark.django_db(transaction=True)

SUPPORTED = """
kind: task_map
routes:
  classification: {tier: 1, thinking_budget: 0}
  extraction: {tier: 1, thinking_budget: 0}
  summarization: {tier: 1, thinking_budget: 4000}
  customer_support: {tier: 1, thinking_budget: 4000}
  code_generation: {tier: 2, thinking_budget: 10000}
  math_reasoning: {tier: 2, thinking_budget: 10000}
default: {tier: 1, thinking_budget: 4000}
"""


@pytest.fixture
def priced() -> Any:
    """The shipped price catalog (a transactional test elsewhere may have flushed it), fresh in memory."""
    from ingest import catalog_loader
    from ingest.catalog import invalidate
    from ingest.models import ModelPrice

    if not ModelPrice.objects.filter(project__isnull=True).exists():
        catalog_loader.load(catalog_loader.read())
    invalidate()
    yield
    invalidate()


def simulate_cli(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("simulate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_simulate_command_on_demo_traffic_sent_through_ingest(ch: ModuleType, priced: Any, tmp_path: Path) -> None:
    call_command("seed_demo", spans=3000, days=7, inline=True, stdout=StringIO(), stderr=StringIO())
    project = Project.objects.get(slug="demo")
    truth = ch.execute(
        f"SELECT count() AS calls, toFloat64(sum(cost_total)) AS cost, uniqExact(trace_id, request_id) AS requests "
        f"FROM spans WHERE project_id IN {PROJECT_PARAM} AND counted = 1", tag="tests.simulator", projects=[project.pk])[0]
    policy = tmp_path / "policy.yaml"
    policy.write_text(SUPPORTED)

    out, err = simulate_cli("--project", "demo", "--policy", str(policy), "--min-samples", "2")
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)  # exactly one JSON object
    assert isinstance(result, dict) and set(REQUIRED_KEYS) <= set(result)
    assert "simulate" in err and "100.0%" in err  # progress on stderr
    assert result["requests"] == truth["requests"]
    assert result["actual_cost_usd"] == pytest.approx(truth["cost"], abs=1e-6)
    assert result["cost_usd"] is not None, result["warnings"]
    assert result["cost_usd"] > 0 and 0 < result["quality"] <= 1 and 0 < result["actual_quality"] <= 1
    assert result["support"] == 1.0 and 0 < result["support_direct"] < 1
    assert result["ci95"]["cost_usd"][0] <= result["cost_usd"] <= result["ci95"]["cost_usd"][1]
    assert result["ci95"]["quality"][0] <= result["quality"] <= result["ci95"]["quality"][1]
    assert result["latency_p50_ms"] <= result["latency_p95_ms"]
    assert set(result["share_by_tier"]) == {"1", "2"}
    assert sum(result["share_by_tier"].values()) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(result["warnings"], list) and result["warnings"]  # e.g. several models ran at a tier
    assert set(result["tier_models"]) == {"1", "2", "3"} and all(result["tier_models"].values())
    saved = SimulationRun.objects.get(pk=result["run_id"])
    assert saved.source == "cli" and saved.status == "done" and saved.result["cost_usd"] == result["cost_usd"]

    # The project's tier models, when configured, decide the prices.
    project.tier_models = {"1": "gpt-4.1-mini", "2": "o3"}
    project.save()
    out, _ = simulate_cli("--project", "demo", "--policy", str(policy), "--min-samples", "2", "--no-save")
    repriced = json.loads(out)
    assert repriced["tier_models"]["1"] == "gpt-4.1-mini" and repriced["tier_models_source"]["1"] == "project"
    assert repriced["cost_usd"] != result["cost_usd"] and "run_id" not in repriced

    # A configuration some task types never ran: no invented number, a warning, a supported-only comparison.
    policy.write_text('{"kind": "static", "tier": 1, "thinking_budget": 0}')
    unsupported = json.loads(simulate_cli("--project", "demo", "--policy", str(policy), "--no-save",
                                          "--from", "2000-01-01", "--to", "2100-01-01")[0])
    assert unsupported["cost_usd"] is None and unsupported["quality"] is None and unsupported["support"] < 1
    # (exploration traffic may have tried it a few times: "observed only N times (fewer than 10)")
    assert any("no number is made up" in w and ("was never observed" in w or "was observed only" in w)
               for w in unsupported["warnings"]), unsupported["warnings"]
    assert unsupported["supported_only"]["requests"] < unsupported["requests"]

    # A sweep adds the curve, its Pareto frontier and AIQ.
    policy.write_text('{"kind": "cascade", "steps": [{"tier": 1, "thinking_budget": 4000}, '
                      '{"tier": 2, "thinking_budget": 10000}], "accept": {"min_quality": 0.5}}')
    swept = json.loads(simulate_cli("--project", "demo", "--policy", str(policy), "--min-samples", "3",
                                    "--sweep", "accept.min_quality:0.3..0.9:4", "--no-save")[0])
    assert len(swept["sweep"]["points"]) == 4 and "pareto" in swept["sweep"] and "aiq" in swept["sweep"]

    # Bad input fails clearly, printing nothing on stdout.
    policy.write_text('{"kind": "static", "tier": 5, "thinking_budget": 0}')
    with pytest.raises(CommandError, match=r"policy\.tier: must be 1, 2 or 3, not 5"):
        simulate_cli("--project", "demo", "--policy", str(policy))
    with pytest.raises(CommandError, match="no project 'nope'"):
        simulate_cli("--project", "nope", "--policy", str(policy))
    policy.write_text(SUPPORTED)
    with pytest.raises(CommandError, match="not an ISO-8601 date"):
        simulate_cli("--project", "demo", "--policy", str(policy), "--from", "last tuesday")
    with pytest.raises(CommandError, match="--to must be after --from"):
        simulate_cli("--project", "demo", "--policy", str(policy), "--from", "2026-02-01", "--to", "2026-01-01")

    # The loader reads the same rows in small chunks as in one.
    window = loader.data_window(project.pk, None, None)
    assert window is not None
    whole, _ = loader.load_spans(project.pk, window)
    pieces = loader.chunks(project.pk, window, chunk_rows=100)
    assert len(pieces) > 3 and sum(size for _, size in pieces) == truth["calls"]
    chunked, _ = loader.load_spans(project.pk, window, chunk_rows=100)
    key = ["trace_id", "span_id"]
    pd.testing.assert_frame_equal(whole.sort_values(key).reset_index(drop=True),
                                  chunked.sort_values(key).reset_index(drop=True), check_categorical=False)
    assert len(whole) == truth["calls"] and whole["attempt"].max() >= 2  # thinkmeter.attempt was read

    # A quality score sent afterwards (the scores table) overrides the span's own quality.
    trace = str(whole["trace_id"].iloc[0])
    score_store.record(score_store.Score(project.pk, trace, "", "quality", 0.123))
    spans, scores = loader.load_spans(project.pk, window)
    table = build_requests(spans, scores)
    scored = table.requests[table.requests["trace_id"] == trace]
    assert len(scored) >= 1 and scored["actual_quality"].tolist() == pytest.approx([0.123] * len(scored))


def api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + secret)
    return client


def wait_done(client: APIClient, run_id: int) -> dict[str, Any]:
    assert background.drain(timeout=120)
    for _ in range(50):
        body = client.get(f"/api/v1/simulations/{run_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {body}")


def test_api_runs_a_simulation_as_a_job(ch: ModuleType, priced: Any, project: Project, project_key: str,
                                        other_project_key: str, client: Any) -> None:
    send_demo_traffic(client, project_key, spans=800, days=7)
    writer = api(project_key)
    response = writer.post("/api/v1/simulations", {"policy": SUPPORTED, "name": "cheap routes",
                                                   "sweep": "", "from": "", "to": ""}, format="json")
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["status"] in ("queued", "running", "done") and response["Location"] == created["url"]
    done = wait_done(writer, created["id"])
    assert done["status"] == "done", done["error"]
    assert done["progress"] == 1.0 and done["name"] == "cheap routes"
    result = done["result"]
    assert set(REQUIRED_KEYS) <= set(result) and result["project"] == "acme" and result["requests"] > 50

    # The policy as an object, with a sweep.
    threshold = {"kind": "threshold", "score": "prompt_tokens", "threshold": 0.5,
                 "strong": {"tier": 2, "thinking_budget": 10000}, "weak": {"tier": 1, "thinking_budget": 4000}}
    response = writer.post("/api/v1/simulations", {"policy": threshold, "sweep": "threshold:0..1:5"}, format="json")
    assert response.status_code == 202
    swept = wait_done(writer, response.json()["id"])["result"]
    assert len(swept["sweep"]["points"]) == 5 and "apgr" in swept["sweep"]

    listed = writer.get("/api/v1/simulations").json()["runs"]
    assert [r["id"] for r in listed][:2] == [response.json()["id"], created["id"]] and "result" not in listed[0]

    # Validation errors say what and where; the write scope is required; other projects' runs are invisible.
    bad = writer.post("/api/v1/simulations", {"policy": {"kind": "static", "tier": 9, "thinking_budget": 0}},
                      format="json")
    assert bad.status_code == 400 and bad.json()["policy"] == ["policy.tier: must be 1, 2 or 3, not 9"]
    bad_sweep = writer.post("/api/v1/simulations", {"policy": SUPPORTED, "sweep": "threshold:0..1:5"}, format="json")
    assert bad_sweep.status_code == 400 and "sweep" in bad_sweep.json()
    _, read_only = ApiKey.issue(project, ("read",), name="reader")
    assert api(read_only).post("/api/v1/simulations", {"policy": SUPPORTED}, format="json").status_code == 403
    assert api(read_only).get(f"/api/v1/simulations/{created['id']}").status_code == 200
    assert api(other_project_key).get(f"/api/v1/simulations/{created['id']}").status_code == 404
    assert api(other_project_key).get("/api/v1/simulations").json()["runs"] == []
    assert APIClient().get("/api/v1/simulations").status_code in (401, 403)


def test_people_need_the_engineer_role_and_the_page_shows_the_run(ch: ModuleType, priced: Any, project: Project,
                                                                   project_key: str, client: Any,
                                                                   django_user_model: Any) -> None:
    send_demo_traffic(client, project_key, spans=800, days=7)
    viewer = APIClient()
    viewer.force_login(person(django_user_model, "viewer", project, Role.VIEWER))
    assert viewer.post("/api/v1/simulations?project=acme", {"policy": SUPPORTED}, format="json").status_code == 403
    engineer = APIClient()
    engineer.force_login(person(django_user_model, "eng", project, Role.ENGINEER))
    assert engineer.post("/api/v1/simulations?project=globex", {"policy": SUPPORTED},
                         format="json").status_code == 404  # not one of theirs
    assert engineer.post("/api/v1/simulations?project=acme", {"policy": SUPPORTED},
                         format="json").status_code == 202
    assert background.drain(timeout=120)

    page = client
    page.force_login(django_user_model.objects.get(username="eng"))
    form = page.get("/simulator/")
    assert form.status_code == 200
    html = form.content.decode()
    assert 'name="policy"' in html and "Thinking only for code" in html and 'value="acme"' in html
    rejected = page.post("/simulator/", {"project": "acme", "policy": "kind: static\ntier: 7\nthinking_budget: 0"})
    assert rejected.status_code == 400 and "policy.tier: must be 1, 2 or 3, not 7" in rejected.content.decode()
    posted = page.post("/simulator/", {"project": "acme", "policy": SUPPORTED, "sweep": "", "from": "", "to": ""})
    assert posted.status_code == 302 and posted["Location"].startswith("/simulator/runs/")
    assert background.drain(timeout=120)
    shown = page.get(posted["Location"])
    assert shown.status_code == 200
    text = shown.content.decode()
    assert 'data-figure="fig-cost-quality"' in text and "/assets/plotly-" in text
    assert "Against what actually happened" in text and "Support" in text and "Total cost" in text
    run_id = int(posted["Location"].rstrip("/").split("/")[-1])
    assert SimulationRun.objects.get(pk=run_id).source == "page"
    listing = page.get("/simulator/").content.decode()
    assert f"/simulator/runs/{run_id}/" in listing
    outsider = APIClient()
    outsider.force_login(person(django_user_model, "outsider", None, None))
    assert outsider.get(posted["Location"]).status_code == 404


def test_services_parse_windows() -> None:
    assert services.parse_moment("2026-01-31").isoformat() == "2026-01-31T00:00:00+00:00"
    assert services.parse_moment("2026-01-31", end=True).isoformat() == "2026-02-01T00:00:00+00:00"
    assert services.parse_moment("2026-01-31T12:00:00Z").isoformat() == "2026-01-31T12:00:00+00:00"
    assert services.parse_moment("") is None
    with pytest.raises(ValueError, match="not an ISO-8601"):
        services.parse_moment("yesterday")
