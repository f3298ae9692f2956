"""The SDK end to end: real clients → fake provider; spans → real OTLP exporter → live Thinkmeter.

An "application" configures the SDK on a TracerProvider of its own, instruments the
clients and tags its work with ``context()`` — in the calling thread, in a thread started
with ``propagate()``, in a ``ContextThreadPoolExecutor`` and in asyncio tasks. Thinkmeter's
usage API (``GET /api/v1/usage?group_by=task_type,tier``) must then show exactly the
fake provider's tokens per task class, priced at the shipped catalog's rates, with each
provider call counted once although the Anthropic SDK reports every call in a span of
its own too.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from tests.ingest.clients import fake_provider as fp
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk

from sdk_support import Call, Thinkmeter, anthropic_client, expected_row, measures, openai_client

pytestmark = pytest.mark.filterwarnings(
    "ignore:The model 'claude-sonnet-4-5' is deprecated", "ignore:Using Claude with claude-sonnet-4-5")

OPENAI_CALL = Call("o3-mini", fp.OPENAI_PROMPT_TOKENS, fp.OPENAI_CACHED_TOKENS, 0, fp.OPENAI_COMPLETION_TOKENS,
                   fp.OPENAI_REASONING_TOKENS)
ANTHROPIC_CALL = Call("claude-sonnet-4-5", fp.ANTHROPIC_TOTAL_INPUT_TOKENS, fp.ANTHROPIC_CACHE_READ_TOKENS,
                      fp.ANTHROPIC_CACHE_WRITE_TOKENS, fp.ANTHROPIC_OUTPUT_TOKENS, fp.ANTHROPIC_THINKING_TOKENS)
MESSAGES = [{"role": "user", "content": "Is 37 a prime number? Explain briefly."}]


def app_provider() -> TracerProvider:
    """The TracerProvider the application already has (configure() adds to it)."""
    return TracerProvider(resource=Resource.create({"service.name": "sdk-e2e"}))


def anthropic_call(client: Any, **kwargs: Any) -> Any:
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=MESSAGES,
                                  thinking={"type": "enabled", "budget_tokens": 2048}, **kwargs)


def test_usage_api_shows_exact_tokens_and_cost_per_task_class(thinkmeter: Thinkmeter,
                                                              fake_thinking: FakeProvider) -> None:
    provider = app_provider()
    settings = thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key=thinkmeter.key, tracer_provider=provider)
    assert settings.traces_url == thinkmeter.url + "/v1/traces"
    thinkmeter_sdk.instrument()  # onto the provider configure() used
    oai, oai_async = openai_client(fake_thinking), openai_client(fake_thinking, asynchronous=True)
    # The Anthropic SDK's own spans go through the same provider: each call is reported twice.
    claude = anthropic_client(fake_thinking, tracer_provider=provider)
    claude_async = anthropic_client(fake_thinking, asynchronous=True, tracer_provider=provider)
    requests_before = len(fake_thinking.requests)

    async def async_calls() -> None:
        async def responses_stream() -> None:
            stream = await oai_async.responses.create(model="o3-mini", input="Capital of France?", stream=True,
                                                      reasoning={"effort": "high"})
            async for _ in stream:
                pass

        async def claude_stream() -> None:
            async for _ in await anthropic_call(claude_async, stream=True):
                pass

        await asyncio.gather(asyncio.create_task(responses_stream()), asyncio.create_task(claude_stream()))

    with thinkmeter_sdk.context(task_type="code_review", tier=3, user_id="u-42", session_id="s-7"):
        oai.chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="high")
        for _ in oai.chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True,
                                             stream_options={"include_usage": True}):
            pass
        anthropic_call(claude)
        asyncio.run(async_calls())
        worker = threading.Thread(target=thinkmeter_sdk.propagate(oai.responses.create),
                                  kwargs={"model": "o3-mini", "input": "Capital of France?"})
        worker.start()
        worker.join()

    @thinkmeter_sdk.context(task_type="triage", tier=1)
    def triage() -> None:
        with thinkmeter_sdk.ContextThreadPoolExecutor(2) as pool:
            pool.submit(oai.chat.completions.create, model="o3-mini", messages=MESSAGES).result()
        with anthropic_call(claude, stream=True) as stream:
            for _ in stream:
                pass

    triage()
    assert len(fake_thinking.requests) - requests_before == 8
    assert thinkmeter_sdk.force_flush()

    usage = thinkmeter.usage("task_type,tier")
    assert set(usage) == {("code_review", 3), ("triage", 1)}
    assert measures(usage[("code_review", 3)]) == expected_row([OPENAI_CALL] * 4 + [ANTHROPIC_CALL] * 2)
    assert measures(usage[("triage", 1)]) == expected_row([OPENAI_CALL, ANTHROPIC_CALL])

    by_user = thinkmeter.usage("user_id,session_id")
    assert by_user[("u-42", "s-7")]["requests"] == 6 and by_user[("", "")]["requests"] == 2
    by_model = thinkmeter.usage("model")
    assert {m: r["requests"] for (m,), r in by_model.items()} == {fp.OPENAI_MODEL: 5, fp.ANTHROPIC_MODEL: 3}


def test_captured_thinking_text_gives_the_estimate_when_the_api_reports_none(thinkmeter: Thinkmeter,
                                                                            fake: FakeProvider) -> None:
    """Older Anthropic API shape: no thinking token count. With content capture on, our span
    carries the thinking text and Thinkmeter estimates the reasoning tokens from it."""
    from ingest.normalize import estimate_tokens

    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key=thinkmeter.key, tracer_provider=app_provider(),
                             capture_content=True)
    thinkmeter_sdk.instrument()
    claude = anthropic_client(fake)  # its own spans off: ours is the only one
    with thinkmeter_sdk.context(task_type="proofs", tier=2):
        anthropic_call(claude)
        for _ in anthropic_call(claude, stream=True):
            pass
    assert thinkmeter_sdk.force_flush()

    estimated = estimate_tokens(fp.ANTHROPIC_THINKING_TEXT)
    call = Call("claude-sonnet-4-5", fp.ANTHROPIC_TOTAL_INPUT_TOKENS, fp.ANTHROPIC_CACHE_READ_TOKENS,
                fp.ANTHROPIC_CACHE_WRITE_TOKENS, fp.ANTHROPIC_OUTPUT_TOKENS, estimated)
    assert measures(thinkmeter.usage()[("proofs", 2)]) == expected_row([call, call])


def test_a_rejected_key_never_breaks_the_app(thinkmeter: Thinkmeter, fake: FakeProvider) -> None:
    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key="tm_not_a_key", tracer_provider=app_provider())
    thinkmeter_sdk.instrument()
    answer = openai_client(fake).chat.completions.create(model="o3-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == fp.OPENAI_ANSWER_TEXT
    thinkmeter_sdk.force_flush()  # the export is refused (401): logged by the exporter, nothing raised
    assert thinkmeter.usage() == {}
