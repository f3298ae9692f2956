"""context(): every span started inside carries the tags, across nesting, asyncio tasks and threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import thinkmeter_sdk
from thinkmeter_sdk import context, propagate

from sdk_support import Spans

TAGS = {"thinkmeter.task_type": "code_review", "thinkmeter.tier": 2, "user.id": "u-42", "session.id": "s-7"}
TAG_KEYS = tuple(TAGS)


def tags(span: Any) -> dict[str, Any]:
    return {k: span.attributes[k] for k in TAG_KEYS if k in span.attributes}


def start(spans: Spans, name: str, scope: str = "some.other.instrumentation") -> None:
    """A span of another library (any instrumentation scope) through the same provider."""
    spans.provider.get_tracer(scope).start_span(name).end()


def by_name(spans: Spans) -> dict[str, dict[str, Any]]:
    return {s.name: tags(s) for s in spans.finished(None)}


def test_every_span_inside_is_stamped_and_none_outside(spans: Spans) -> None:
    start(spans, "before")
    with context(task_type="code_review", tier=2, user_id="u-42", session_id="s-7"):
        start(spans, "openllmetry", "opentelemetry.instrumentation.openai.v1")
        start(spans, "sdk", "com.anthropic.sdk.python")
    start(spans, "after")
    assert by_name(spans) == {"before": {}, "openllmetry": TAGS, "sdk": TAGS, "after": {}}


def test_nested_contexts_merge_inner_wins(spans: Spans) -> None:
    with context(task_type="triage", tier=1, user_id="u-1"):
        with context(task_type="code_review", tier="3"):
            start(spans, "inner")
        start(spans, "outer")
    assert by_name(spans) == {
        "inner": {"thinkmeter.task_type": "code_review", "thinkmeter.tier": 3, "user.id": "u-1"},
        "outer": {"thinkmeter.task_type": "triage", "thinkmeter.tier": 1, "user.id": "u-1"},
    }


def test_attributes_a_span_starts_with_are_kept(spans: Spans) -> None:
    with context(user_id="from-context", task_type="t"):
        spans.provider.get_tracer("x").start_span("explicit", attributes={"user.id": "explicit"}).end()
    assert by_name(spans)["explicit"] == {"user.id": "explicit", "thinkmeter.task_type": "t"}


def test_decorator_sync_and_async(spans: Spans) -> None:
    @context(task_type="summarize", tier=1)
    def sync_work(x: int) -> int:
        start(spans, "sync")
        return x + 1

    @context(task_type="plan", tier=3)
    async def async_work(x: int) -> int:
        await asyncio.sleep(0)
        start(spans, "async")
        return x * 2

    assert sync_work(1) == 2
    assert asyncio.run(async_work(4)) == 8
    assert sync_work.__name__ == "sync_work"
    start(spans, "outside")
    assert by_name(spans) == {
        "sync": {"thinkmeter.task_type": "summarize", "thinkmeter.tier": 1},
        "async": {"thinkmeter.task_type": "plan", "thinkmeter.tier": 3},
        "outside": {},
    }


def test_decorator_restores_the_context_when_the_function_raises(spans: Spans) -> None:
    @context(task_type="fails")
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert thinkmeter_sdk.current_attributes() == {}


def test_concurrent_asyncio_tasks_keep_their_own_tags(spans: Spans) -> None:
    async def one(task_type: str) -> None:
        with context(task_type=task_type):
            await asyncio.sleep(0.01)  # interleave with the other tasks
            start(spans, task_type)

    async def main() -> None:
        with context(user_id="shared"):
            # Tasks created inside the block inherit its tags.
            await asyncio.gather(*(asyncio.create_task(one(f"t{i}")) for i in range(5)))

    asyncio.run(main())
    assert by_name(spans) == {f"t{i}": {"thinkmeter.task_type": f"t{i}", "user.id": "shared"} for i in range(5)}


def test_threads_need_propagate(spans: Spans) -> None:
    """A plain thread starts with an empty context; propagate() / the executor carry it over."""
    with context(task_type="batch", tier=2):
        plain = threading.Thread(target=start, args=(spans, "plain thread"))
        plain.start()
        plain.join()
        carried = threading.Thread(target=propagate(start), args=(spans, "propagated thread"))
        carried.start()
        carried.join()
        with ThreadPoolExecutor(2) as pool:
            # One propagated function may run in several threads at once.
            work = propagate(start)
            list(pool.map(lambda i: work(spans, f"pool {i}"), range(4)))
        with thinkmeter_sdk.ContextThreadPoolExecutor(2) as pool:
            pool.submit(start, spans, "context executor").result()
        asyncio.run(asyncio.to_thread(start, spans, "to_thread"))
    expected = {"thinkmeter.task_type": "batch", "thinkmeter.tier": 2}
    seen = by_name(spans)
    assert seen.pop("plain thread") == {}
    assert seen == {name: expected for name in
                    ("propagated thread", "pool 0", "pool 1", "pool 2", "pool 3", "context executor", "to_thread")}


def test_span_name_starts_a_parent_span_with_a_trace_id(spans: Spans) -> None:
    # configure() tells context() which provider to start its span on.
    thinkmeter_sdk.configure(tracer_provider=spans.provider, exporter=InMemorySpanExporter())
    with context(task_type="qa", span_name="answer question") as tagged:
        trace_id = tagged.trace_id
        start(spans, "llm call")
    assert trace_id is not None and len(trace_id) == 32
    parent = next(s for s in spans.finished(None) if s.name == "answer question")
    child = next(s for s in spans.finished(None) if s.name == "llm call")
    assert format(child.context.trace_id, "032x") == trace_id == format(parent.context.trace_id, "032x")
    assert child.parent.span_id == parent.context.span_id
    assert tags(parent) == {"thinkmeter.task_type": "qa"}


def test_without_a_span_there_is_no_trace_id() -> None:
    with context(task_type="qa") as tagged:
        assert tagged.trace_id is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tier": 0}, "tier"), ({"tier": 10}, "tier"), ({"tier": "high"}, "tier"), ({"tier": True}, "tier"),
    ({"task_type": "  "}, "task_type"), ({"user_id": ""}, "user_id"), ({"span_name": ""}, "span_name"),
])
def test_bad_values_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        context(**kwargs)


def test_non_string_values_are_rejected() -> None:
    with pytest.raises(TypeError, match="user_id must be a string"):
        context(user_id=42)  # type: ignore[arg-type]


def test_generator_functions_cannot_be_decorated() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        context(task_type="x")(gen)


def test_one_context_object_shared_by_concurrent_tasks(spans: Spans) -> None:
    shared = context(task_type="shared", tier=1)

    async def one(i: int) -> None:
        with shared:
            await asyncio.sleep(0.01 * (5 - i))  # the blocks close in another order than they opened
            start(spans, f"task {i}")
        start(spans, f"after {i}")

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(5)))

    asyncio.run(main())
    seen = by_name(spans)
    assert all(seen[f"task {i}"] == {"thinkmeter.task_type": "shared", "thinkmeter.tier": 1} for i in range(5))
    assert all(seen[f"after {i}"] == {} for i in range(5))
