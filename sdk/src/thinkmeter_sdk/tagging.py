"""Tag every span started in a block of code with task type, tier, user and session.

``with thinkmeter_sdk.context(task_type="code_review", tier=2, user_id="u-42"):`` (or the
same object as a decorator on a sync or async function) puts the values into the
OpenTelemetry context, which lives in a :mod:`contextvars` variable, and
:class:`ContextSpanProcessor` — added to the TracerProvider by ``configure()`` — stamps
them on **every** span started inside: ours, and those of OpenLLMetry, OpenInference,
OpenLIT, the OTel contrib instrumentation and the Anthropic SDK's own spans, since they
all go through the provider's processors.

Where the values travel:

- nested ``context`` blocks merge (inner values win; ``None`` inherits);
- asyncio tasks inherit them (a task copies the context when it is created), and so does
  ``asyncio.to_thread``;
- plain threads do **not** (a new thread starts with an empty context): submit
  ``propagate(fn)`` instead of ``fn`` (``pool.submit(thinkmeter_sdk.propagate(fn), x)``),
  use :class:`ContextThreadPoolExecutor`, or run ``contextvars.copy_context().run(fn)``
  yourself; ``loop.run_in_executor`` needs ``propagate`` too.

Stamped attributes: ``thinkmeter.task_type``, ``thinkmeter.tier`` (int), ``user.id``,
``session.id``. An attribute the span already has when it starts is left alone.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from thinkmeter_sdk import _state

P = ParamSpec("P")
R = TypeVar("R")

CONTEXT_KEY = otel_context.create_key("thinkmeter.context")
TASK_TYPE = "thinkmeter.task_type"
TIER = "thinkmeter.tier"
USER_ID = "user.id"
SESSION_ID = "session.id"
MAX_TIER = 9  # Thinkmeter stores tiers 1-9


def _check(task_type: str | None, tier: int | str | None, user_id: str | None,
           session_id: str | None) -> dict[str, str | int]:
    values: dict[str, str | int] = {}
    for key, value, name in ((TASK_TYPE, task_type, "task_type"), (USER_ID, user_id, "user_id"),
                             (SESSION_ID, session_id, "session_id")):
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{name} must not be blank (pass None to inherit it)")
        values[key] = value.strip()
    if tier is not None:
        number: int | None = None
        if isinstance(tier, bool):
            number = None
        elif isinstance(tier, int):
            number = tier
        elif isinstance(tier, str) and tier.strip().isdigit():
            number = int(tier.strip())
        if number is None or not 1 <= number <= MAX_TIER:
            raise ValueError(f"tier must be an integer from 1 to {MAX_TIER}, not {tier!r}")
        values[TIER] = number
    return values


_open_blocks: contextvars.ContextVar[tuple[tuple[int, object, trace.Span | None], ...]] = contextvars.ContextVar(
    "thinkmeter_open_blocks", default=())


def current_attributes(ctx: otel_context.Context | None = None) -> Mapping[str, str | int]:
    """The attributes that a span started now (or in ``ctx``) would be stamped with."""
    value = otel_context.get_value(CONTEXT_KEY, ctx)
    return cast("Mapping[str, str | int]", value) if value else {}


class context:  # noqa: N801 - used like a function: ``with thinkmeter_sdk.context(...)``
    """Tag the spans started inside a ``with`` block or a decorated function.

    ``span_name``: also start a span of that name around the block (its trace id is then
    ``.trace_id``), so that the LLM calls inside share one trace that ``score()`` can rate.
    """

    def __init__(self, task_type: str | None = None, tier: int | str | None = None,
                 user_id: str | None = None, session_id: str | None = None, *,
                 span_name: str | None = None) -> None:
        self.values = _check(task_type, tier, user_id, session_id)
        if span_name is not None and not (isinstance(span_name, str) and span_name.strip()):
            raise ValueError("span_name must be a non-blank string")
        self.span_name = span_name

    # -- context manager -------------------------------------------------------------
    def _enter(self) -> tuple[object, trace.Span | None]:
        merged = {**current_attributes(), **self.values}
        ctx = otel_context.set_value(CONTEXT_KEY, merged)
        span: trace.Span | None = None
        if self.span_name:
            token = otel_context.attach(ctx)  # so the span is stamped too
            try:
                span = _state.tracer().start_span(self.span_name)
            finally:
                otel_context.detach(token)
            ctx = trace.set_span_in_context(span, ctx)
        return otel_context.attach(ctx), span

    @staticmethod
    def _exit(token: object, span: trace.Span | None, exc: BaseException | None) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]
        if span is not None:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            span.end()

    def __enter__(self) -> context:
        # The open blocks live in the context itself, so one context object may be used by
        # concurrent threads and asyncio tasks at once.
        token, span = self._enter()
        _open_blocks.set((*_open_blocks.get(), (id(self), token, span)))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        blocks = _open_blocks.get()
        index = max(i for i, block in enumerate(blocks) if block[0] == id(self))
        _, token, span = blocks[index]
        _open_blocks.set(blocks[:index] + blocks[index + 1:])
        self._exit(token, span, exc)

    @property
    def trace_id(self) -> str | None:
        """The current trace id (32 hex digits), inside the block; None outside any span."""
        return current_trace_id()

    # -- decorator -------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"context() cannot decorate the generator function {fn.__qualname__}: use "
                "`with thinkmeter_sdk.context(...)` inside it around the calls to tag"
            )
        if inspect.iscoroutinefunction(fn):
            async_fn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                token, span = self._enter()
                try:
                    result = await async_fn(*args, **kwargs)
                except BaseException as exc:
                    self._exit(token, span, exc)
                    raise
                self._exit(token, span, None)
                return result

            return cast("Callable[P, R]", run_async)

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            token, span = self._enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._exit(token, span, exc)
                raise
            self._exit(token, span, None)
            return result

        return run

    def __repr__(self) -> str:
        return f"thinkmeter_sdk.context({self.values!r})"


def current_trace_id() -> str | None:
    """The trace id of the current span as 32 hex digits, or None without a valid span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


# -- threads ----------------------------------------------------------------------------

def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to the current context: run it in another thread and its spans are
    tagged as if it ran here (``pool.submit(propagate(fn), ...)``, ``Thread(target=propagate(fn))``).

    Each call runs in a fresh copy of the context captured now, so the wrapper may be
    called from several threads at once.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in the context of the code that submitted them."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


# -- the span processor -----------------------------------------------------------------

class ContextSpanProcessor(SpanProcessor):
    """Stamps the current ``context(...)`` values on every span as it starts.

    ``configure()`` adds one to the TracerProvider; add it yourself to a provider that
    ``configure()`` does not know about: ``provider.add_span_processor(ContextSpanProcessor())``.
    """

    def __init__(self) -> None:
        self._active = True

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if not self._active:
            return
        found = otel_context.get_value(CONTEXT_KEY, parent_context)
        if not found and parent_context is not None:
            found = otel_context.get_value(CONTEXT_KEY)
        if not found:
            return
        values = cast("Mapping[str, str | int]", found)
        existing = span.attributes
        if existing:
            values = {k: v for k, v in values.items() if existing.get(k) is None}
        span.set_attributes(values)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        self._active = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
