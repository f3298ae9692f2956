"""The request table: requests from traces and request ids, attempts in order, quality from spans and scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.engine.requests import SPAN_COLUMNS, build_requests

T0 = 1_767_225_600 * 10**9


def call(trace: str, span: str, start_s: float, *, tier: int = 1, budget: int = 0, attempt: int = 0,
         request_id: str = "", quality: float | None = None, task: str = "qa", tokens: int = 100,
         cost: float = 0.001, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": trace, "span_id": span, "request_id": request_id, "attempt": attempt,
        "start_ns": T0 + int(start_s * 1e9), "duration_ns": 2_000_000_000, "task_type": task, "tier": tier,
        "thinking_budget": budget, "model": f"model-{tier}", "user_id": "u1", "session_id": "s1", "service": "app",
        "environment": "production", "input_tokens": tokens, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "output_tokens": 50, "reasoning_tokens": 20, "cost_input": cost / 2, "cost_cache_read": 0.0,
        "cost_cache_write": 0.0, "cost_output_visible": cost / 4, "cost_reasoning": cost / 4, "cost_total": cost,
        "priced": True, "quality": np.nan if quality is None else quality,
    }
    row.update(extra)
    return row


def test_traces_and_request_ids_become_requests_with_ordered_attempts() -> None:
    spans = pd.DataFrame([
        # Trace a: one request, escalated (explicit attempt numbers), rows given out of order.
        call("a", "a2", 10, tier=3, budget=10000, attempt=2, quality=0.9, cost=0.01),
        call("a", "a1", 0, tier=1, attempt=1, quality=0.2, cost=0.001),
        # Trace b: two requests (request ids), the second with an agent loop of two calls at one configuration.
        call("b", "b1", 5, request_id="r1", quality=0.7, task="summarization", tokens=300),
        call("b", "b2", 20, request_id="r2", task="code", tokens=900),
        call("b", "b3", 25, request_id="r2", task="code", quality=0.6),
        # Trace c: no attempt numbers; the configuration changes, so a second attempt is inferred.
        call("c", "c1", 1, tier=1),
        call("c", "c2", 3, tier=2, budget=4000, quality=0.8),
    ])
    table = build_requests(spans)
    req, att = table.requests, table.attempts
    assert table.n == 4
    assert list(req["trace_id"]) == ["a", "c", "b", "b"]  # by start time
    assert list(req["request_id"]) == ["", "", "r1", "r2"]
    a, c, r1, r2 = (req.iloc[i] for i in range(4))
    assert a["attempts"] == 2 and (a["first_tier"], a["final_tier"], a["final_budget"]) == (1, 3, 10000)
    assert a["actual_cost_total"] == pytest.approx(0.011)
    assert a["actual_quality"] == 0.9  # the last attempt's quality
    assert a["actual_latency_ms"] == pytest.approx(4000.0)
    assert a["prompt_tokens"] == 100
    assert c["attempts"] == 2 and c["final_tier"] == 2 and c["actual_quality"] == 0.8
    assert r1["attempts"] == 1 and r1["task_type"] == "summarization" and r1["prompt_tokens"] == 300
    assert r2["attempts"] == 1 and r2["task_type"] == "code"
    agent = att[att["request"] == 3].iloc[0]
    assert agent["calls"] == 2 and agent["input_tokens"] == 1000 and agent["quality"] == 0.6
    assert agent["latency_ms"] == pytest.approx(4000.0)
    assert list(att[att["request"] == 0]["attempt"]) == [1, 2]
    assert list(att[att["request"] == 0]["tier"]) == [1, 3]


def test_scores_override_span_quality_for_a_span_or_a_whole_trace() -> None:
    spans = pd.DataFrame([
        call("a", "a1", 0, attempt=1, quality=0.2),
        call("a", "a2", 5, tier=2, attempt=2, quality=0.5),
        call("b", "b1", 1, quality=0.4, request_id="x"),
        call("b", "b2", 2, quality=0.4, request_id="y"),
        call("c", "c1", 3, quality=0.3),
    ])
    scores = pd.DataFrame([
        {"trace_id": "a", "span_id": "a1", "value": 0.35, "created_at": 1},  # names an LLM span: that attempt
        {"trace_id": "b", "span_id": "", "value": 0.1, "created_at": 1},  # older trace-level score
        {"trace_id": "b", "span_id": "root", "value": 0.95, "created_at": 2},  # on a non-LLM span: the whole trace
    ])
    table = build_requests(spans, scores)
    req, att = table.requests, table.attempts
    by_trace = {t: g for t, g in req.groupby("trace_id")}
    assert list(by_trace["a"]["actual_quality"]) == [0.5]  # the last attempt kept its own quality
    assert att.loc[(att["request"] == by_trace["a"].index[0]) & (att["attempt"] == 1), "quality"].item() == 0.35
    assert list(by_trace["b"]["actual_quality"]) == [0.95, 0.95]  # the latest trace-level score, on both requests
    assert list(by_trace["c"]["actual_quality"]) == [0.3]


def test_dimensions_attributes_and_keywords_per_request() -> None:
    spans = pd.DataFrame([
        call("a", "a1", 0, user_id="", **{"attr:app.plan": "", "kw:[\"refund\"]": False}),
        call("a", "a2", 1, user_id="alice", **{"attr:app.plan": "pro", "kw:[\"refund\"]": True}),
    ])
    table = build_requests(spans)
    row = table.requests.iloc[0]
    assert row["user_id"] == "alice"  # the first non-empty value
    assert row["attr:app.plan"] == "pro"
    assert bool(row['kw:["refund"]']) is True


def test_bad_input_is_refused_clearly_and_empty_input_gives_an_empty_table() -> None:
    with pytest.raises(ValueError, match="span rows lack the columns quality"):
        build_requests(pd.DataFrame([call("a", "a1", 0)]).drop(columns=["quality"]))
    with pytest.raises(ValueError, match="score rows lack the columns value"):
        build_requests(pd.DataFrame([call("a", "a1", 0)]), pd.DataFrame({"trace_id": ["a"], "span_id": [""]}))
    empty = build_requests(pd.DataFrame(columns=list(SPAN_COLUMNS)))
    assert empty.n == 0 and len(empty.attempts) == 0
    assert "actual_cost_total" in empty.requests.columns
