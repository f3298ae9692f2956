"""Normalization of one span into Thinkmeter's columns (DESIGN.md §4): pure, no database.

Covers every alias of every concept in the attribute table, span-before-resource
precedence, integers as strings, provider and model canonicalisation, the provider
token semantics (OpenAI, Gemini, Anthropic raw vs OTel-convention, the AI SDK 5/6
shapes), Anthropic thinking estimation, and what is kept in the attribute maps.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ingest import aliases
from ingest.decode import DecodedSpan
from ingest.normalize import (
    CHARS_PER_TOKEN,
    MAX_ATTRIBUTE_CHARS,
    TRUNCATION_MARKER,
    Normalized,
    canonical_model,
    canonical_provider,
    normalize,
)


def span(
    attributes: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    scope: str = "tests",
    name: str = "chat",
) -> DecodedSpan:
    return DecodedSpan(
        trace_id="ab" * 16, span_id="cd" * 8, parent_span_id="", name=name, kind="client",
        start_ns=1_760_000_000_000_000_000, end_ns=1_760_000_001_000_000_000, status="unset", status_message="",
        attributes=dict(attributes or {}), resource=dict(resource or {}), scope=scope, events=list(events or []),
    )


def norm(attributes: dict[str, Any] | None = None, **kwargs: Any) -> Normalized:
    return normalize(span(attributes, **kwargs))


# --- every alias of every concept --------------------------------------------------------

# concept → (the aliases DESIGN.md §4 lists, in order; Normalized field; value to send; expected)
TABLE: dict[str, tuple[tuple[str, ...], str, Any, Any]] = {
    "provider": (
        ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider"),
        "provider", "openai", "openai",
    ),
    "model": (
        ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model_name", "llm.model_name",
         "ai.response.model", "ai.model.id"),
        "model", "o3-mini", "o3-mini",
    ),
    "operation": (
        ("gen_ai.operation.name", "llm.request.type", "openinference.span.kind", "ai.operationId"),
        "operation", "chat", "chat",
    ),
    "input tokens": (
        ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
         "ai.usage.inputTokens", "ai.usage.promptTokens"),
        "input_tokens", 1234, 1234,
    ),
    "output tokens": (
        ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
         "ai.usage.outputTokens", "ai.usage.completionTokens"),
        "output_tokens", 567, 567,
    ),
    "user": (
        ("user.id", "gen_ai.request.user", "gen_ai.user", "traceloop.association.properties.user_id",
         "ai.telemetry.metadata.userId"),
        "user_id", "u-42", "u-42",
    ),
    "session": (
        ("session.id", "gen_ai.conversation.id", "traceloop.association.properties.session_id"),
        "session_id", "s-7", "s-7",
    ),
    "task type": (
        ("thinkmeter.task_type", "traceloop.association.properties.task_type", "ai.telemetry.metadata.task_type"),
        "task_type", "code_review", "code_review",
    ),
    "tier": (
        ("thinkmeter.tier", "traceloop.association.properties.tier", "ai.telemetry.metadata.tier"),
        "tier", 3, 3,
    ),
    "reasoning effort": (
        ("gen_ai.request.reasoning.level", "gen_ai.request.reasoning_effort", "llm.request.reasoning_effort"),
        "reasoning_effort", "high", "high",
    ),
    "thinking budget": (
        ("thinkmeter.thinking_budget", "anthropic.thinking.budget_tokens"),
        "thinking_budget", 4000, 4000,
    ),
    "reported cost": (
        ("gen_ai.usage.cost", "llm.cost.total", "operation.cost"),
        "reported_cost", 0.0123, "0.012300000",
    ),
}

CASES = [
    pytest.param(key, field, value, expected, id=f"{concept}:{key}")
    for concept, (keys, field, value, expected) in TABLE.items()
    for key in keys
]


@pytest.mark.parametrize(("key", "field", "value", "expected"), CASES)
def test_every_alias_is_recognised(key: str, field: str, value: Any, expected: Any) -> None:
    attributes = {key: value}
    if field == "output_tokens":
        attributes["gen_ai.usage.input_tokens"] = 1  # any usage marks an LLM call
    assert getattr(norm(attributes), field) == expected


@pytest.mark.parametrize("concept", list(TABLE))
def test_first_alias_in_the_table_wins(concept: str) -> None:
    """With every alias present (each with its own value), the one listed first is used."""
    keys, field, value, expected = TABLE[concept]
    attributes: dict[str, Any] = {}
    for rank, key in reversed(list(enumerate(keys))):  # insertion order must not matter
        if isinstance(value, int):
            attributes[key] = value + rank if field != "tier" else min(value + rank, 9)
        elif isinstance(value, float):
            attributes[key] = value + rank
        else:
            attributes[key] = f"{value}{rank}" if rank else value
    result = getattr(norm(attributes), field)
    if field == "provider":  # "openai1" is not a known provider: it stays as sent
        assert result == "openai"
    else:
        assert result == expected


TOKEN_ALIASES = {
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning", "ai.usage.reasoningTokens",
        "ai.usage.outputTokenDetails.reasoningTokens",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read", "ai.usage.cachedInputTokens",
        "ai.usage.inputTokenDetails.cacheReadTokens",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write",
        "ai.usage.inputTokenDetails.cacheWriteTokens",
    ),
}


@pytest.mark.parametrize(
    ("field", "key"), [pytest.param(f, k, id=k) for f, keys in TOKEN_ALIASES.items() for k in keys]
)
def test_every_token_part_alias_is_recognised(field: str, key: str) -> None:
    """Reasoning and cache parts, on an OpenAI call (no provider-specific adjustment)."""
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 3000,
              key: 700})
    assert getattr(n, field) == 700
    assert (n.input_tokens, n.output_tokens) == (5000, 3000)


@pytest.mark.parametrize("field", list(TOKEN_ALIASES))
def test_first_token_part_alias_wins(field: str) -> None:
    keys = TOKEN_ALIASES[field]
    attributes: dict[str, Any] = {"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 9000,
                                  "gen_ai.usage.output_tokens": 9000}
    for rank, key in reversed(list(enumerate(keys))):
        attributes[key] = 100 + rank
    assert getattr(norm(attributes), field) == 100


def test_all_documented_aliases_are_in_the_alias_module() -> None:
    """The table above is DESIGN.md §4; the receiver's own table must contain all of it, in order."""
    module = {
        "provider": aliases.PROVIDER, "model": aliases.MODEL, "operation": aliases.OPERATION,
        "input tokens": aliases.INPUT_TOKENS, "output tokens": aliases.OUTPUT_TOKENS, "user": aliases.USER,
        "session": aliases.SESSION, "task type": aliases.TASK_TYPE, "tier": aliases.TIER,
        "reasoning effort": aliases.REASONING_EFFORT, "thinking budget": aliases.THINKING_BUDGET,
        "reported cost": aliases.REPORTED_COST,
    }
    for concept, (keys, *_rest) in TABLE.items():
        listed = [k for k in module[concept] if k in keys]
        assert listed == list(keys), concept
    for field, keys in TOKEN_ALIASES.items():
        table = {"reasoning_tokens": aliases.REASONING_TOKENS, "cache_read_tokens": aliases.CACHE_READ,
                 "cache_write_tokens": aliases.CACHE_WRITE}[field]
        assert [k for k in table if k in keys] == list(keys), field


# --- time to first token ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "ms"),
    [
        ("gen_ai.response.time_to_first_chunk", 0.25, 250.0),
        ("gen_ai.server.time_to_first_token", 1.5, 1500.0),
        ("ai.response.msToFirstChunk", 812.5, 812.5),
        ("ai.response.msToFirstChunk", "2612.1", 2612.1),
    ],
)
def test_time_to_first_token_seconds_and_milliseconds(key: str, value: Any, ms: float) -> None:
    assert norm({key: value}).ttft_ms == pytest.approx(ms)


# --- span before resource; integers as strings --------------------------------------------


def test_span_attribute_beats_resource_attribute() -> None:
    n = norm(
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "user.id": "span-user"},
        resource={"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5", "user.id": "res-user",
                  "session.id": "res-session", "thinkmeter.task_type": "from-resource"},
    )
    assert (n.provider, n.model, n.user_id) == ("openai", "gpt-4o", "span-user")
    # Only on the resource: taken from there.
    assert (n.session_id, n.task_type) == ("res-session", "from-resource")


def test_a_lower_ranked_span_alias_beats_a_higher_ranked_resource_alias() -> None:
    n = norm({"llm.system": "openai"}, resource={"gen_ai.provider.name": "anthropic"})
    assert n.provider == "openai"


@pytest.mark.parametrize(("value", "expected"), [("1200", 1200), ("1.2e3", 1200), (1200.0, 1200), (" 77 ", 77)])
def test_integers_may_arrive_as_strings_or_floats(value: Any, expected: int) -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": value, "gen_ai.usage.output_tokens": "30",
              "thinkmeter.tier": "2", "thinkmeter.thinking_budget": "4000"})
    assert (n.input_tokens, n.output_tokens, n.tier, n.thinking_budget) == (expected, 30, 2, 4000)


@pytest.mark.parametrize("value", ["lots", "-5", -5, "nan", True])
def test_nonsense_token_counts_are_ignored(value: Any) -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": value, "gen_ai.usage.output_tokens": 10})
    assert n.input_tokens == 0 and n.output_tokens == 10


def test_a_span_without_usage_has_no_usage() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "http.method": "POST"})
    assert not n.has_usage
    assert (n.input_tokens, n.output_tokens, n.reasoning_tokens) == (0, 0, 0)


# --- provider and model names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("openai", "openai"), ("OpenAI", "openai"), ("azure.ai.openai", "openai"), ("az.ai.openai", "openai"),
        ("openai.chat", "openai"), ("openai.responses", "openai"), ("anthropic", "anthropic"),
        ("anthropic.messages", "anthropic"), ("gcp.gemini", "google"), ("gcp.vertex_ai", "google"),
        ("gcp.gen_ai", "google"), ("gemini", "google"), ("google.generative-ai", "google"),
        ("google.vertex.chat", "google"), ("mistral_ai", "mistral"), ("mistral.chat", "mistral"),
        ("x_ai", "xai"), ("xai.chat", "xai"), ("deepseek.chat", "deepseek"), ("cohere", "cohere"), ("", ""),
    ],
)
def test_provider_names_are_canonicalised(sent: str, canonical: str) -> None:
    assert canonical_provider(sent) == canonical


def test_ai_sdk_provider_is_canonicalised_on_the_span() -> None:
    assert norm({"ai.model.provider": "openai.chat"}).provider == "openai"


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("models/gemini-2.5-pro", "gemini-2.5-pro"), ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"), ("o3-mini", "o3-mini"), (" gpt-4o ", "gpt-4o"),
    ],
)
def test_model_prefixes_are_stripped(sent: str, canonical: str) -> None:
    assert canonical_model(sent) == canonical
    assert norm({"gen_ai.request.model": sent}).model == canonical


def test_response_model_wins_and_request_model_is_kept() -> None:
    n = norm({"gen_ai.request.model": "o3-mini", "gen_ai.response.model": "o3-mini-2025-01-31"})
    assert (n.model, n.request_model) == ("o3-mini-2025-01-31", "o3-mini")


def test_missing_provider_is_left_for_the_catalog() -> None:
    """normalize() does not guess; the receiver infers it from the catalog (test_otlp_http)."""
    n = norm({"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 10})
    assert n.provider == "" and n.model == "claude-sonnet-4-5"


# --- provider token semantics -------------------------------------------------------------


def test_openai_reasoning_is_inside_completion_tokens() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 900,
              "gen_ai.usage.reasoning_tokens": 640, "gen_ai.usage.cache_read_input_tokens": 1000})
    assert (n.input_tokens, n.cache_read_tokens, n.output_tokens, n.reasoning_tokens) == (1200, 1000, 900, 640)
    assert not n.reasoning_estimated


def test_gemini_thoughts_are_added_to_output() -> None:
    """Gemini's candidates_token_count excludes thoughts_token_count."""
    n = norm({"gen_ai.system": "gcp.gemini", "gen_ai.request.model": "models/gemini-2.5-pro",
              "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 120,
              "gen_ai.usage.reasoning_tokens": 880})
    assert (n.provider, n.model) == ("google", "gemini-2.5-pro")
    assert (n.output_tokens, n.reasoning_tokens) == (1000, 880)


def test_gemini_output_that_already_matches_the_total_is_not_added_to() -> None:
    """total = prompt + output says the output count already holds the thoughts."""
    n = norm({"gen_ai.system": "gemini", "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 1000,
              "gen_ai.usage.reasoning_tokens": 880, "gen_ai.usage.total_tokens": 1300})
    assert (n.output_tokens, n.reasoning_tokens) == (1000, 880)


def test_gemini_through_ai_sdk_6_totals_are_not_added_to() -> None:
    """AI SDK 6 reports outputTokens as the total and breaks it down in outputTokenDetails."""
    n = norm({"ai.model.provider": "google.generative-ai", "ai.model.id": "gemini-2.5-flash",
              "ai.usage.inputTokens": 300, "ai.usage.outputTokens": 1000,
              "ai.usage.outputTokenDetails.textTokens": 120, "ai.usage.outputTokenDetails.reasoningTokens": 880,
              "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 1000})
    assert (n.output_tokens, n.reasoning_tokens) == (1000, 880)


def test_gemini_through_ai_sdk_5_thoughts_are_added() -> None:
    """AI SDK 5 passed Gemini's candidates count through as outputTokens."""
    n = norm({"ai.model.provider": "google.generative-ai", "ai.model.id": "gemini-2.5-flash",
              "ai.usage.inputTokens": 300, "ai.usage.outputTokens": 120, "ai.usage.reasoningTokens": 880})
    assert (n.output_tokens, n.reasoning_tokens) == (1000, 880)


def test_anthropic_raw_usage_gets_cache_tokens_added_to_input() -> None:
    """Anthropic's API counts input_tokens without cache reads and writes."""
    n = norm({"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
              "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 400,
              "gen_ai.usage.cache_read_input_tokens": 1000, "gen_ai.usage.cache_creation_input_tokens": 200})
    assert (n.input_tokens, n.cache_read_tokens, n.cache_write_tokens) == (1250, 1000, 200)


def test_anthropic_otel_convention_usage_is_already_inclusive() -> None:
    """OpenLLMetry, Logfire and the Anthropic SDK's own spans already include cache tokens in input."""
    n = norm({"gen_ai.system": "anthropic", "gen_ai.usage.input_tokens": 1250, "gen_ai.usage.output_tokens": 400,
              "gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 200})
    assert (n.input_tokens, n.cache_read_tokens, n.cache_write_tokens) == (1250, 1000, 200)


def test_anthropic_through_ai_sdk_5_is_raw_even_when_input_exceeds_cache() -> None:
    """AI SDK 5 passes Anthropic's raw input_tokens through (and mirrors it in gen_ai.usage.*)."""
    n = norm({"ai.model.provider": "anthropic.messages", "ai.model.id": "claude-sonnet-4-5",
              "ai.usage.inputTokens": 2000, "ai.usage.outputTokens": 300, "ai.usage.cachedInputTokens": 1000,
              "gen_ai.system": "anthropic.messages", "gen_ai.usage.input_tokens": 2000,
              "gen_ai.usage.output_tokens": 300})
    assert (n.provider, n.input_tokens, n.cache_read_tokens) == ("anthropic", 3000, 1000)


def test_anthropic_through_ai_sdk_6_is_already_inclusive() -> None:
    """AI SDK 6: inputTokens is the total, inputTokenDetails breaks it down (a real opencode span's numbers)."""
    attributes = {
        "ai.operationId": "ai.streamText.doStream", "ai.model.id": "claude-sonnet-4-5",
        "ai.model.provider": "anthropic.messages", "ai.usage.inputTokens": "650361", "ai.usage.outputTokens": "369",
        "ai.usage.cachedInputTokens": "649452", "ai.usage.inputTokenDetails.cacheReadTokens": "649452",
        "ai.usage.inputTokenDetails.cacheWriteTokens": "907", "ai.usage.inputTokenDetails.noCacheTokens": "2",
        "ai.usage.totalTokens": "650730",
    }
    n = norm(attributes)
    assert (n.input_tokens, n.cache_read_tokens, n.cache_write_tokens) == (650361, 649452, 907)
    # The same with the gen_ai.* mirror the AI SDK's call spans carry.
    mirrored = norm({**attributes, "gen_ai.system": "anthropic.messages", "gen_ai.usage.input_tokens": "650361",
                     "gen_ai.usage.output_tokens": "369"})
    assert mirrored.input_tokens == 650361


def test_cache_parts_never_exceed_input() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 1,
              "gen_ai.usage.cache_read.input_tokens": 300})
    assert n.input_tokens >= n.cache_read_tokens + n.cache_write_tokens


def test_reasoning_never_exceeds_output() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 100,
              "gen_ai.usage.reasoning_tokens": 500})
    assert n.reasoning_tokens <= n.output_tokens


# --- Anthropic thinking estimated from captured text --------------------------------------


def anthropic_thinking(text: str, output_tokens: int, **extra: Any) -> Normalized:
    """OpenLLMetry's anthropic instrumentation: thinking blocks as completions with role "thinking"."""
    return norm({
        "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.completion.0.role": "thinking", "gen_ai.completion.0.content": text,
        "gen_ai.completion.1.role": "assistant", "gen_ai.completion.1.content": "The answer is 42.",
        **extra,
    })


def test_anthropic_thinking_is_estimated_from_captured_text_when_not_reported() -> None:
    text = "Let me think step by step about the integral. " * 20  # 940 characters
    n = anthropic_thinking(text, output_tokens=2000)
    assert n.reasoning_estimated
    assert n.reasoning_tokens == math.ceil(len(text) / CHARS_PER_TOKEN)
    assert n.output_tokens == 2000


def test_estimated_thinking_never_exceeds_output() -> None:
    n = anthropic_thinking("x" * 50_000, output_tokens=300)
    assert n.reasoning_estimated
    assert n.reasoning_tokens == 300 and n.output_tokens == 300


def test_estimation_uses_the_full_text_before_truncation() -> None:
    text = "a long chain of thought. " * 2000  # 50,000 characters, far beyond any stored limit
    assert len(text) > 4 * MAX_ATTRIBUTE_CHARS
    n = anthropic_thinking(text, output_tokens=100_000)
    assert n.reasoning_tokens == math.ceil(len(text) / CHARS_PER_TOKEN)
    assert n.thinking_text == text


def test_reported_thinking_is_not_estimated() -> None:
    n = anthropic_thinking("thinking " * 100, output_tokens=2000, **{"gen_ai.usage.reasoning_tokens": 150})
    assert not n.reasoning_estimated
    assert n.reasoning_tokens == 150


def test_thinking_blocks_inside_a_json_completion_are_found() -> None:
    """OpenInference's output.value carries the raw Anthropic message, thinking blocks included."""
    thinking = "First, factor the polynomial. " * 10
    message = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": [{"type": "thinking", "thinking": thinking, "signature": "sig"},
                           {"type": "text", "text": "x = 3"}]}
    n = norm({"llm.provider": "anthropic", "llm.model_name": "claude-sonnet-4-5",
              "llm.token_count.prompt": 500, "llm.token_count.completion": 1000,
              "output.value": json.dumps(message), "output.mime_type": "application/json"})
    assert n.reasoning_estimated
    assert n.reasoning_tokens == math.ceil(len(thinking) / CHARS_PER_TOKEN)
    assert n.response_id == "msg_01"


def test_other_providers_thinking_text_is_not_estimated() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 500,
              "gen_ai.completion.0.role": "thinking", "gen_ai.completion.0.content": "hmm " * 100})
    assert n.reasoning_tokens == 0 and not n.reasoning_estimated


# --- thinking budget, reasoning effort ----------------------------------------------------


def test_thinking_budget_from_invocation_parameters_json() -> None:
    params = {"model": "claude-sonnet-4-5", "max_tokens": 16000, "thinking": {"type": "enabled", "budget_tokens": 10000}}
    assert norm({"llm.invocation_parameters": json.dumps(params)}).thinking_budget == 10000


def test_thinking_budget_from_the_anthropic_sdk_attribute() -> None:
    assert norm({"anthropic.thinking.budget_tokens": "4000"}).thinking_budget == 4000


def test_explicit_budget_attribute_beats_invocation_parameters() -> None:
    params = json.dumps({"thinking": {"type": "enabled", "budget_tokens": 10000}})
    assert norm({"llm.invocation_parameters": params, "thinkmeter.thinking_budget": 2000}).thinking_budget == 2000


@pytest.mark.parametrize(
    "params", [{"reasoning_effort": "medium"}, {"reasoning": {"effort": "medium", "summary": "auto"}}]
)
def test_reasoning_effort_from_invocation_parameters(params: dict[str, Any]) -> None:
    assert norm({"llm.invocation_parameters": json.dumps(params)}).reasoning_effort == "medium"


def test_malformed_invocation_parameters_are_ignored() -> None:
    n = norm({"llm.invocation_parameters": "{not json", "llm.model_name": "o3"})
    assert (n.thinking_budget, n.reasoning_effort, n.model) == (0, "", "o3")


# --- user, session, task type, tier from association properties and metadata --------------


def test_openllmetry_association_properties() -> None:
    n = norm({f"traceloop.association.properties.{k}": v for k, v in
              {"user_id": "u1", "session_id": "s1", "task_type": "summarize", "tier": "1"}.items()})
    assert (n.user_id, n.session_id, n.task_type, n.tier) == ("u1", "s1", "summarize", 1)


def test_ai_sdk_telemetry_metadata() -> None:
    n = norm({"ai.telemetry.metadata.userId": "u2", "ai.telemetry.metadata.sessionId": "s2",
              "ai.telemetry.metadata.task_type": "extract", "ai.telemetry.metadata.tier": 2})
    assert (n.user_id, n.session_id, n.task_type, n.tier) == ("u2", "s2", "extract", 2)


def test_openinference_metadata_json() -> None:
    metadata = {"user_id": "u3", "session_id": "s3", "task_type": "math_proof", "tier": 3, "other": "kept"}
    n = norm({"metadata": json.dumps(metadata), "llm.provider": "openai"})
    assert (n.user_id, n.session_id, n.task_type, n.tier) == ("u3", "s3", "math_proof", 3)
    assert json.loads(n.attributes["metadata"])["other"] == "kept"


def test_explicit_attributes_beat_metadata_json() -> None:
    n = norm({"metadata": json.dumps({"task_type": "from-json", "user_id": "json-user"}),
              "thinkmeter.task_type": "explicit", "user.id": "explicit-user"})
    assert (n.task_type, n.user_id) == ("explicit", "explicit-user")


def test_out_of_range_tier_is_dropped() -> None:
    assert norm({"thinkmeter.tier": 300}).tier == 0


# --- reported cost, response ids, quality -------------------------------------------------


def test_reported_cost_is_kept_as_a_decimal_string() -> None:
    n = norm({"gen_ai.usage.cost": "0.00421", "gen_ai.usage.input_tokens": 10})
    assert n.reported_cost == "0.004210000"
    assert norm({"gen_ai.usage.input_tokens": 10}).reported_cost is None
    assert norm({"operation.cost": -1}).reported_cost is None


def test_response_id_from_attribute_or_from_openinference_output_json() -> None:
    assert norm({"gen_ai.response.id": "chatcmpl-1"}).response_id == "chatcmpl-1"
    output = json.dumps({"id": "chatcmpl-2", "object": "chat.completion", "choices": []})
    assert norm({"output.value": output}).response_id == "chatcmpl-2"
    assert norm({"output.value": "plain text answer"}).response_id == ""


def test_quality_score_in_range_only() -> None:
    assert norm({"thinkmeter.quality": "0.75"}).quality == 0.75
    assert norm({"thinkmeter.quality": 7}).quality is None


# --- attribute maps: unknown kept, text dropped, long values truncated --------------------


def test_unknown_attributes_are_kept_in_the_maps() -> None:
    n = norm(
        {"gen_ai.system": "openai", "custom.flag": True, "custom.count": 3, "custom.ratio": 0.5,
         "custom.list": '["a","b"]', "http.route": "/chat"},
        resource={"service.name": "checkout", "host.name": "web-1", "deployment.environment.name": "prod"},
    )
    assert n.attributes["http.route"] == "/chat"
    assert n.attributes["custom.count"] == "3"
    assert n.attributes["custom.ratio"] == "0.5"
    assert n.attributes["custom.list"] == '["a","b"]'
    assert n.attributes["custom.flag"].lower() == "true"
    assert n.attributes["gen_ai.system"] == "openai"  # recognised ones are kept too
    assert n.resource_attributes == {"service.name": "checkout", "host.name": "web-1",
                                     "deployment.environment.name": "prod"}
    assert (n.service, n.environment) == ("checkout", "prod")


TEXT_ATTRIBUTES = {
    "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "What is my balance? mail me at ann@example.com",
    "gen_ai.completion.0.content": "Your balance is $12.", "input.value": '{"messages": []}',
    "output.value": "plain", "llm.input_messages.0.message.content": "hi",
    "llm.output_messages.0.message.content": "hello", "gen_ai.input.messages": "[]",
    "gen_ai.output.messages": "[]", "ai.prompt.messages": "[]", "ai.response.text": "ok",
    "traceloop.entity.input": "{}", "gen_ai.system_instructions": "be brief",
}


def test_prompt_and_completion_text_stay_out_of_the_attribute_maps() -> None:
    n = norm({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 5, **TEXT_ATTRIBUTES})
    assert not set(TEXT_ATTRIBUTES) & set(n.attributes), "text attributes must not be stored as attributes"
    assert "What is my balance?" in n.prompt_text
    assert "Your balance is $12." in n.completion_text


def test_over_long_attribute_values_are_truncated_with_a_marker() -> None:
    n = norm({"custom.blob": "z" * (MAX_ATTRIBUTE_CHARS * 3)})
    stored = n.attributes["custom.blob"]
    assert stored == "z" * MAX_ATTRIBUTE_CHARS + TRUNCATION_MARKER


# --- Logfire / Pydantic AI names ----------------------------------------------------------


def test_logfire_pydantic_ai_chat_span() -> None:
    """A Pydantic AI model request as Logfire exports it (gen_ai.* plus logfire.* bookkeeping)."""
    n = norm(
        {
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "o4-mini",
            "gen_ai.response.model": "o4-mini-2025-04-16", "gen_ai.response.id": "resp_0abc",
            "gen_ai.usage.input_tokens": 1500, "gen_ai.usage.output_tokens": 800,
            "gen_ai.usage.details.reasoning_tokens": 512, "gen_ai.usage.cache_read.input_tokens": 1024,
            "gen_ai.usage.details.cache_read_tokens": 1024, "operation.cost": 0.004521,
            "model_request_parameters": json.dumps({"function_tools": [], "allow_text_output": True}),
            "logfire.span_type": "span", "logfire.msg": "chat o4-mini",
            "logfire.json_schema": json.dumps({"type": "object", "properties": {"events": {"type": "array"}}}),
            "events": json.dumps([{"role": "user", "content": "hello", "gen_ai.message.index": 0}]),
        },
        resource={"service.name": "support-bot", "telemetry.sdk.name": "opentelemetry"},
        scope="pydantic-ai",
    )
    assert (n.provider, n.model, n.operation, n.response_id) == ("openai", "o4-mini-2025-04-16", "chat", "resp_0abc")
    assert (n.input_tokens, n.cache_read_tokens, n.output_tokens, n.reasoning_tokens) == (1500, 1024, 800, 512)
    assert n.reported_cost == "0.004521000"
    assert n.attributes["logfire.span_type"] == "span"
    assert "events" not in n.attributes and "hello" in n.prompt_text


def test_logfire_anthropic_span() -> None:
    """logfire.instrument_anthropic(): gen_ai.provider.name plus the legacy gen_ai.system."""
    n = norm({"gen_ai.provider.name": "anthropic", "gen_ai.system": "anthropic", "gen_ai.operation.name": "chat",
              "gen_ai.request.model": "claude-opus-4-1", "gen_ai.response.model": "claude-opus-4-1-20250805",
              "gen_ai.response.id": "msg_01X", "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 40,
              "logfire.msg_template": "Message with {request_data[model]!r}",
              "logfire.msg": "Message with 'claude-opus-4-1'", "logfire.span_type": "span"})
    assert (n.provider, n.model, n.input_tokens, n.output_tokens) == (
        "anthropic", "claude-opus-4-1-20250805", 300, 40)
