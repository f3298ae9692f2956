"""Our Anthropic instrumentation: the real anthropic client against the fake provider, spans in memory.

Ground truth (tests/ingest/clients/fake_provider.py), raw API shape: input_tokens 300
without cache, cache reads 2000, cache writes 500, output 1500, and a thinking block
(ANTHROPIC_THINKING_TEXT) first when thinking is enabled. The span reports input 2800 (the
OTel convention). ``fake_thinking`` also reports 1100 thinking tokens.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from tests.ingest.clients import fake_provider as fp
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk
from thinkmeter_sdk.genai import estimate_tokens

from sdk_support import Spans, anthropic_client

pytestmark = pytest.mark.filterwarnings(
    "ignore:The model 'claude-sonnet-4-5' is deprecated", "ignore:Using Claude with claude-sonnet-4-5")

MESSAGES = [{"role": "user", "content": "Is 37 a prime number? Explain briefly."}]
THINKING = {"type": "enabled", "budget_tokens": 2048}
USAGE = {
    "gen_ai.usage.input_tokens": fp.ANTHROPIC_TOTAL_INPUT_TOKENS,  # 2800
    "gen_ai.usage.output_tokens": fp.ANTHROPIC_OUTPUT_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": fp.ANTHROPIC_CACHE_READ_TOKENS,
    "gen_ai.usage.cache_creation.input_tokens": fp.ANTHROPIC_CACHE_WRITE_TOKENS,
}
REQUEST = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.request.max_tokens": 4096, "server.address": "127.0.0.1", "anthropic.thinking.type": "enabled",
    "thinkmeter.thinking_budget": 2048, "anthropic.thinking.budget_tokens": 2048,
}
ESTIMATE = estimate_tokens(len(fp.ANTHROPIC_THINKING_TEXT))


def attributes(span: Any, stream: bool = False) -> dict[str, Any]:
    attrs = dict(span.attributes)
    assert isinstance(attrs.pop("server.port"), int)
    if stream:
        ttft = attrs.pop("gen_ai.response.time_to_first_chunk")
        assert fp.FIRST_CHUNK_DELAY_S <= ttft <= (span.end_time - span.start_time) / 1e9
    return attrs


def response(message_id: str, **extra: Any) -> dict[str, Any]:
    return {**REQUEST, **USAGE, "gen_ai.response.id": message_id, "gen_ai.response.model": fp.ANTHROPIC_MODEL,
            "gen_ai.response.finish_reasons": ("end_turn",), **extra}


def create(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, thinking=THINKING,
                                  messages=MESSAGES, **kwargs)


def test_message_with_reported_thinking_tokens(instrumented: Spans, fake_thinking: FakeProvider) -> None:
    message = create(anthropic_client(fake_thinking))
    assert message.content[-1].text == fp.ANTHROPIC_ANSWER_TEXT
    span = instrumented.one()
    assert span.name == "chat claude-sonnet-4-5"
    assert attributes(span) == response(
        message.id, **{"gen_ai.usage.reasoning.output_tokens": fp.ANTHROPIC_THINKING_TOKENS})


def test_unreported_thinking_is_estimated_from_its_length(instrumented: Spans, fake: FakeProvider) -> None:
    message = create(anthropic_client(fake))
    # Older API shape: no thinking token count; the estimate is its own attribute, never
    # passed off as a reported count, and the text is not sent (capture is off).
    assert attributes(instrumented.one()) == response(
        message.id, **{"thinkmeter.usage.reasoning.estimated_output_tokens": ESTIMATE})


def test_stream_sync(instrumented: Spans, fake_thinking: FakeProvider) -> None:
    client = anthropic_client(fake_thinking)
    with create(client, stream=True) as stream:
        assert type(stream) is anthropic.Stream
        events = list(stream)
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert attributes(instrumented.one(), stream=True) == response(
        events[0].message.id, **{"gen_ai.request.stream": True,
                                 "gen_ai.usage.reasoning.output_tokens": fp.ANTHROPIC_THINKING_TOKENS})


def test_async_message_and_stream(instrumented: Spans, fake: FakeProvider) -> None:
    client = anthropic_client(fake, asynchronous=True)

    async def main() -> tuple[str, str]:
        message = await create(client)
        stream = await create(client, stream=True)
        events = [event async for event in stream]
        return message.id, events[0].message.id

    plain_id, stream_id = asyncio.run(main())
    plain, streamed = sorted(instrumented.finished(), key=lambda s: s.start_time)
    estimated = {"thinkmeter.usage.reasoning.estimated_output_tokens": ESTIMATE}
    assert attributes(plain) == response(plain_id, **estimated)
    assert attributes(streamed, stream=True) == response(stream_id, **{"gen_ai.request.stream": True, **estimated})


def test_older_stream_shape_with_output_only_in_message_delta(instrumented: Spans) -> None:
    """message_delta carrying only output_tokens: input and cache come from message_start."""
    with FakeProvider(anthropic_delta_full_usage=False) as fake:
        for _ in range(200_000):
            fake.next_id("messages")
        events = list(create(anthropic_client(fake), stream=True))
    attrs = attributes(instrumented.one(), stream=True)
    assert {k: attrs[k] for k in USAGE} == USAGE
    assert attrs["gen_ai.response.id"] == events[0].message.id


def test_effort_and_no_thinking(instrumented: Spans, fake: FakeProvider) -> None:
    client = anthropic_client(fake)
    client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=MESSAGES,
                           output_config={"effort": "low"})
    attrs = dict(instrumented.one().attributes)
    assert attrs["gen_ai.request.reasoning_effort"] == "low"
    assert "thinkmeter.thinking_budget" not in attrs
    assert "thinkmeter.usage.reasoning.estimated_output_tokens" not in attrs  # no thinking block came back


def test_the_sdks_own_span_is_our_child_and_carries_the_tags(instrumented: Spans, fake: FakeProvider) -> None:
    client = anthropic_client(fake, tracer_provider=instrumented.provider)
    with thinkmeter_sdk.context(task_type="proofs", tier=3, user_id="u-1"):
        message = create(client)
    ours = instrumented.one()
    native = instrumented.one("com.anthropic.sdk.python")
    assert native.parent is not None and native.parent.span_id == ours.context.span_id
    assert native.context.trace_id == ours.context.trace_id
    for span in (ours, native):
        assert span.attributes["gen_ai.response.id"] == message.id
        assert span.attributes["thinkmeter.task_type"] == "proofs"
        assert span.attributes["thinkmeter.tier"] == 3
        assert span.attributes["user.id"] == "u-1"
        assert span.attributes["gen_ai.usage.input_tokens"] == fp.ANTHROPIC_TOTAL_INPUT_TOKENS


def test_content_capture_includes_the_thinking_text(spans: Spans, fake: FakeProvider) -> None:
    thinkmeter_sdk.instrument(tracer_provider=spans.provider, capture_content=True)
    client = anthropic_client(fake)
    client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, thinking=THINKING, messages=MESSAGES,
                           system="You are a concise math tutor.")
    list(create(client, stream=True))
    for span in spans.finished():
        [message] = json.loads(span.attributes["gen_ai.output.messages"])
        assert message["parts"] == [{"type": "reasoning", "content": fp.ANTHROPIC_THINKING_TEXT},
                                    {"type": "text", "content": fp.ANTHROPIC_ANSWER_TEXT}]
        assert message["finish_reason"] == "end_turn"
        assert json.loads(span.attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": MESSAGES[0]["content"]}]}]
    plain = min(spans.finished(), key=lambda s: s.start_time)
    assert json.loads(plain.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You are a concise math tutor."}]


def test_beta_messages(instrumented: Spans, fake_thinking: FakeProvider) -> None:
    message = anthropic_client(fake_thinking).beta.messages.create(
        model="claude-sonnet-4-5", max_tokens=4096, thinking=THINKING, messages=MESSAGES)
    attrs = dict(instrumented.one().attributes)
    assert attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.usage.input_tokens"] == fp.ANTHROPIC_TOTAL_INPUT_TOKENS
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == fp.ANTHROPIC_THINKING_TOKENS
