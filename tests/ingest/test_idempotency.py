"""Re-sent batches and doubly reported calls never change a sum (DESIGN.md §4).

Proved where it matters: the sums over ``spans WHERE counted = 1`` and the rollups
``usage_hourly`` / ``usage_daily_users`` that materialized views fill (a view sees every
inserted block, so a duplicate counted at write time would be in a rollup forever).
Sequential re-sends go through Django's test client; concurrent ones through real HTTP
against ``live_server`` from several threads.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from decimal import Decimal
from types import ModuleType
from typing import Any

import httpx
import pytest
from django.test import Client

from tests.ingest.otlp_builders import (
    OPENAI_USAGE,
    counted_sums,
    make_request,
    new_span_id,
    new_trace_id,
    post_otlp,
    rollup_sums,
    span_dict,
    stored_spans,
    to_json_bytes,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def mixed_batch() -> list[dict[str, Any]]:
    """A realistic batch: an agent trace with calls and a tool, an Anthropic call with cache,
    an unpriced model, and an AI SDK parent holding the totals of its two calls."""
    trace_id, agent_id = new_trace_id(), new_span_id()
    ai_trace, ai_root = new_trace_id(), new_span_id()
    steps = [
        span_dict("ai.generateText.doGenerate", trace_id=ai_trace, parent_span_id=ai_root,
                  attributes={"ai.model.provider": "openai.chat", "ai.model.id": "gpt-4o-mini",
                              "ai.usage.inputTokens": inp, "ai.usage.outputTokens": out})
        for inp, out in ((800, 120), (950, 200))
    ]
    return [
        span_dict("agent", trace_id=trace_id, span_id=agent_id, attributes={"agent.name": "triage"}),
        span_dict("chat o3-mini", trace_id=trace_id, parent_span_id=agent_id,
                  attributes={**OPENAI_USAGE, "user.id": "u-1", "thinkmeter.task_type": "triage"}),
        span_dict("tool search", trace_id=trace_id, parent_span_id=agent_id, attributes={"tool.name": "search"}),
        span_dict("chat claude", trace_id=trace_id, parent_span_id=agent_id, attributes={
            "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.id": f"msg_{new_span_id()}", "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.output_tokens": 1500, "gen_ai.usage.cache_read_input_tokens": 2000,
            "gen_ai.usage.cache_creation_input_tokens": 500, "gen_ai.usage.reasoning_tokens": 700,
            "user.id": "u-2",
        }),
        span_dict("chat mystery", attributes={"gen_ai.system": "acme", "gen_ai.request.model": "acme-unknown-1",
                                              "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}),
        span_dict("ai.generateText", trace_id=ai_trace, span_id=ai_root,
                  attributes={"ai.model.provider": "openai.chat", "ai.model.id": "gpt-4o-mini",
                              "ai.usage.inputTokens": 1750, "ai.usage.outputTokens": 320}),
        *steps,
    ]


EXPECTED_CALLS = 5  # o3-mini, claude, unpriced, two AI SDK steps (not the AI SDK parent)


def all_sums(project_id: int) -> dict[str, dict[str, Any]]:
    return {
        "spans": counted_sums(project_id),
        "usage_hourly": rollup_sums(project_id, "usage_hourly"),
        "usage_daily_users": rollup_sums(project_id, "usage_daily_users"),
    }


def assert_consistent(sums: dict[str, dict[str, Any]], calls: int) -> None:
    """The raw counted sums and both rollups agree, and hold ``calls`` calls."""
    for name, values in sums.items():
        assert values["requests"] == calls, name
        assert values == sums["spans"], name
    assert sums["spans"]["cost_total"] > Decimal(0)


@pytest.mark.django_db
def test_the_same_batch_three_times_changes_no_sum(client: Client, ch: ModuleType, project: Any,
                                                   project_key: str) -> None:
    body = make_request(mixed_batch()).SerializeToString()
    assert post_otlp(client, body, project_key).status_code == 200
    first = all_sums(project.pk)
    assert_consistent(first, EXPECTED_CALLS)
    for _ in range(2):
        assert post_otlp(client, body, project_key).status_code == 200
    assert all_sums(project.pk) == first
    rows = stored_spans(project.pk, "trace_id, span_id")
    assert len({(r["trace_id"], r["span_id"]) for r in rows}) == len(mixed_batch())


@pytest.mark.django_db
def test_a_resend_after_the_dedup_index_evicted_the_batch_is_still_counted_once(
    client: Client, ch: ModuleType, project: Any, project_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-memory index is bounded; what it evicted is checked against ClickHouse instead."""
    from ingest import recent

    monkeypatch.setattr(recent.index, "max_spans", 20)
    batch = mixed_batch()
    body = make_request(batch).SerializeToString()
    assert post_otlp(client, body, project_key).status_code == 200
    first = all_sums(project.pk)
    for _ in range(3):  # newer traffic pushes the first batch out of the index
        assert post_otlp(client, make_request(mixed_batch()).SerializeToString(), project_key).status_code == 200
    assert len(recent.index) <= 20
    first_traces = sorted({span["trace_id"] for span in batch})
    starts = {r["trace_id"]: r["s"] for r in stored_spans(project.pk, "trace_id, toUnixTimestamp64Nano(start_time) AS s")}
    assert recent.index.known(project.pk, first_traces) == []  # evicted
    to_check, _ = recent.index.to_check(project.pk, first_traces, [starts[t] for t in first_traces],
                                        [("", "")] * len(first_traces))
    assert sorted(to_check) == first_traces  # seen before: the writer asks ClickHouse about the resend
    before_resend = all_sums(project.pk)
    assert before_resend != first
    assert post_otlp(client, body, project_key).status_code == 200
    assert all_sums(project.pk) == before_resend


def dedup_lookups() -> float:
    from prometheus_client import REGISTRY

    return sum(REGISTRY.get_sample_value("thinkmeter_clickhouse_query_seconds_count", {"tag": tag}) or 0.0
               for tag in ("ingest.dedup.spans", "ingest.dedup.responses"))


@pytest.mark.django_db
def test_new_traces_older_than_the_index_need_no_clickhouse_lookup(
    client: Client, ch: ModuleType, project: Any, project_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans exported minutes after they started are the common case: the trace filter
    knows they are new, so the writer does not ask ClickHouse, and they are counted."""
    from ingest import recent

    monkeypatch.setattr(recent.index, "max_spans", 20)
    for _ in range(4):  # evictions move the exact index's horizon up to now
        assert post_otlp(client, make_request(mixed_batch()).SerializeToString(), project_key).status_code == 200
    before_sums, before_lookups = all_sums(project.pk), dedup_lookups()
    ten_minutes_ago = time.time_ns() - 600 * 10**9
    late = [span_dict("chat", attributes={"gen_ai.system": "openai", "gen_ai.request.model": "o3-mini",
                                          "gen_ai.response.id": f"chatcmpl-late-{n}", **OPENAI_USAGE},
                      start_ns=ten_minutes_ago + n) for n in range(3)]
    assert post_otlp(client, make_request(late).SerializeToString(), project_key).status_code == 200
    assert dedup_lookups() == before_lookups
    assert all_sums(project.pk)["spans"]["requests"] == before_sums["spans"]["requests"] + 3


@pytest.mark.django_db
def test_a_resend_in_another_encoding_is_still_the_same_spans(client: Client, ch: ModuleType, project: Any,
                                                              project_key: str) -> None:
    """Identity is (trace, span), not the bytes: protobuf, then JSON, then gzipped JSON."""
    request = make_request(mixed_batch())
    assert post_otlp(client, request.SerializeToString(), project_key).status_code == 200
    first = all_sums(project.pk)
    assert post_otlp(client, to_json_bytes(request), project_key, JSON).status_code == 200
    assert post_otlp(client, gzip.compress(to_json_bytes(request)), project_key, JSON, "gzip").status_code == 200
    assert all_sums(project.pk) == first


@pytest.mark.django_db
def test_a_batch_overlapping_an_earlier_one_adds_only_its_new_calls(
    client: Client, ch: ModuleType, project: Any, project_key: str
) -> None:
    old = [span_dict(attributes=OPENAI_USAGE) for _ in range(3)]
    new = [span_dict(attributes=OPENAI_USAGE) for _ in range(2)]
    post_otlp(client, make_request(old).SerializeToString(), project_key)
    post_otlp(client, make_request(old[1:] + new).SerializeToString(), project_key)  # a retry with more spans
    sums = all_sums(project.pk)
    assert_consistent(sums, 5)
    per_call = OPENAI_USAGE["gen_ai.usage.input_tokens"]
    assert isinstance(per_call, int)
    assert sums["spans"]["input_tokens"] == 5 * per_call


@pytest.mark.django_db
def test_sums_are_unchanged_after_clickhouse_merges_the_duplicates(
    client: Client, ch: ModuleType, project: Any, project_key: str
) -> None:
    batch = mixed_batch()
    body = make_request(batch).SerializeToString()
    for _ in range(3):
        post_otlp(client, body, project_key)
    before = all_sums(project.pk)
    ch.execute("OPTIMIZE TABLE spans FINAL", tag="tests.merge", system=True)
    rows = stored_spans(project.pk, "span_id, counted, has_usage")
    assert len(rows) == len(batch)  # ReplacingMergeTree collapsed the copies...
    assert sum(r["counted"] for r in rows) == EXPECTED_CALLS  # ...keeping the counted version
    assert all_sums(project.pk) == before


def openllmetry_span(response_id: str) -> dict[str, Any]:
    """opentelemetry-instrumentation-openai (OpenLLMetry) attributes for one chat completion."""
    return span_dict("openai.chat", attributes={
        "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "o3-mini",
        "gen_ai.response.model": "o3-mini-2025-01-31", "gen_ai.response.id": response_id,
        "gen_ai.usage.prompt_tokens": 1500, "gen_ai.usage.completion_tokens": 2200,
        "gen_ai.usage.reasoning_tokens": 1800, "gen_ai.usage.cache_read_input_tokens": 1024,
        "llm.usage.total_tokens": 3700, "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Prove it.",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Done.",
    })


def openinference_span(response_id: str) -> dict[str, Any]:
    """openinference-instrumentation-openai: the response id only inside output.value."""
    output = {"id": response_id, "object": "chat.completion", "model": "o3-mini-2025-01-31",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}}],
              "usage": {"prompt_tokens": 1500, "completion_tokens": 2200, "total_tokens": 3700}}
    return span_dict("ChatCompletion", attributes={
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.system": "openai",
        "llm.model_name": "o3-mini-2025-01-31", "llm.token_count.prompt": 1500,
        "llm.token_count.completion": 2200, "llm.token_count.total": 3700,
        "llm.token_count.completion_details.reasoning": 1800, "llm.token_count.prompt_details.cache_read": 1024,
        "llm.invocation_parameters": json.dumps({"model": "o3-mini", "reasoning_effort": "high"}),
        "input.value": json.dumps({"messages": [{"role": "user", "content": "Prove it."}]}),
        "input.mime_type": "application/json", "output.value": json.dumps(output),
        "output.mime_type": "application/json",
    })


@pytest.mark.django_db
@pytest.mark.parametrize("arrival", ["one request", "openllmetry first", "openinference first"])
def test_one_provider_response_reported_by_two_instrumentations_counts_once(
    client: Client, ch: ModuleType, project: Any, project_key: str, arrival: str
) -> None:
    response_id = f"chatcmpl-{new_span_id()}{new_span_id()}"
    a, b = openllmetry_span(response_id), openinference_span(response_id)
    assert a["trace_id"] != b["trace_id"]
    if arrival == "one request":
        batches = [[a, b]]
    elif arrival == "openllmetry first":
        batches = [[a], [b]]
    else:
        batches = [[b], [a]]
    for spans in batches:
        assert post_otlp(client, make_request(spans).SerializeToString(), project_key).status_code == 200
    rows = stored_spans(project.pk, "span_id, response_id, counted, input_tokens, output_tokens, reasoning_tokens")
    assert {r["span_id"] for r in rows} == {a["span_id"], b["span_id"]}  # both kept for the trace view
    assert {r["response_id"] for r in rows} == {response_id}
    assert all((r["input_tokens"], r["output_tokens"], r["reasoning_tokens"]) == (1500, 2200, 1800) for r in rows)
    assert sorted(r["counted"] for r in rows) == [0, 1]
    sums = all_sums(project.pk)
    assert_consistent(sums, 1)
    assert (sums["spans"]["input_tokens"], sums["spans"]["reasoning_tokens"]) == (1500, 1800)


# --- concurrent re-sends over real HTTP -------------------------------------------------------


def send_concurrently(url: str, key: str, bodies: list[bytes], threads: int) -> list[int]:
    """Every thread sends every body (in its own order); returns all status codes."""
    codes: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run(offset: int) -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            order = bodies[offset % len(bodies):] + bodies[: offset % len(bodies)]
            for body in order:
                response = http.post(url, content=body, headers={
                    "Content-Type": PROTOBUF, "Authorization": f"Bearer {key}"})
                with lock:
                    codes.append(response.status_code)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return codes


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_batches_count_once(live_server: Any, ch: ModuleType, project: Any,
                                                 project_key: str) -> None:
    batches = [mixed_batch() for _ in range(3)]
    bodies = [make_request(batch).SerializeToString() for batch in batches]
    codes = send_concurrently(live_server.url + "/v1/traces", project_key, bodies * 2, threads=4)
    assert codes == [200] * (4 * 6)
    sums = all_sums(project.pk)
    assert_consistent(sums, 3 * EXPECTED_CALLS)
    rows = stored_spans(project.pk, "trace_id, span_id, counted")
    identities = {(r["trace_id"], r["span_id"]) for r in rows}
    assert len(identities) == sum(len(b) for b in batches)
    assert sum(r["counted"] for r in rows) == 3 * EXPECTED_CALLS  # one counted row per call, however many copies


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_instrumentation_counts_once(live_server: Any, ch: ModuleType, project: Any,
                                                       project_key: str) -> None:
    pairs = []
    for _ in range(3):
        response_id = f"chatcmpl-{new_span_id()}{new_span_id()}"
        pairs.append((openllmetry_span(response_id), openinference_span(response_id)))
    bodies = [make_request([a]).SerializeToString() for a, _ in pairs]
    bodies += [make_request([b]).SerializeToString() for _, b in pairs]
    codes = send_concurrently(live_server.url + "/v1/traces", project_key, bodies, threads=4)
    assert codes == [200] * (4 * len(bodies))
    assert_consistent(all_sums(project.pk), len(pairs))
    assert len({r["span_id"] for r in stored_spans(project.pk, "span_id")}) == 2 * len(pairs)
