"""``GET /api/v1/budgets`` and :func:`dashboards.queries.budget_stats` (what the alert engine
and the SDK use), plus the engineering page's sampled statistics, against known calls:
per task class statistics, quality from the span or the scores table, and the
recommended thinking budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest

from dashboards import queries
from tests.dashboards.api_support import add_score, call, key_client, priced_catalog, send

pytestmark = pytest.mark.django_db

# (thinking budget, calls, quality, where the quality comes from)
SUPPORT_TIER2 = [(1024, 6, 0.80, "span"), (2048, 6, 0.85, "span"), (4096, 6, 0.86, "score"),
                 (8192, 3, 0.95, "span")]  # too few calls to count for the recommendation


@pytest.fixture
def priced(project: Any, other_project: Any) -> Iterator[None]:
    yield from priced_catalog(project, other_project)


class Calls:
    """Calls of three task classes in the last day, and one ten days ago."""

    def __init__(self, key: str, project_id: int) -> None:
        now = datetime.now(UTC)
        self.reasoning: dict[tuple[str, int], list[int]] = {}
        self.costs: list[float] = []
        spans = []
        scored: list[str] = []
        n = 0
        for budget, count, quality, source in SUPPORT_TIER2:
            for i in range(count):
                n += 1
                reasoning = budget // 2 + 37 * i
                extra: dict[str, Any] = {"thinkmeter.thinking_budget": budget}
                if source == "span":
                    extra["thinkmeter.quality"] = quality
                span = call("tm-reasoner", now - timedelta(hours=2, minutes=n), task_type="support", tier=2,
                            input_tokens=1000, output_tokens=reasoning + 200, reasoning_tokens=reasoning, extra=extra)
                if source == "score":
                    scored.append(span["trace_id"])
                spans.append(span)
                self.reasoning.setdefault(("support", 2), []).append(reasoning)
        for i in range(4):
            spans.append(call("tm-fast", now - timedelta(hours=3, minutes=i), task_type="support", tier=1,
                              input_tokens=500, output_tokens=100))
            self.reasoning.setdefault(("support", 1), []).append(0)
        for i in range(5):
            reasoning = 3000 + 500 * i
            spans.append(call("tm-reasoner", now - timedelta(hours=4, minutes=i), task_type="code", tier=3,
                              input_tokens=2000, output_tokens=reasoning + 100, reasoning_tokens=reasoning))
            self.reasoning.setdefault(("code", 3), []).append(reasoning)
        # outside a 7-day window
        spans.append(call("tm-reasoner", now - timedelta(days=10), task_type="code", tier=3, input_tokens=10,
                          output_tokens=90_000, reasoning_tokens=89_000,
                          extra={"thinkmeter.quality": 0.1, "thinkmeter.thinking_budget": 1024}))
        send(key, spans)
        for index, trace_id in enumerate(scored):
            add_score(project_id, trace_id, 0.2, created_at=now - timedelta(minutes=30))  # replaced below
            add_score(project_id, trace_id, 0.86)
            add_score(project_id, trace_id, 0.5 + index / 100, name="helpfulness")


@pytest.fixture
def calls(ch: ModuleType, priced: None, project: Any, project_key: str) -> Calls:
    return Calls(project_key, project.pk)


def budgets(key: str, **params: Any) -> dict[str, Any]:
    response = key_client(key).get("/api/v1/budgets?" + urlencode(params))
    assert response.status_code == 200, response.content
    return response.json()


def by_class(body: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(c["task_type"], c["tier"]): c for c in body["classes"]}


def test_classes_and_statistics(calls: Calls, project_key: str) -> None:
    body = budgets(project_key)
    assert body["window"] == "7d" and body["tolerance"] == 0.02 and body["score_name"] == "quality"
    classes = by_class(body)
    assert set(classes) == {("support", 2), ("support", 1), ("support", None), ("code", 3), ("code", None)}
    support2 = classes[("support", 2)]
    assert support2["requests"] == 21 and support2["thinking_share"] == 1.0
    values = calls.reasoning[("support", 2)]
    for level in (50, 90, 95, 99):
        assert support2[f"reasoning_p{level}"] == pytest.approx(np.percentile(values, level), rel=0.1), level
    assert support2["reasoning_p50"] <= support2["reasoning_p90"] <= support2["reasoning_p95"] <= support2[
        "reasoning_p99"]
    assert float(support2["cost_p95_usd"]) > 0
    support = classes[("support", None)]
    assert support["requests"] == 25 and support["thinking_share"] == pytest.approx(21 / 25)
    assert classes[("support", 1)]["reasoning_p95"] == 0 and classes[("support", 1)]["thinking_share"] == 0
    assert classes[("code", 3)]["requests"] == 5  # the call ten days ago is outside the window


def test_quality_from_spans_and_scores(calls: Calls, project_key: str) -> None:
    support2 = by_class(budgets(project_key))[("support", 2)]
    expected = (6 * 0.80 + 6 * 0.85 + 6 * 0.86 + 3 * 0.95) / 21
    assert support2["quality_samples"] == 21
    assert support2["mean_quality"] == pytest.approx(expected, abs=1e-5)
    scored_reasoning = np.mean(calls.reasoning[("support", 2)])
    assert support2["quality_per_1k_reasoning_tokens"] == pytest.approx(expected * 1000 / scored_reasoning, rel=1e-4)
    options = {b["thinking_budget"]: b for b in support2["budgets"]}
    assert {b: (o["requests"], o["quality_samples"]) for b, o in options.items()} == {
        1024: (6, 6), 2048: (6, 6), 4096: (6, 6), 8192: (3, 3)}
    assert options[4096]["mean_quality"] == pytest.approx(0.86, abs=1e-5)  # the latest score of each trace
    code = by_class(budgets(project_key))[("code", 3)]
    assert (code["quality_samples"], code["mean_quality"], code["recommended_thinking_budget"]) == (0, None, None)


@pytest.mark.parametrize("tolerance, expected", [(0.02, 2048), (0.0, 4096), (0.1, 1024), (0.005, 4096)])
def test_recommended_budget(calls: Calls, project_key: str, tolerance: float, expected: int) -> None:
    classes = by_class(budgets(project_key, tolerance=tolerance))
    assert classes[("support", 2)]["recommended_thinking_budget"] == expected
    assert classes[("support", None)]["recommended_thinking_budget"] == expected


def test_score_name_window_task_type_and_min_samples(calls: Calls, project_key: str) -> None:
    helpful = by_class(budgets(project_key, score_name="helpfulness"))[("support", 2)]
    options = {b["thinking_budget"]: b for b in helpful["budgets"]}
    assert options[4096]["mean_quality"] == pytest.approx(np.mean([0.5 + i / 100 for i in range(6)]), abs=1e-5)
    assert options[1024]["mean_quality"] == pytest.approx(0.80, abs=1e-5)  # the span's own quality wins
    wide = by_class(budgets(project_key, window="30d"))
    assert wide[("code", 3)]["requests"] == 6 and wide[("code", 3)]["mean_quality"] == pytest.approx(0.1, abs=1e-6)
    narrow = by_class(budgets(project_key, window="150m"))
    assert set(narrow) == {("support", 2), ("support", None)}
    assert set(by_class(budgets(project_key, task_type="code"))) == {("code", 3), ("code", None)}
    assert by_class(budgets(project_key, min_samples=7))[("support", 2)]["recommended_thinking_budget"] is None
    assert by_class(budgets(project_key, min_samples=3))[("support", 2)]["recommended_thinking_budget"] == 8192


@pytest.mark.parametrize("params", [{"window": "7x"}, {"window": "0d"}, {"window": "999d"}, {"tolerance": "2"},
                                    {"tolerance": "lots"}, {"min_samples": "0"}])
def test_bad_parameters_are_400(project_key: str, ch: ModuleType, params: dict[str, str]) -> None:
    response = key_client(project_key).get("/api/v1/budgets?" + urlencode(params))
    assert response.status_code == 400, (params, response.content)


def test_function_matches_the_api_and_samples(calls: Calls, project: Any, project_key: str,
                                              other_project_key: str) -> None:
    direct = queries.budget_stats([project.pk], 7, tolerance=0.02)
    assert direct == budgets(project_key)["classes"]
    assert all(c["quality_sample_fraction"] == 1.0 for c in direct)
    sampled = queries.budget_stats([project.pk], 7, sample_calls=5)
    assert {(c["task_type"], c["tier"]): c["requests"] for c in sampled} == {
        (c["task_type"], c["tier"]): c["requests"] for c in direct}  # counts do not depend on the sample
    fraction = sampled[0]["quality_sample_fraction"]
    assert 0 < fraction < 1
    bound = queries.trace_sample([project.pk], datetime.now(UTC) - timedelta(days=7), datetime.now(UTC),
                                 target=5).bound
    assert bound is not None and len(bound) == 4
    assert budgets(other_project_key)["classes"] == []
    assert queries.budget_stats([], 7) == []


def test_engineering_page_functions(calls: Calls, project: Any) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(days=7)
    ids = [project.pk]
    dist = queries.reasoning_distribution(ids, start, end)
    quantiles = {(r.task_type, int(r.tier)): r for r in dist.itertuples()}
    assert set(quantiles) == {("support", 2), ("code", 3)}  # classes that think
    for key, row in quantiles.items():  # every call read: exact, interpolated as numpy does
        values = calls.reasoning[key]
        assert (row.requests, row.with_thinking) == (len(values), sum(1 for v in values if v > 0))
        for level in (50, 90, 95, 99):
            assert getattr(row, f"p{level}") == pytest.approx(np.percentile(values, level)), (key, level)
    assert dist.attrs["sample_fraction"] == 1.0

    latency = queries.latency_by_tier(ids, start, end)
    assert list(latency["tier"]) == [1, 2, 3] and list(latency["requests"]) == [4, 21, 5]
    assert (latency["duration_p50"] > 0).all() and latency["ttft_p50"].isna().all()
    assert list(latency["ttft_requests"]) == [0, 0, 0]

    frontier = queries.quality_vs_reasoning(ids, start, end)
    points = {(r.task_type, int(r.tier), int(r.thinking_budget)): r for r in frontier.itertuples()}
    assert set(points) == {("support", 2, b) for b, *_ in SUPPORT_TIER2}
    assert points[("support", 2, 4096)].mean_quality == pytest.approx(0.86, abs=1e-5)
    assert points[("support", 2, 1024)].mean_reasoning_tokens == pytest.approx(512 + 37 * 2.5)
    assert list(frontier["scored"]) == [6, 6, 6, 3]
    assert queries.quality_vs_reasoning(ids, start, end, min_samples=4)["thinking_budget"].tolist() == [1024, 2048,
                                                                                                         4096]

    used = queries.budget_vs_used(ids, start, end)
    assert len(used) == 21 and (used["ratio"] == used["reasoning_tokens"] / used["thinking_budget"]).all()
    assert len(queries.budget_vs_used(ids, start, end, sample=5)) == 5

    every_call = queries.call_sample(ids, start, end)
    assert len(every_call) == 30 and every_call.attrs["sample_fraction"] == 1.0
    shared = queries.reasoning_distribution(ids, start, end, calls=every_call)
    assert shared.equals(dist)

    sampled = queries.call_sample(ids, start, end, sample_calls=3)
    sample = queries.trace_sample(ids, start, end, target=3)
    assert 0 < sampled.attrs["sample_fraction"] == sample.fraction < 1 and sample.table == "spans"
    in_sample = queries.latency_by_tier(ids, start, end, calls=sampled)
    assert in_sample.attrs["sample_fraction"] == sample.fraction
    from thinkmeter import clickhouse

    read = clickhouse.execute(
        "SELECT count() AS n FROM spans WHERE project_id IN {project_ids:Array(UInt32)} AND counted = 1 "
        "AND start_time >= {start:DateTime64(6, 'UTC')} AND trace_id < {bound:String}",
        {"start": start, "bound": sample.bound}, tag="tests", projects=project.pk)[0]["n"]
    assert len(sampled) == read
    assert int(in_sample["requests"].sum()) == round(read / sample.fraction) or read == 0


def test_escalation_rate(ch: ModuleType, priced: None, project: Any, project_key: str) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    spans = []
    # two requests escalated inside one trace (shared request id), one plain request, and a trace
    # without request ids holding two calls (counts as one escalated request)
    for attempt, model in enumerate(["tm-fast", "tm-reasoner"]):
        spans.append(call(model, now + timedelta(seconds=attempt), task_type="support", tier=attempt + 1,
                          trace_id="a" * 32, extra={"thinkmeter.request_id": "req-1"}, input_tokens=10,
                          output_tokens=10))
    spans.append(call("tm-fast", now, task_type="support", tier=1, trace_id="a" * 32,
                      extra={"thinkmeter.request_id": "req-2"}, input_tokens=10, output_tokens=10))
    spans += [call("tm-fast", now + timedelta(seconds=i), task_type="code", tier=1, trace_id="b" * 32,
                   input_tokens=10, output_tokens=10) for i in range(2)]
    spans.append(call("tm-fast", now, task_type="code", tier=1, input_tokens=10, output_tokens=10))
    send(project_key, spans)
    rates = queries.escalation_rate_by_task_type([project.pk], now - timedelta(days=1), now + timedelta(hours=1))
    got = {r.task_type: (r.requests, r.escalated, r.llm_calls, r.rate) for r in rates.itertuples()}
    assert got == {"support": (2, 1, 3, 0.5), "code": (2, 1, 3, 0.5)}
