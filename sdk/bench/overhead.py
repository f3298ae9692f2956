"""How much thinkmeter-sdk adds to each LLM call, on the calling thread (prints JSON).

The real openai and anthropic clients answer from an in-memory HTTP transport (canned
JSON and server-sent events, like the provider's), so a call costs only the client's
own work; the same calls then run instrumented (our wrapper, a ``context()`` tag, the
ContextSpanProcessor and a BatchSpanProcessor whose exporter drops the spans: export
happens on the processor's thread, not the caller's). Rounds alternate between the two
so that machine noise hits both alike; the figure per API is the median over rounds of
(instrumented − bare) per call, in microseconds of the calling thread's CPU time (what the
call itself spends, less affected by other processes; wall-clock figures are printed too).
``sdk_work`` isolates the SDK's own code per call (span from the request, response or
stream events read, span ended through the processors), which the difference of two
noisy end-to-end figures only estimates. The budget is 1000 µs per call.

    python sdk/bench/overhead.py [--calls 300] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import httpx2
import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import thinkmeter_sdk

USAGE_OPENAI: dict[str, Any] = {"prompt_tokens": 1200, "completion_tokens": 900, "total_tokens": 2100,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": 640}}
CHAT: dict[str, Any] = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "o3-mini-2025-01-31",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Paris is the capital of France."}}],
        "usage": USAGE_OPENAI}
MESSAGE: dict[str, Any] = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": [{"type": "thinking", "thinking": "Let me think. " * 50, "signature": "sig"},
                       {"type": "text", "text": "37 is prime."}],
           "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 300, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
                     "output_tokens": 1500}}


def sse(events: Sequence[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


def chat_chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "o3-mini-2025-01-31",
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage}


CHAT_STREAM = sse([(None, chat_chunk({"role": "assistant", "content": ""})),
                   *[(None, chat_chunk({"content": w + " "})) for w in "Paris is the capital of France".split()],
                   (None, chat_chunk({}, "stop")), (None, chat_chunk({}, usage=USAGE_OPENAI)), (None, "[DONE]")])
MESSAGE_STREAM = sse([
    ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                                            "usage": {**MESSAGE["usage"], "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    *[("content_block_delta", {"type": "content_block_delta", "index": 0,
                               "delta": {"type": "thinking_delta", "thinking": "Let me think. " * 10}})] * 5,
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1,
                             "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "text_delta", "text": "37 is prime."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 1500}}),
    ("message_stop", {"type": "message_stop"}),
])


def handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    stream = body.get("stream") is True
    if request.url.path.endswith("/chat/completions"):
        if stream:
            return httpx2.Response(200, content=CHAT_STREAM, headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=CHAT)
    if stream:
        return httpx2.Response(200, content=MESSAGE_STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, json=MESSAGE)


class Drop(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


MESSAGES: Any = [{"role": "user", "content": "Capital of France?"}]
CHAT_KWARGS: dict[str, Any] = {"model": "o3-mini", "messages": MESSAGES, "reasoning_effort": "high"}
CLAUDE_KWARGS: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": MESSAGES,
                                 "thinking": {"type": "enabled", "budget_tokens": 2048}}


def clients() -> tuple[openai.OpenAI, anthropic.Anthropic]:
    """Real openai and anthropic clients whose HTTP requests :func:`handler` answers in memory."""
    transport = httpx2.MockTransport(handler)
    oai = openai.OpenAI(api_key="sk-bench", base_url="http://provider.invalid/v1",
                        http_client=httpx2.Client(transport=transport))
    claude = anthropic.Anthropic(api_key="sk-bench", base_url="http://provider.invalid", open_telemetry=False,
                                 http_client=httpx2.Client(transport=transport))
    return oai, claude


def calls() -> dict[str, Callable[[], Any]]:
    oai, claude = clients()

    def chat() -> Any:
        return oai.chat.completions.create(**CHAT_KWARGS)

    def chat_stream() -> Any:
        return list(oai.chat.completions.create(**CHAT_KWARGS, stream=True, stream_options={"include_usage": True}))

    def message() -> Any:
        return claude.messages.create(**CLAUDE_KWARGS)

    def message_stream() -> Any:
        return list(claude.messages.create(**CLAUDE_KWARGS, stream=True))

    return {"openai.chat": chat, "openai.chat.stream": chat_stream, "anthropic.messages": message,
            "anthropic.messages.stream": message_stream}


def sdk_work_us(name: str, provider: TracerProvider, n: int, rounds: int) -> dict[str, float]:
    """CPU microseconds of the SDK's own work per call, without the client around it: start the
    span from the request, make it current and back, read the response (or every event of the
    stream) and end the span through the processors."""
    from thinkmeter_sdk import instrumentation

    thinkmeter_sdk.instrument(tracer_provider=provider)
    thinkmeter_sdk.uninstrument()
    thinkmeter_sdk.instrument(tracer_provider=provider)
    label, kwargs, resource, result, stream = WORK[name]()
    target = instrumentation._installed[label]
    timings = []
    with thinkmeter_sdk.context(task_type="bench", tier=2, user_id="u-1"):
        for _ in range(rounds):
            started = time.thread_time()
            for _ in range(n):
                begun = instrumentation._begin(target, resource, kwargs)
                assert begun is not None
                call, request = begun
                with instrumentation._current(call):
                    pass
                if stream:
                    observer = target.adapter.observer(call, request)
                    for item in result:
                        observer.on_item(item)
                    instrumentation._finish(call, observer, complete=True)
                else:
                    instrumentation._complete(target, call, request, result)
            timings.append((time.thread_time() - started) / n * 1e6)
    thinkmeter_sdk.uninstrument()
    return {"median_us": round(statistics.median(timings), 1), "min_us": round(min(timings), 1)}


def _work_cases() -> dict[str, Callable[[], tuple[str, dict[str, Any], Any, Any, bool]]]:
    apis = calls()
    oai, claude = clients()
    chat_label = "openai.resources.chat.completions.Completions.create"
    claude_label = "anthropic.resources.messages.Messages.create"
    return {
        "openai.chat": lambda: (chat_label, CHAT_KWARGS, oai.chat.completions, apis["openai.chat"](), False),
        "openai.chat.stream": lambda: (chat_label, {**CHAT_KWARGS, "stream": True}, oai.chat.completions,
                                       apis["openai.chat.stream"](), True),
        "anthropic.messages": lambda: (claude_label, CLAUDE_KWARGS, claude.messages, apis["anthropic.messages"](),
                                       False),
        "anthropic.messages.stream": lambda: (claude_label, {**CLAUDE_KWARGS, "stream": True}, claude.messages,
                                              apis["anthropic.messages.stream"](), True),
    }


WORK: dict[str, Callable[[], tuple[str, dict[str, Any], Any, Any, bool]]] = {}


def per_call_us(fn: Callable[[], Any], n: int, tagged: bool) -> tuple[float, float]:
    """(wall, CPU of the calling thread) microseconds per call. The CPU time is what the
    call itself spends, whatever else the machine is running."""
    wall, cpu = time.perf_counter(), time.thread_time()
    if tagged:
        with thinkmeter_sdk.context(task_type="bench", tier=2, user_id="u-1"):
            for _ in range(n):
                fn()
    else:
        for _ in range(n):
            fn()
    return (time.perf_counter() - wall) / n * 1e6, (time.thread_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    provider = TracerProvider()
    exporter = Drop()
    provider.add_span_processor(thinkmeter_sdk.ContextSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    apis = calls()
    for fn in apis.values():  # warm up both paths
        fn()
    results: dict[str, Any] = {}
    for name, fn in apis.items():
        bare: list[tuple[float, float]] = []
        instrumented: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            thinkmeter_sdk.uninstrument()
            bare.append(per_call_us(fn, args.calls, tagged=False))
            thinkmeter_sdk.instrument(tracer_provider=provider)
            instrumented.append(per_call_us(fn, args.calls, tagged=True))
        thinkmeter_sdk.uninstrument()
        row: dict[str, float] = {}
        for index, clock in ((1, "cpu"), (0, "wall")):
            on = statistics.median(i[index] for i in instrumented)
            off = statistics.median(b[index] for b in bare)
            row[f"{clock}_bare_us"] = round(off, 1)
            row[f"{clock}_instrumented_us"] = round(on, 1)
            row[f"{clock}_overhead_us"] = round(
                statistics.median(i[index] - b[index] for i, b in zip(instrumented, bare, strict=True)), 1)
            row[f"{clock}_ratio"] = round(on / off, 3)
        results[name] = row
    WORK.update(_work_cases())
    for name in apis:
        results[name]["sdk_work"] = sdk_work_us(name, provider, args.calls * 5, args.rounds)
    provider.force_flush()
    worst_work = max(r["sdk_work"]["median_us"] for r in results.values())
    worst_call = max(r["cpu_overhead_us"] for r in results.values())
    print(json.dumps({"calls_per_round": args.calls, "rounds": args.rounds, "apis": results,
                      "max_sdk_work_us": worst_work, "max_cpu_overhead_us": worst_call, "budget_us": 1000,
                      "within_budget": worst_work <= 1000 and worst_call <= 1000,
                      "spans_exported": exporter.spans}))


if __name__ == "__main__":
    main()
