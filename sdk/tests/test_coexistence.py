"""Our instrumentation never breaks a call and never doubles another instrumentation's span.

Real instrumentors (OpenLLMetry's and OpenInference's, installed by the dev extras) are
installed in this process and removed again after each test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from tests.ingest.clients import fake_provider as fp
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk
from thinkmeter_sdk import _log
from thinkmeter_sdk.openai_calls import ChatAdapter, ChatStream

from sdk_support import Spans, openai_client

MESSAGES = [{"role": "user", "content": "Capital of France?"}]
CREATE = "openai.resources.chat.completions.Completions.create"
OPENLLMETRY = "opentelemetry.instrumentation.openai.v1"
OPENINFERENCE = "openinference.instrumentation.openai"
TAGS = {"thinkmeter.task_type": "qa", "thinkmeter.tier": 1}


def unwrap_all(package: str) -> None:
    """Remove every wrapt wrapper from the package's classes.

    OpenLLMetry 0.62.4's uninstrument() unwraps nothing with this opentelemetry-instrumentation
    (it passes "Completions.create" as one attribute name), so the test cleans up itself.
    """
    import sys

    import wrapt

    proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)
    for name, module in list(sys.modules.items()):
        if not (name == package or name.startswith(package + ".")) or module is None:
            continue
        for cls in [v for v in vars(module).values() if isinstance(v, type)]:
            for attr, value in list(vars(cls).items()):
                while isinstance(value, proxy):
                    value = value.__wrapped__
                    setattr(cls, attr, value)


@pytest.fixture
def openllmetry(spans: Spans) -> Iterator[Any]:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    yield lambda: instrumentor.instrument(tracer_provider=spans.provider)
    instrumentor.uninstrument()
    unwrap_all("openai.resources")


@pytest.fixture
def openinference(spans: Spans) -> Iterator[Any]:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    yield lambda: instrumentor.instrument(tracer_provider=spans.provider)
    instrumentor.uninstrument()


def call(fake: FakeProvider) -> Any:
    with thinkmeter_sdk.context(task_type="qa", tier=1):
        return openai_client(fake).chat.completions.create(model="o3-mini", messages=MESSAGES)


def only_span(spans: Spans, scope: str) -> Any:
    """Exactly one span for the call, from ``scope``, carrying our tags."""
    finished = spans.finished(None)
    assert [s.instrumentation_scope.name for s in finished] == [scope], [(s.name, s.instrumentation_scope.name)
                                                                       for s in finished]
    span = finished[0]
    assert {k: span.attributes.get(k) for k in TAGS} == TAGS
    return span


def test_installed_after_openllmetry_we_leave_the_method_to_it(spans: Spans, fake: FakeProvider,
                                                                openllmetry: Any) -> None:
    openllmetry()
    outcome = thinkmeter_sdk.instrument(tracer_provider=spans.provider)
    assert outcome[CREATE] == "left to the instrumentation already wrapping it"
    assert outcome["openai.resources.chat.completions.AsyncCompletions.create"] != "instrumented"
    result = call(fake)
    span = only_span(spans, OPENLLMETRY)
    assert span.attributes["gen_ai.response.id"] == result.id


def test_installed_before_openllmetry_we_step_aside_at_call_time(spans: Spans, fake: FakeProvider,
                                                                  openllmetry: Any) -> None:
    assert thinkmeter_sdk.instrument(tracer_provider=spans.provider)[CREATE] == "instrumented"
    openllmetry()  # wraps our wrapper
    call(fake)
    only_span(spans, OPENLLMETRY)


def test_openinference_wraps_the_client_request_we_step_aside(spans: Spans, fake: FakeProvider,
                                                              openinference: Any) -> None:
    thinkmeter_sdk.instrument(tracer_provider=spans.provider)
    openinference()
    call(fake)
    only_span(spans, OPENINFERENCE)


def test_without_other_instrumentation_the_span_is_ours(instrumented: Spans, fake: FakeProvider) -> None:
    call(fake)
    only_span(instrumented, "thinkmeter_sdk")


def test_uninstrument_restores_the_original_methods(spans: Spans) -> None:
    from openai.resources.chat.completions import Completions

    original = Completions.__dict__["create"]
    thinkmeter_sdk.instrument(tracer_provider=spans.provider)
    assert Completions.__dict__["create"] is not original
    assert CREATE in thinkmeter_sdk.instrumented()
    thinkmeter_sdk.instrument(tracer_provider=spans.provider)  # twice: still one wrapper
    assert Completions.__dict__["create"].__wrapped__ is original
    thinkmeter_sdk.uninstrument()
    assert Completions.__dict__["create"] is original
    assert thinkmeter_sdk.instrumented() == []


def test_our_errors_never_reach_the_app_and_are_logged_once(
        instrumented: Spans, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in thinkmeter_sdk")

    monkeypatch.setattr(ChatAdapter, "response", broken)
    client = openai_client(fake)
    with caplog.at_level(logging.WARNING, logger="thinkmeter_sdk"):
        answers = [client.chat.completions.create(model="o3-mini", messages=MESSAGES) for _ in range(3)]
    assert [a.choices[0].message.content for a in answers] == [fp.OPENAI_ANSWER_TEXT] * 3
    assert len(instrumented.finished()) == 3  # the spans still end
    logged = [r for r in caplog.records if "could not record the response" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert _log.occurrences(f"complete:{CREATE}") == 3


def test_a_failing_request_hook_leaves_the_call_alone(instrumented: Spans, fake: FakeProvider,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("cannot read the arguments")

    monkeypatch.setattr(ChatAdapter, "request", broken)
    result = openai_client(fake).chat.completions.create(model="o3-mini", messages=MESSAGES)
    assert result.choices[0].message.content == fp.OPENAI_ANSWER_TEXT
    assert instrumented.finished() == []


def test_a_failing_stream_observer_leaves_the_stream_intact(instrumented: Spans, fake: FakeProvider,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, item: Any) -> bool:
        raise TypeError("unexpected chunk")

    monkeypatch.setattr(ChatStream, "on_item", broken)
    stream = openai_client(fake).chat.completions.create(model="o3-mini", messages=MESSAGES, stream=True,
                                                         stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == fp.OPENAI_ANSWER_TEXT
    assert chunks[-1].usage.prompt_tokens == fp.OPENAI_PROMPT_TOKENS
    assert len(instrumented.finished()) == 1


def test_arguments_reach_the_provider_unchanged(instrumented: Spans, fake: FakeProvider) -> None:
    client = openai_client(fake)
    client.chat.completions.create(model="o3-mini", messages=MESSAGES, reasoning_effort="high", user="u-9",
                                   max_completion_tokens=123, stream=False)
    assert fake.requests[-1]["body"] == {"model": "o3-mini", "messages": MESSAGES, "reasoning_effort": "high",
                                         "user": "u-9", "max_completion_tokens": 123, "stream": False}


def test_instrument_reports_missing_packages_without_failing() -> None:
    """In a process where neither client is installed (simulated by blocking their import)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('openai', 'anthropic'): raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import thinkmeter_sdk\n"
        "print(thinkmeter_sdk.instrument())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "{'openai': 'not installed', 'anthropic': 'not installed'}"


def test_openai_module_is_untouched_when_not_instrumented() -> None:
    from openai.resources.chat.completions import Completions

    assert not getattr(Completions.__dict__["create"], "__thinkmeter_wrapper__", False)
    assert openai.Stream.__dict__.get("close") is not None


class BrokenStream:
    """The shape of the clients' Stream: a private iterator and close(); this one fails midway."""

    def __init__(self) -> None:
        self.closed = False

        def items() -> Iterator[Any]:
            yield {"id": "chatcmpl-x", "model": "o3-mini", "choices": [{"index": 0, "delta": {"content": "Pa"}}]}
            raise ConnectionResetError("connection lost mid-stream")

        self._iterator = items()

    def __iter__(self) -> Iterator[Any]:
        yield from self._iterator

    def close(self) -> None:
        self.closed = True


def test_a_stream_failing_midway_records_what_it_gave_and_the_error(spans: Spans) -> None:
    from thinkmeter_sdk.genai import Call
    from thinkmeter_sdk.instrumentation import Request, hook_sync_stream

    call = Call(spans.provider.get_tracer("thinkmeter_sdk"), "chat o3-mini", {}, capture=False)
    stream = BrokenStream()
    hook_sync_stream(stream, call, ChatStream(call, Request("chat o3-mini", {}, {}, stream=True)))
    seen = []
    with pytest.raises(ConnectionResetError):
        for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 1  # the app got the chunk before the failure, then the failure itself
    span = spans.one()
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "ConnectionResetError"
    assert span.attributes["gen_ai.response.id"] == "chatcmpl-x"
    assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0
    stream.close()
    assert stream.closed
