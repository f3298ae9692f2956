"""Real instrumentation libraries end to end: their spans, through OTLP, into the spans table.

Each test starts the fake LLM provider (``tests/ingest/clients/fake_provider.py``, fixed
realistic usage), runs one instrumentation flavour in a subprocess
(``tests/ingest/clients/run_instrumented.py``: the real openai / anthropic client wrapped by
the real instrumentor, exporting with the real OTLP exporter) against ``live_server`` (one
run goes to the OTLP/gRPC receiver instead), and reads back what ClickHouse stored. The normalized columns must be
DESIGN.md §4's token semantics exactly, priced at the shipped catalog's rates, attributed
through each library's own association mechanism; and a call that reaches us twice (an
instrumentor's span plus the Anthropic SDK's own span) must be stored twice but counted once,
in ``spans`` and in the ``usage_hourly`` rollup. ``CAPTURED.md`` next to the harness
documents what every flavour emits; comments below cite it where a library leaves a number
out.

Ground truth (the fake provider's usage):

- OpenAI: 1200 prompt tokens (1000 cached), 900 completion tokens (640 reasoning) →
  input 1200, cache_read 1000, cache_write 0, output 900, reasoning 640.
- Anthropic (raw API shape): input 300 without cache, cache_read 2000, cache_creation 500,
  output 1500 → input 2800, cache_read 2000, cache_write 500, output 1500; reasoning is not
  reported (older API shape) and is estimated from the thinking text where a library
  captured it, or reported as 1100 thinking tokens (newer API shape) where the fake says so.

Each flavour runs its non-streaming and its streaming variant at the same time (two
subprocesses: most of their time is interpreter and library start-up). ``none-openai`` is
left out: the openai client emits no spans of its own, so it has nothing to store.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from ingest import catalog_loader
from ingest.normalize import estimate_tokens
from ingest.pricing import Rates, price
from tests.ingest.clients.fake_provider import ANTHROPIC_THINKING_TEXT, FakeProvider
from tests.ingest.clients.run_instrumented import run_in_subprocess
from tests.ingest.otlp_builders import counted_sums, rollup_sums

# The catalog a data migration loads is flushed after each transactional test; serialized
# rollback puts it back before the next one.
pytestmark = pytest.mark.django_db(transaction=True)

# Association properties, set through each library's mechanism (see run_instrumented.py).
# Tier 3 differs from both models' catalog tier (2), so a tier of 3 proves it came from the span.
ASSOCIATION_ARGS = ("--task-type", "code_review", "--tier", "3", "--user-id", "u-42", "--session-id", "s-7")
ASSOCIATED = {"task_type": "code_review", "tier": 3, "user_id": "u-42", "session_id": "s-7"}

OPENAI = {
    "provider": "openai", "model": "o3-mini-2025-01-31", "request_model": "o3-mini",
    "input_tokens": 1200, "cache_read_tokens": 1000, "cache_write_tokens": 0,
    "output_tokens": 900, "reasoning_tokens": 640, "reasoning_estimated": False,
}
ANTHROPIC = {
    "provider": "anthropic", "model": "claude-sonnet-4-5-20250929", "request_model": "claude-sonnet-4-5",
    "input_tokens": 2800,  # 300 uncached + 2000 cache reads + 500 cache writes
    "cache_read_tokens": 2000, "cache_write_tokens": 500, "output_tokens": 1500,
}
# Estimated from the full thinking text the fake sends (2536 characters), never above output.
ESTIMATED_THINKING = estimate_tokens(ANTHROPIC_THINKING_TEXT)
REPORTED_THINKING = 1100  # FakeProvider(anthropic_report_thinking_tokens=True)
THINKING_BUDGET = 2048
CATALOG_MODEL = {"openai": "o3-mini", "anthropic": "claude-sonnet-4-5"}  # shipped catalog entries

# The exporter gives up (and drops the spans) after 10 s by default; the first request to a
# fresh live_server on a busy 2-core machine can take longer than that.
EXPORT_ENV = {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "60"}
SDK_SCOPE = "com.anthropic.sdk.python"
COLUMNS = (
    "name, instrumentation, trace_id, span_id, parent_span_id, duration_ns, provider, model, request_model, "
    "operation, task_type, tier, user_id, session_id, response_id, thinking_budget, reasoning_effort, ttft_ms, "
    "input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, reasoning_estimated, "
    "has_usage, counted, cost_input, cost_cache_read, cost_cache_write, cost_output_visible, cost_reasoning, "
    "cost_total, reported_cost, price_id, priced, mapContains(attributes, 'gen_ai.response.id') AS has_id_attribute"
)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def shipped_catalog_restored(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Leave the shipped price catalog loaded for the modules that run after this one."""
    yield
    from ingest import catalog, catalog_loader
    from ingest.models import ModelPrice

    with django_db_blocker.unblock():
        if not ModelPrice.objects.filter(project=None).exists():
            catalog_loader.load(catalog_loader.read())
        catalog.invalidate()


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """The fake provider in its default shape (Anthropic thinking tokens not reported)."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture(scope="module")
def thinking_provider() -> Iterator[FakeProvider]:
    """The fake provider answering in the newer Anthropic shape (thinking tokens reported)."""
    with FakeProvider(anthropic_report_thinking_tokens=True) as fake:
        # Both fakes number their messages from 1; a response id seen twice would (rightly) be
        # deduplicated as one call, so this one's ids start far above the other's.
        for _ in range(100_000):
            fake.next_id("messages")
        yield fake


@dataclass(frozen=True)
class Target:
    """Where the subprocesses export to, and whose data to read back."""

    endpoint: str
    key: str
    project_id: int


@pytest.fixture
def target(live_server: Any, ch: ModuleType, project: Any, project_key: str) -> Target:
    from ingest import catalog

    catalog.invalidate()  # the database was flushed and restored: do not trust the in-memory snapshot
    return Target(live_server.url + "/v1/traces", project_key, project.pk)


# --- helpers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One subprocess run of a flavour."""

    flavour: str
    provider: FakeProvider
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    endpoint: str | None = None  # default: the target's OTLP/HTTP endpoint


def run_all(target: Target, *runs: Run) -> list[dict[str, Any]]:
    """Run the flavours concurrently; return their summaries, after checking every export succeeded."""

    def one(run: Run) -> dict[str, Any]:
        return run_in_subprocess(
            run.flavour, run.provider.base_url, run.endpoint or target.endpoint, target.key,
            *ASSOCIATION_ARGS, *run.args, env={**EXPORT_ENV, **(run.env or {})},
        )

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        summaries = list(pool.map(one, runs))
    for summary in summaries:
        assert summary["export_results"] and set(summary["export_results"]) == {"SUCCESS"}, summary
        assert summary["spans_exported"] == summary["spans_finished"], summary
    return summaries


def stored(target: Target) -> list[dict[str, Any]]:
    from thinkmeter import clickhouse

    return clickhouse.execute(
        f"SELECT {COLUMNS} FROM spans WHERE project_id IN {clickhouse.PROJECT_PARAM} ORDER BY start_time, span_id",
        tag="tests.instrumentors", projects=target.project_id,
    )


def rows_for(rows: list[dict[str, Any]], response_id: str) -> list[dict[str, Any]]:
    found = [r for r in rows if r["response_id"] == response_id]
    assert found, f"no stored span has response_id {response_id!r}; stored: {[r['response_id'] for r in rows]}"
    return found


def requests_of(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every provider request the runs made: api, stream, response_id."""
    return [request for summary in summaries for request in summary["requests"]]


Row = dict[str, Any]


def sdk_pairs(target: Target, summaries: list[dict[str, Any]], scope: str) -> list[tuple[Row, Row, Row]]:
    """(request, instrumentor's row, Anthropic SDK's row) per provider request, after checking that
    every call was stored exactly twice: once by the instrumentation ``scope``, once by the SDK."""
    rows = stored(target)
    requests = requests_of(summaries)
    assert len(rows) == 2 * len(requests)
    pairs = []
    for request in requests:
        pair = rows_for(rows, request["response_id"])
        by_scope = {row["instrumentation"]: row for row in pair}
        assert len(pair) == 2 and set(by_scope) == {scope, SDK_SCOPE}, pair
        pairs.append((request, by_scope[scope], by_scope[SDK_SCOPE]))
    return pairs


def catalog_rates(provider: str, day: date) -> Rates:
    """The shipped catalog's rates for the provider's test model on ``day``, read from the JSON file
    (not through the matcher under test), with the database id of that rate period."""
    from ingest.models import PriceRate

    model = CATALOG_MODEL[provider]
    entry = next(m for m in catalog_loader.read()["models"] if m["model"] == model)
    period = next(
        p for p in entry["prices"]
        if date.fromisoformat(p["effective_from"]) <= day
        and (p["effective_to"] is None or day < date.fromisoformat(p["effective_to"]))
    )

    def dec(value: Any) -> Decimal | None:
        return None if value in (None, "") else Decimal(str(value))

    rate_id = PriceRate.objects.get(
        model_price__project=None, model_price__model=model, effective_from=period["effective_from"]
    ).pk
    return Rates(rate_id, Decimal(period["input"]), Decimal(period["output"]), dec(period["cache_read"]),
                 dec(period["cache_write"]), dec(period["reasoning"]))


def check_row(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every expected column exactly, and the cost: the catalog price of the row's tokens."""
    where = f"span {row['name']!r} ({row['instrumentation']}, response {row['response_id']!r})"
    actual = {column: row[column] for column in expected}
    assert actual == expected, f"{where}: stored {actual}, expected {expected}"
    assert row["has_usage"] and row["priced"], f"{where}: has_usage={row['has_usage']} priced={row['priced']}"
    rates = catalog_rates(row["provider"], date.today())
    cost = price(rates, row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"],
                 row["output_tokens"], row["reasoning_tokens"])
    stored_cost = {part: row[f"cost_{part}"] for part in ("input", "cache_read", "cache_write", "output_visible",
                                                             "reasoning", "total")}
    expected_cost = {"input": cost.input, "cache_read": cost.cache_read, "cache_write": cost.cache_write,
                     "output_visible": cost.output_visible, "reasoning": cost.reasoning, "total": cost.total}
    assert stored_cost == expected_cost, f"{where}: cost {stored_cost}, catalog price {expected_cost}"
    assert row["cost_total"] > 0, where
    assert row["price_id"] == rates.price_id, f"{where}: priced with rate {row['price_id']}, not {rates.price_id}"


def check_ttft(row: dict[str, Any], streamed: bool) -> None:
    """Streamed: a time to first token within the span; not streamed: none (0)."""
    where = f"span {row['name']!r} ({row['instrumentation']})"
    if streamed:
        assert 0 < row["ttft_ms"] <= row["duration_ns"] / 1e6, f"{where}: ttft {row['ttft_ms']} ms"
    else:
        assert row["ttft_ms"] == 0, f"{where}: a non-streamed call has no TTFT, got {row['ttft_ms']} ms"


def check_sums(target: Target, calls: int, expected_rows: list[dict[str, Any]]) -> None:
    """The counted rows are one per call and the sums (spans and usage_hourly) add up to them."""
    columns = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
               "cost_total")
    expected = {c: sum(r[c] for r in expected_rows) for c in columns}
    spans = counted_sums(target.project_id)
    hourly = rollup_sums(target.project_id, "usage_hourly")
    assert spans["requests"] == calls, f"{spans['requests']} counted spans for {calls} provider calls"
    assert hourly["requests"] == calls, f"usage_hourly counts {hourly['requests']} requests for {calls} calls"
    assert {c: spans[c] for c in columns} == expected
    assert {c: hourly[c] for c in columns} == expected


# --- OpenAI flavours -------------------------------------------------------------------


def test_openllmetry_openai(provider: FakeProvider, target: Target) -> None:
    summaries = run_all(target, Run("openllmetry-openai", provider), Run("openllmetry-openai", provider, ("--stream",)))
    rows = stored(target)
    requests = requests_of(summaries)
    assert len(rows) == len(requests) == 4  # chat + Responses, streamed and not
    for request in requests:
        [row] = rows_for(rows, request["response_id"])
        expected = {**OPENAI, **ASSOCIATED, "operation": "chat", "reasoning_effort": "high",
                    "instrumentation": "opentelemetry.instrumentation.openai.v1", "counted": 1}
        if request["api"] == "chat.completions" and request["stream"]:
            # OpenLLMetry leaves gen_ai.usage.reasoning_tokens off streamed chat spans (CAPTURED.md):
            # unknown, so 0, and the 640 reasoning tokens are priced as visible output (same rate).
            expected["reasoning_tokens"] = 0
        check_row(row, expected)
        check_ttft(row, streamed=False)  # OpenLLMetry reports no TTFT, streamed or not
    check_sums(target, 4, rows)


def test_openinference_openai(provider: FakeProvider, target: Target) -> None:
    summaries = run_all(
        target, Run("openinference-openai", provider), Run("openinference-openai", provider, ("--stream",))
    )
    rows = stored(target)
    requests = requests_of(summaries)
    assert len(rows) == len(requests) == 4
    for request in requests:
        [row] = rows_for(rows, request["response_id"])
        # OpenInference: operation from openinference.span.kind (LLM); llm.model_name is the response
        # model, the requested one only inside llm.invocation_parameters; task type and tier from
        # its `metadata` JSON; reasoning in llm.token_count.completion_details.reasoning, streamed too.
        check_row(row, {**OPENAI, **ASSOCIATED, "operation": "llm", "reasoning_effort": "high",
                        "instrumentation": "openinference.instrumentation.openai", "counted": 1})
        # The response id exists only inside the captured output.value JSON, not as an attribute.
        assert not row["has_id_attribute"], row
        # TTFT: the "First Token Stream Event" on streamed spans, nothing otherwise.
        check_ttft(row, streamed=request["stream"])
    check_sums(target, 4, rows)


def test_openlit_openai(provider: FakeProvider, target: Target) -> None:
    assert importlib.util.find_spec("openlit") is not None, (
        "openlit is not installed: `pip install --no-deps openlit==1.45.0` (make install does it)"
    )
    summaries = run_all(target, Run("openlit", provider), Run("openlit", provider, ("--stream",)))
    rows = stored(target)
    requests = requests_of(summaries)
    assert len(rows) == len(requests) == 4
    for request in requests:
        [row] = rows_for(rows, request["response_id"])
        expected = {**OPENAI, **ASSOCIATED, "operation": "chat", "reasoning_effort": "high",
                    "instrumentation": "openlit.instrumentation.openai", "counted": 1}
        if request["api"] == "chat.completions":
            # OpenLIT never reports reasoning tokens nor the reasoning effort on chat-completions spans
            # (only on Responses spans; CAPTURED.md): reasoning 0, effort unknown.
            expected.update(reasoning_tokens=0, reasoning_effort="")
        check_row(row, expected)
        # OpenLIT's own price (its price list is the catalog's o3-mini rates here) is kept beside ours.
        assert row["reported_cost"] == row["cost_total"], row
        # gen_ai.server.time_to_first_token is also set on non-streamed spans (the whole latency):
        # only a streamed span has a TTFT.
        check_ttft(row, streamed=request["stream"])
    check_sums(target, 4, rows)


def test_openai_v2(provider: FakeProvider, target: Target) -> None:
    summaries = run_all(target, Run("openai-v2", provider), Run("openai-v2", provider, ("--stream",)))
    rows = stored(target)
    requests = requests_of(summaries)
    chat = [r for r in requests if r["api"] == "chat.completions"]
    # openai-v2 2.4b0 does not instrument the Responses API: those calls produce no span at all.
    assert len(rows) == len(chat) == 2
    assert not [r for r in rows if r["response_id"].startswith("resp_")]
    for request in chat:
        [row] = rows_for(rows, request["response_id"])
        # openai-v2 reports input and output tokens only (CAPTURED.md): no cached tokens, no reasoning,
        # no effort, no TTFT. Cache reads 0 means the 1000 cached tokens are priced at the input rate.
        check_row(row, {**OPENAI, **ASSOCIATED, "cache_read_tokens": 0, "reasoning_tokens": 0, "operation": "chat",
                        "reasoning_effort": "", "instrumentation": "opentelemetry.util.genai.handler",
                        "counted": 1})
        check_ttft(row, streamed=False)
    check_sums(target, 2, rows)


# --- Anthropic flavours ---------------------------------------------------------------


def test_anthropic_sdk_own_spans(provider: FakeProvider, thinking_provider: FakeProvider, target: Target) -> None:
    """The anthropic SDK's own span, alone (no instrumentor): thinking estimated from the thinking
    text when the SDK captures content, or reported by the newer API shape."""
    summaries = run_all(
        target,
        Run("none-anthropic", provider, env={"ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"}),
        Run("none-anthropic", thinking_provider, ("--stream",)),
    )
    rows = stored(target)
    (captured,), (reported,) = (summary["requests"] for summary in summaries)
    assert len(rows) == 2
    base = {**ANTHROPIC, **ASSOCIATED, "operation": "chat", "instrumentation": SDK_SCOPE,
            "thinking_budget": THINKING_BUDGET, "counted": 1}
    [row] = rows_for(rows, captured["response_id"])
    # Not reported; in content mode the SDK captures the thinking, in full, as a "reasoning" output
    # part (non-streamed calls only: a streamed span carries no output messages).
    check_row(row, {**base, "reasoning_tokens": ESTIMATED_THINKING, "reasoning_estimated": True})
    assert 0 < row["reasoning_tokens"] <= row["output_tokens"]
    check_ttft(row, streamed=False)
    [row] = rows_for(rows, reported["response_id"])
    # usage.output_tokens_details.thinking_tokens → gen_ai.usage.reasoning.output_tokens: exact.
    check_row(row, {**base, "reasoning_tokens": REPORTED_THINKING, "reasoning_estimated": False})
    check_ttft(row, streamed=True)  # gen_ai.response.time_to_first_chunk
    check_sums(target, 2, rows)


def test_openllmetry_anthropic_with_sdk_spans_counts_once(provider: FakeProvider, target: Target) -> None:
    """Two calls over OTLP/HTTP, one streamed call over OTLP/gRPC (the exporter's `authorization`
    metadata): every call stored twice, counted once."""
    from ingest.grpc_server import start_receiver

    receiver = start_receiver("127.0.0.1:0", workers=2)
    try:
        summaries = run_all(
            target,
            Run("openllmetry-anthropic", provider, ("--calls", "2")),
            Run("openllmetry-anthropic", provider, ("--stream", "--protocol", "grpc"),
                endpoint=f"http://127.0.0.1:{receiver.port}"),
        )
    finally:
        receiver.server.stop(0).wait()
    assert [s["protocol"] for s in summaries] == ["http", "grpc"]
    # Each call: OpenLLMetry's span and the SDK's, roots of two traces; both stored, counted once.
    pairs = sdk_pairs(target, summaries, "opentelemetry.instrumentation.anthropic")
    counted = []
    for request, ours, sdk in pairs:
        assert ours["trace_id"] != sdk["trace_id"] and not ours["parent_span_id"] and not sdk["parent_span_id"]
        # OpenLLMetry: input already includes the cache (2800); the thinking text is captured in full
        # as a "reasoning" output part, so reasoning is estimated from it. Streamed, it adds
        # message_start's output count to message_delta's: 1501 (CAPTURED.md rule 5).
        check_row(ours, {**ANTHROPIC, **ASSOCIATED, "output_tokens": 1501 if request["stream"] else 1500,
                         "reasoning_tokens": ESTIMATED_THINKING, "reasoning_estimated": True,
                         "thinking_budget": 0, "operation": "chat"})
        assert 0 < ours["reasoning_tokens"] <= ours["output_tokens"]
        check_ttft(ours, streamed=False)  # OpenLLMetry reports no TTFT
        # The SDK's span: exact numbers and the budget, but (default content mode) no thinking text.
        check_row(sdk, {**ANTHROPIC, **ASSOCIATED, "reasoning_tokens": 0, "reasoning_estimated": False,
                        "thinking_budget": THINKING_BUDGET, "operation": "chat"})
        check_ttft(sdk, streamed=request["stream"])
        assert ours["counted"] + sdk["counted"] == 1, f"response {request['response_id']} counted twice or never"
        counted += [r for r in (ours, sdk) if r["counted"]]
    check_sums(target, len(pairs), counted)
    assert sum(r["input_tokens"] for r in counted) == 2800 * len(pairs)


def test_openlit_anthropic_with_sdk_spans_counts_once(provider: FakeProvider, target: Target) -> None:
    assert importlib.util.find_spec("openlit") is not None, (
        "openlit is not installed: `pip install --no-deps openlit==1.45.0` (make install does it)"
    )
    summaries = run_all(
        target,
        Run("openlit-anthropic", provider, ("--calls", "2")),
        Run("openlit-anthropic", provider, ("--stream",)),
    )
    pairs = sdk_pairs(target, summaries, "openlit.instrumentation.anthropic")
    counted = []
    for request, ours, sdk in pairs:
        # One trace: the SDK's span is a child of OpenLIT's.
        assert sdk["trace_id"] == ours["trace_id"] and sdk["parent_span_id"] == ours["span_id"], (ours, sdk)
        # OpenLIT reports Anthropic's raw input (300, without cache) under gen_ai.usage.input_tokens:
        # normalized to 2800. It captures no thinking text (reasoning unknown: 0) and no budget.
        check_row(ours, {**ANTHROPIC, **ASSOCIATED, "reasoning_tokens": 0, "reasoning_estimated": False,
                         "thinking_budget": 0, "operation": "chat"})
        assert ours["reported_cost"] == ours["cost_total"], ours  # OpenLIT's own price agrees (catalog rates)
        check_ttft(ours, streamed=request["stream"])
        check_row(sdk, {**ANTHROPIC, "reasoning_tokens": 0, "reasoning_estimated": False,
                        "thinking_budget": THINKING_BUDGET, "operation": "chat"})
        check_ttft(sdk, streamed=request["stream"])
        # The descendant rule: the parent's usage is the child's, so only the child counts.
        assert (ours["counted"], sdk["counted"]) == (0, 1), (ours, sdk)
        counted.append(sdk)
    check_sums(target, len(pairs), counted)
    assert sum(r["input_tokens"] for r in counted) == 2800 * len(pairs)
