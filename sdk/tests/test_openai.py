"""Our OpenAI instrumentation: the real openai client against the fake provider, spans in memory.

Ground truth (tests/ingest/clients/fake_provider.py): 1200 prompt tokens of which 1000
cached, 900 completion tokens of which 640 reasoning; model o3-mini-2025-01-31.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from tests.ingest.clients import fake_provider as fp
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk

from sdk_support import Spans, closed_port, openai_client

MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
USAGE = {
    "gen_ai.usage.input_tokens": fp.OPENAI_PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": fp.OPENAI_COMPLETION_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": fp.OPENAI_CACHED_TOKENS,
    "gen_ai.usage.reasoning.output_tokens": fp.OPENAI_REASONING_TOKENS,
}
TIMING = ("gen_ai.response.time_to_first_chunk", "server.port")


def attributes(span: Any) -> dict[str, Any]:
    """The span's attributes, with the ones that vary per run (TTFT, port) checked and removed."""
    attrs = dict(span.attributes)
    assert isinstance(attrs.pop("server.port"), int)
    return attrs


def expected(response_id: str, extra: dict[str, Any] | None = None, stream: bool = False) -> dict[str, Any]:
    base: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "o3-mini",
        "server.address": "127.0.0.1", "gen_ai.response.id": response_id, "gen_ai.response.model": fp.OPENAI_MODEL,
        **USAGE,
    }
    if stream:
        base["gen_ai.request.stream"] = True
    return {**base, **(extra or {})}


def check_ttft(span: Any, attrs: dict[str, Any]) -> None:
    ttft = attrs.pop("gen_ai.response.time_to_first_chunk")
    duration = (span.end_time - span.start_time) / 1e9
    # The fake pauses FIRST_CHUNK_DELAY_S before the first content chunk.
    assert fp.FIRST_CHUNK_DELAY_S <= ttft <= duration


def test_chat_completion(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    with thinkmeter_sdk.context(task_type="qa", tier=2):
        result = client.chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="high",
                                                max_completion_tokens=4000)
    assert result.choices[0].message.content == fp.OPENAI_ANSWER_TEXT  # the app gets the real answer
    span = instrumented.one()
    assert span.name == "chat o3-mini" and span.kind.name == "CLIENT"
    assert attributes(span) == expected(result.id, {
        "gen_ai.request.reasoning_effort": "high", "gen_ai.request.max_tokens": 4000,
        "gen_ai.response.finish_reasons": ("stop",), "thinkmeter.task_type": "qa", "thinkmeter.tier": 2})


def test_chat_completion_stream_with_usage(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    stream = client.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    assert type(stream) is openai.Stream  # the app keeps its object and type
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == fp.OPENAI_ANSWER_TEXT
    assert chunks[-1].usage is not None  # the usage chunk it asked for is there
    span = instrumented.one()
    attrs = attributes(span)
    check_ttft(span, attrs)
    assert attrs == expected(chunks[0].id, {"gen_ai.response.finish_reasons": ("stop",)}, stream=True)


def test_chat_stream_without_usage_is_flagged(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    for _ in client.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True):
        pass
    attrs = dict(instrumented.one().attributes)
    assert "gen_ai.usage.input_tokens" not in attrs
    assert attrs["thinkmeter.usage.missing"] is True
    assert fake.requests[-1]["body"].get("stream_options") is None  # nothing was added to the request


def test_openai_stream_usage_asks_for_usage_and_hides_the_extra_chunk(spans: Spans, fake: FakeProvider) -> None:
    thinkmeter_sdk.instrument(tracer_provider=spans.provider, openai_stream_usage=True)
    client = openai_client(fake)
    chunks = list(client.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True))
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    # The app sees exactly the chunks it would have seen without the option.
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    attrs = dict(spans.one().attributes)
    assert {k: attrs[k] for k in USAGE} == USAGE


def test_async_chat_completion_and_stream(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake, asynchronous=True)

    async def main() -> tuple[str, str]:
        result = await client.chat.completions.create(model="o3-mini", messages=MESSAGES)
        stream = await client.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True,
                                                      stream_options={"include_usage": True})
        assert type(stream) is openai.AsyncStream
        ids = [chunk.id async for chunk in stream]
        return result.id, ids[0]

    plain_id, stream_id = asyncio.run(main())
    plain, streamed = sorted(instrumented.finished(), key=lambda s: s.start_time)
    assert attributes(plain) == expected(plain_id, {"gen_ai.response.finish_reasons": ("stop",)})
    attrs = attributes(streamed)
    check_ttft(streamed, attrs)
    assert attrs == expected(stream_id, {"gen_ai.response.finish_reasons": ("stop",)}, stream=True)


def test_responses_api(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    result = client.responses.create(model="o3-mini", input="Capital of France?", reasoning={"effort": "high"},
                                     max_output_tokens=4000)
    assert result.output_text == fp.OPENAI_ANSWER_TEXT
    assert attributes(instrumented.one()) == expected(result.id, {
        "gen_ai.request.reasoning_effort": "high", "gen_ai.request.max_tokens": 4000,
        "gen_ai.response.finish_reasons": ("completed",)})


def test_responses_api_stream_sync_and_async(instrumented: Spans, fake: FakeProvider) -> None:
    sync_events = list(openai_client(fake).responses.create(model="o3-mini", input="hi", stream=True,
                                                             reasoning={"effort": "low"}))

    async def main() -> list[Any]:
        stream = await openai_client(fake, asynchronous=True).responses.create(model="o3-mini", input="hi",
                                                                                stream=True)
        return [event async for event in stream]

    async_events = asyncio.run(main())
    assert sync_events[-1].type == async_events[-1].type == "response.completed"
    first, second = sorted(instrumented.finished(), key=lambda s: s.start_time)
    for span, events, effort in ((first, sync_events, {"gen_ai.request.reasoning_effort": "low"}),
                                 (second, async_events, {})):
        attrs = attributes(span)
        check_ttft(span, attrs)
        assert attrs == expected(events[-1].response.id, {"gen_ai.response.finish_reasons": ("completed",), **effort},
                                 stream=True)


def test_stream_helper_goes_through_create(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    with client.chat.completions.stream(model="o3-mini", messages=MESSAGES,
                                        stream_options={"include_usage": True}) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
    assert text == fp.OPENAI_ANSWER_TEXT
    attrs = dict(instrumented.one().attributes)
    assert {k: attrs[k] for k in USAGE} == USAGE


def test_responses_stream_helper_goes_through_create(instrumented: Spans, fake: FakeProvider) -> None:
    with openai_client(fake).responses.stream(model="o3-mini", input="Capital of France?") as stream:
        final = stream.get_final_response()
    assert final.output_text == fp.OPENAI_ANSWER_TEXT
    attrs = dict(instrumented.one().attributes)
    assert attrs["gen_ai.response.id"] == final.id
    assert {k: attrs[k] for k in USAGE} == USAGE


def test_stream_closed_early_ends_the_span(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    with client.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    span = instrumented.one()  # ended by close(), although the stream was not read to the end
    assert span.attributes["gen_ai.response.id"].startswith(fp.OPENAI_CHAT_ID_PREFIX)
    assert "thinkmeter.usage.missing" not in span.attributes  # incomplete, not "without usage"


def test_stream_dropped_unread_ends_the_span(instrumented: Spans, fake: FakeProvider) -> None:
    stream = openai_client(fake).chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True)
    del stream
    gc.collect()  # openai's Stream refers to itself through its iterator: the cycle collector frees it
    assert instrumented.one().end_time is not None


def test_raw_response_still_works(instrumented: Spans, fake: FakeProvider) -> None:
    raw = openai_client(fake).chat.completions.with_raw_response.create(model="o3-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == fp.OPENAI_ANSWER_TEXT
    span = instrumented.one()
    assert span.attributes["gen_ai.request.model"] == "o3-mini"


def test_provider_errors_reach_the_app_unchanged(instrumented: Spans) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    span = instrumented.one()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "APIConnectionError"
    assert [e.name for e in span.events] == ["exception"]


def test_content_is_captured_only_when_enabled(spans: Spans, fake: FakeProvider) -> None:
    thinkmeter_sdk.instrument(tracer_provider=spans.provider)  # default: off
    client = openai_client(fake)
    client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    assert not [k for k in spans.one().attributes if "messages" in k or "instructions" in k]
    spans.clear()

    thinkmeter_sdk.instrument(tracer_provider=spans.provider, capture_content=True)
    client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    client.responses.create(model="o3-mini", input="Capital of France?", instructions="Be brief.")
    chat, response = sorted(spans.finished(), key=lambda s: s.start_time)
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]},
    ]
    for span in (chat, response):
        [message] = json.loads(span.attributes["gen_ai.output.messages"])
        assert message["parts"] == [{"type": "text", "content": fp.OPENAI_ANSWER_TEXT}]
    assert json.loads(response.attributes["gen_ai.system_instructions"]) == [{"type": "text",
                                                                               "content": "Be brief."}]
