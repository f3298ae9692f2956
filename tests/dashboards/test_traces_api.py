"""``GET /api/v1/traces`` (search) and ``GET /api/v1/traces/<trace_id>`` (every span), against
traces sent through ``POST /v1/traces``: filters, order, pagination, the widening time
windows, re-sent spans shown once, scores, runaway flags and project isolation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from dashboards import queries
from tests.dashboards.api_support import (
    add_score,
    call,
    cost_parts,
    key_client,
    money,
    new_span_id,
    new_trace_id,
    priced_catalog,
    root,
    send,
    set_runaway,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced(project: Any, other_project: Any) -> Iterator[None]:
    yield from priced_catalog(project, other_project)


def now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class Traces:
    """Three traces: T1 (an hour ago, two calls), T2 (two days ago, a failed call), T3 (nine days
    ago, another service, a long think; flagged runaway)."""

    def __init__(self, key: str, project_id: int) -> None:
        end = now_hour()
        self.starts = {"t1": end - timedelta(hours=1), "t2": end - timedelta(days=2),
                       "t3": end - timedelta(days=9)}
        self.ids = {name: new_trace_id() for name in self.starts}
        self.roots = {name: new_span_id() for name in self.starts}
        t1, t2, t3 = (self.starts[n] for n in ("t1", "t2", "t3"))
        self.t1_spans = [
            root(t1, self.ids["t1"], self.roots["t1"], duration_ms=4000),
            call("tm-reasoner", t1 + timedelta(milliseconds=100), task_type="support", tier=2, user="alice",
                 trace_id=self.ids["t1"], parent_span_id=self.roots["t1"], input_tokens=1000, output_tokens=2000,
                 reasoning_tokens=1500, duration_ms=2500,
                 extra={"gen_ai.prompt.0.content": "What is 2+2?", "gen_ai.completion.0.content": "4"}),
            call("tm-fast", t1 + timedelta(milliseconds=2700), task_type="support", tier=1, user="alice",
                 trace_id=self.ids["t1"], parent_span_id=self.roots["t1"], input_tokens=300, output_tokens=50,
                 duration_ms=800),
        ]
        send(key, self.t1_spans)
        send(key, [
            root(t2, self.ids["t2"], self.roots["t2"]),
            call("tm-fast", t2 + timedelta(milliseconds=10), task_type="support", tier=1, user="bob",
                 trace_id=self.ids["t2"], parent_span_id=self.roots["t2"], input_tokens=500, output_tokens=20,
                 status=2),
        ])
        send(key, [
            root(t3, self.ids["t3"], self.roots["t3"], name="nightly_batch"),
            call("tm-reasoner", t3 + timedelta(milliseconds=10), task_type="code", tier=3, user="carol",
                 trace_id=self.ids["t3"], parent_span_id=self.roots["t3"], input_tokens=4000, output_tokens=9000,
                 reasoning_tokens=8000),
        ], service="svc-b")
        set_runaway(project_id, self.ids["t3"])

    def cost(self, name: str) -> Decimal:
        if name == "t1":
            return (cost_parts("tm-reasoner", 1000, 2000, 1500)["total"] + cost_parts("tm-fast", 300, 50)["total"])
        if name == "t2":
            return cost_parts("tm-fast", 500, 20)["total"]
        return cost_parts("tm-reasoner", 4000, 9000, 8000)["total"]

    def names(self, rows: list[dict[str, Any]]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id.get(r["trace_id"], r["trace_id"]) for r in rows]


@pytest.fixture
def traces(ch: ModuleType, priced: None, project: Any, project_key: str) -> Traces:
    project.store_prompts = True
    project.save()
    return Traces(project_key, project.pk)


def search(key: str, **params: Any) -> dict[str, Any]:
    response = key_client(key).get("/api/v1/traces?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.content
    return response.json()


def test_search_lists_traces_newest_first_with_totals(traces: Traces, project_key: str) -> None:
    found = search(project_key)
    assert traces.names(found["traces"]) == ["t1", "t2", "t3"]
    assert found["next_offset"] is None
    t1 = found["traces"][0]
    assert t1 == {
        "trace_id": traces.ids["t1"], "project": "acme",
        "start": traces.starts["t1"].strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_ms": 4000.0,
        "root_span_name": "handle_request", "service": "svc-a", "spans": 3, "llm_calls": 2,
        "models": ["tm-fast", "tm-reasoner"], "task_type": "support", "tier": 2, "user_id": "alice",
        "input_tokens": 1300, "output_tokens": 2050, "reasoning_tokens": 1500, "cost_usd": money(traces.cost("t1")),
        "status": "ok", "runaway": False,
    }
    t2, t3 = found["traces"][1:]
    assert (t2["status"], t2["user_id"], t2["cost_usd"]) == ("error", "bob", money(traces.cost("t2")))
    assert (t3["root_span_name"], t3["service"], t3["runaway"], t3["tier"]) == ("nightly_batch", "svc-b", True, 3)


FILTER_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({"model": "tm-fast"}, ["t1", "t2"]),
    ({"model": "tm-reasoner,tm-fast"}, ["t1", "t2", "t3"]),
    ({"task_type": "code"}, ["t3"]),
    ({"tier": "1"}, ["t1", "t2"]),
    ({"tier": "3"}, ["t3"]),
    ({"user_id": "bob"}, ["t2"]),
    ({"service": "svc-b"}, ["t3"]),
    ({"status": "error"}, ["t2"]),
    ({"status": "ok"}, ["t1", "t3"]),
    ({"min_reasoning_tokens": "5000"}, ["t3"]),
    ({"min_reasoning_tokens": "1500"}, ["t1", "t3"]),
    ({"runaway": "true"}, ["t3"]),
    ({"runaway": "false"}, ["t1", "t2"]),
    ({"model": "tm-fast", "status": "ok"}, ["t1"]),
    ({"model": "tm-fast", "tier": "1", "user_id": "bob"}, ["t2"]),
]


def test_search_filters(traces: Traces, project_key: str) -> None:
    for params, expected in FILTER_CASES:
        assert traces.names(search(project_key, **params)["traces"]) == expected, params


def test_search_by_cost_time_and_id(traces: Traces, project_key: str) -> None:
    cheapest = min(traces.cost(n) for n in ("t1", "t2", "t3"))
    above = [n for n in ("t1", "t2", "t3") if traces.cost(n) > cheapest]
    assert traces.names(search(project_key, min_cost=str(cheapest + Decimal("0.000000001")))["traces"]) == above
    assert traces.names(search(project_key, min_cost=str(cheapest))["traces"]) == ["t1", "t2", "t3"]
    start = (traces.starts["t2"] - timedelta(hours=1)).isoformat()
    end = (traces.starts["t1"] - timedelta(minutes=5)).isoformat()
    assert traces.names(search(project_key, **{"from": start, "to": end})["traces"]) == ["t2"]
    assert traces.names(search(project_key, q=traces.ids["t2"][:6])["traces"]) == ["t2"]
    assert traces.names(search(project_key, q=traces.ids["t2"].upper())["traces"]) == ["t2"]


def test_pagination(traces: Traces, project_key: str) -> None:
    pages = [search(project_key, limit=1, offset=offset) for offset in range(3)]
    assert [traces.names(p["traces"]) for p in pages] == [["t1"], ["t2"], ["t3"]]
    assert [p["next_offset"] for p in pages] == [1, 2, None]
    assert search(project_key, limit=2)["next_offset"] == 2
    assert search(project_key, offset=3)["traces"] == []


@pytest.mark.parametrize("params", [
    {"status": "broken"}, {"min_cost": "-1"}, {"min_reasoning_tokens": "many"}, {"runaway": "maybe"},
    {"q": "not-hex!"}, {"limit": "0"}, {"limit": "100000"}, {"from": "soon"}, {"tier": "x"},
    {"from": "2025-02-01", "to": "2025-01-01"},
])
def test_search_rejects_bad_parameters(project_key: str, ch: ModuleType, params: dict[str, str]) -> None:
    response = key_client(project_key).get("/api/v1/traces?" + urlencode(params))
    assert response.status_code == 400, (params, response.content)


def test_widening_windows_give_the_same_answer_as_one_scan(ch: ModuleType, priced: None, project: Any,
                                                           project_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    end = now_hour()
    spans: list[dict[str, Any]] = []
    offsets = [timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5, minutes=50), timedelta(hours=30),
               timedelta(days=3), timedelta(days=12), timedelta(days=25)]
    for i, offset in enumerate(offsets):
        trace_id, root_id = new_trace_id(), new_span_id()
        spans += [root(end - offset, trace_id, root_id),
                  call("tm-fast", end - offset + timedelta(seconds=1), trace_id=trace_id, parent_span_id=root_id,
                       input_tokens=100 + i, output_tokens=10)]
    # a trace that straddles the first window's edge (6 h): it starts 20 minutes before it
    trace_id, root_id = new_trace_id(), new_span_id()
    spans += [root(end - timedelta(hours=6, minutes=20), trace_id, root_id, duration_ms=40 * 60 * 1000),
              call("tm-reasoner", end - timedelta(hours=5, minutes=45), trace_id=trace_id, parent_span_id=root_id,
                   input_tokens=999, output_tokens=99)]
    send(project_key, spans)
    to = end.isoformat()

    def pages(limit: int) -> list[list[dict[str, Any]]]:
        out, offset = [], 0
        while offset is not None:
            found = search(project_key, to=to, limit=limit, offset=offset)
            out.append(found["traces"])
            offset = found["next_offset"]
        return out

    windowed = {limit: pages(limit) for limit in (1, 2, 3, 8)}
    monkeypatch.setattr(queries, "TRACE_WINDOWS", ())
    for limit, result in windowed.items():
        assert result == pages(limit), limit
    everything = [t for page in windowed[8] for t in page]
    assert len(everything) == 8
    straddler = next(t for t in everything if t["trace_id"] == trace_id)
    assert (straddler["spans"], straddler["llm_calls"], straddler["input_tokens"]) == (2, 1, 999)
    assert everything.index(straddler) == 3


def test_trace_detail_every_span(traces: Traces, project_key: str) -> None:
    response = key_client(project_key).get(f"/api/v1/traces/{traces.ids['t1']}")
    assert response.status_code == 200
    detail = response.json()
    assert detail["trace_id"] == traces.ids["t1"]
    assert detail["duration_ms"] == 4000.0 and detail["llm_calls"] == 2
    assert detail["cost_usd"] == money(traces.cost("t1"))
    spans = detail["spans"]
    assert [s["name"] for s in spans] == ["handle_request", "chat tm-reasoner", "chat tm-fast"]
    assert [s["offset_ms"] for s in spans] == [0.0, 100.0, 2700.0]
    assert [s["duration_ms"] for s in spans] == [4000.0, 2500.0, 800.0]
    assert spans[0]["parent_span_id"] is None
    assert {s["parent_span_id"] for s in spans[1:]} == {traces.roots["t1"]}
    assert [s["counted"] for s in spans] == [False, True, True]
    reasoner = spans[1]
    parts = cost_parts("tm-reasoner", 1000, 2000, 1500)
    assert (reasoner["input_tokens"], reasoner["output_tokens"], reasoner["reasoning_tokens"],
            reasoner["visible_output_tokens"]) == (1000, 2000, 1500, 500)
    assert (reasoner["cost_usd"], reasoner["cost_input_usd"], reasoner["cost_cache_usd"], reasoner["cost_output_usd"],
            reasoner["cost_reasoning_usd"]) == tuple(money(parts[k]) for k in ("total", "input", "cache", "output",
                                                                               "reasoning"))
    assert (reasoner["tier"], reasoner["task_type"], reasoner["user_id"], reasoner["model"]) == (
        2, "support", "alice", "tm-reasoner")
    assert reasoner["start"].startswith(
        (traces.starts["t1"] + timedelta(milliseconds=100)).strftime("%Y-%m-%dT%H:%M:%S.1"))
    assert reasoner["attributes"]["gen_ai.request.model"] == "tm-reasoner"
    assert reasoner["resource_attributes"]["service.name"] == "svc-a"
    assert "What is 2+2?" in reasoner["prompt_text"] and reasoner["completion_text"] == "4"


def test_trace_detail_shows_resent_spans_once(traces: Traces, project_key: str) -> None:
    send(project_key, traces.t1_spans)  # the exporter retried
    detail = key_client(project_key).get(f"/api/v1/traces/{traces.ids['t1']}").json()
    assert len(detail["spans"]) == 3
    assert [s["counted"] for s in detail["spans"]] == [False, True, True]
    assert detail["cost_usd"] == money(traces.cost("t1"))
    row = search(project_key, q=traces.ids["t1"])["traces"][0]
    assert (row["spans"], row["llm_calls"], row["cost_usd"]) == (3, 2, money(traces.cost("t1")))


def test_trace_detail_scores_and_runaway(traces: Traces, project: Any, project_key: str) -> None:
    add_score(project.pk, traces.ids["t3"], 0.4, created_at=datetime.now(UTC) - timedelta(minutes=5))
    add_score(project.pk, traces.ids["t3"], 0.9)
    detail = key_client(project_key).get(f"/api/v1/traces/{traces.ids['t3']}").json()
    assert detail["runaway"] is True
    assert [s["runaway"] for s in detail["spans"]] == [False, True]
    assert [(s["name"], s["value"]) for s in detail["scores"]] == [("quality", 0.9)]


def test_trace_detail_is_scoped_to_the_callers_projects(traces: Traces, project_key: str,
                                                        other_project_key: str) -> None:
    assert key_client(other_project_key).get(f"/api/v1/traces/{traces.ids['t1']}").status_code == 404
    assert search(other_project_key)["traces"] == []
    assert key_client(project_key).get(f"/api/v1/traces/{new_trace_id()}").status_code == 404
    assert key_client(project_key).get("/api/v1/traces/not-a-trace-id").status_code == 404
    assert key_client(project_key).get(f"/api/v1/traces/{traces.ids['t1']}?project=globex").status_code == 404
    assert key_client(other_project_key).get("/api/v1/traces?project=acme").status_code == 404


def test_runaway_traces_page_function(traces: Traces, project: Any) -> None:
    start, end = queries.time_range(None, None)
    rows = queries.runaway_traces([project.pk], start, end)
    assert [r["trace_id"] for r in rows] == [traces.ids["t3"]]  # found after widening the window to 10 days
    assert rows == queries.search_traces(queries.TraceSearch([project.pk], start, end, runaway=True))["traces"]
    assert rows[0]["cost_usd"] == money(traces.cost("t3")) and rows[0]["reasoning_tokens"] == 8000
    assert queries.runaway_traces([project.pk], start, end, filters={"model": "tm-fast"}) == []
    assert queries.runaway_traces([project.pk], end - timedelta(days=5), end) == []
