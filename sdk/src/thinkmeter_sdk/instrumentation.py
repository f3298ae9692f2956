"""``instrument()``: wrap the installed anthropic and openai clients' calls in GenAI spans.

Wrapped methods (sync and async classes; ``stream=True`` included):
``openai`` ``chat.completions.create`` and ``responses.create``; ``anthropic``
``messages.create`` and ``beta.messages.create``. OpenAI's ``.stream()`` helpers go through
``create`` and are covered too; its ``.parse()`` helpers and Anthropic's ``messages.stream()``
call the API directly and are not (the Anthropic SDK's own span reports the latter).

Rules the wrappers keep:

- the provider call runs exactly once, with the application's arguments (unless
  ``openai_stream_usage=True``, see :func:`instrument`), and its result or exception
  reaches the application unchanged; our own errors are caught and logged once;
- a method that another instrumentation has already wrapped (wrapt proxies of
  OpenLLMetry, OpenLIT, the OTel contrib instrumentation, Langfuse, ...; OpenInference's
  wrapper of the client's ``request``) is left to it, whichever was installed first: at
  ``instrument()`` time we skip it, and at call time our wrapper steps aside when another
  wrapper sits on top of it;
- a stream keeps its type and object: we observe it by replacing its private iterator,
  and the span ends when the stream is exhausted, fails, is closed or is dropped.

The Anthropic SDK (2.x) emits spans of its own when a TracerProvider is registered; ours
is then their parent, and Thinkmeter counts the call's usage once (the descendant span).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from thinkmeter_sdk import _state
from thinkmeter_sdk._log import log_once, logger
from thinkmeter_sdk.genai import Call
from thinkmeter_sdk.settings import env_flag

MARKER = "__thinkmeter_wrapper__"


class Observer(Protocol):
    """Watches a stream's items; ``finish`` sets the response attributes and ends the call."""

    def on_item(self, item: Any) -> bool:
        """Record one item; False hides it from the application (a usage chunk we asked for)."""
        ...

    def finish(self, complete: bool) -> None: ...


@dataclass
class Request:
    """What the adapter made of a call's arguments."""

    name: str
    attributes: dict[str, Any]
    kwargs: dict[str, Any]
    stream: bool
    state: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    provider: str

    def request(self, resource: Any, kwargs: dict[str, Any], options: Options, capture: bool) -> Request: ...

    def response(self, call: Call, request: Request, result: Any) -> None: ...

    def observer(self, call: Call, request: Request) -> Observer: ...


@dataclass
class Options:
    """What ``instrument()`` was told; read by the wrappers at every call."""

    tracer_provider: trace.TracerProvider | None = None
    capture_content: bool | None = None
    openai_stream_usage: bool = False
    active: bool = True
    capture_from_env: bool = False  # THINKMETER_CAPTURE_CONTENT, read by instrument()

    def capture(self) -> bool:
        """instrument(capture_content=...), else configure()'s setting, else the environment."""
        if self.capture_content is not None:
            return self.capture_content
        settings = _state.current.settings
        if settings is not None:
            return settings.capture_content
        return self.capture_from_env


options = Options()


@dataclass
class Target:
    """One method we wrap: ``owner.<method>`` inside the package directory ``package_dir``."""

    package: str
    module: str
    owner: str
    method: str
    is_async: bool
    adapter: Adapter
    cls: type | None = None
    original: Callable[..., Any] | None = None
    wrapper: Callable[..., Any] | None = None
    package_dir: str = ""

    @property
    def label(self) -> str:
        return f"{self.module}.{self.owner}.{self.method}"


def foreign(fn: Any, package_dir: str) -> bool:
    """Whether ``fn`` is another instrumentation's wrapper rather than the library's own code.

    Wrapt proxies (and anything else that is not a plain function) are; a plain function
    whose code lives outside the library's package directory is (``functools.wraps`` style);
    the library's own decorators (``required_args``) are not, nor are our wrappers.
    """
    if fn is None:
        return False
    kind = type(fn)  # not isinstance(): proxies pretend to be the function they wrap
    if kind is not types.FunctionType:
        return kind not in (staticmethod, classmethod, property)
    if getattr(fn, MARKER, False):
        return False
    return not fn.__code__.co_filename.startswith(package_dir)


def _client_wrapped(resource: Any, package_dir: str) -> bool:
    """OpenInference wraps the client's ``request`` method rather than the resource's."""
    client = getattr(resource, "_client", None)
    return client is not None and foreign(getattr(type(client), "request", None), package_dir)


def _begin(target: Target, resource: Any, kwargs: dict[str, Any]) -> tuple[Call, Request] | None:
    """Start the span, or None when this call is not ours to instrument."""
    if not options.active:
        return None
    cls = target.cls
    if cls is not None and cls.__dict__.get(target.method) is not target.wrapper:
        return None  # another instrumentation wrapped the method after us: its span covers the call
    try:
        if _client_wrapped(resource, target.package_dir):
            return None
        capture = options.capture()
        request = target.adapter.request(resource, kwargs, options, capture)
        call = Call(_state.tracer(options.tracer_provider), request.name, request.attributes, capture)
        return call, request
    except Exception:
        log_once(f"begin:{target.label}", "thinkmeter_sdk could not start a span for %s", target.label)
        return None


def _complete(target: Target, call: Call, request: Request, result: Any) -> Any:
    """After the provider answered: record the response or start watching the stream."""
    try:
        if request.stream and hasattr(result, "_iterator"):
            observer = target.adapter.observer(call, request)
            if target.is_async:
                hook_async_stream(result, call, observer)
            else:
                hook_sync_stream(result, call, observer)
            return result
        target.adapter.response(call, request, result)
    except Exception:
        log_once(f"complete:{target.label}", "thinkmeter_sdk could not record the response of %s", target.label)
    call.end()
    return result


def _finish(call: Call, observer: Observer, complete: bool, error: BaseException | None = None) -> None:
    """Record what the stream gave (all of it, or up to where it stopped) and end the span."""
    if call.ended:
        return
    try:
        observer.finish(complete)
    except Exception:
        log_once("stream.finish", "thinkmeter_sdk could not record a stream's usage")
    if error is not None:
        call.fail(error)
    else:
        call.end()


def _observe(call: Call, observer: Observer, item: Any) -> bool:
    try:
        return observer.on_item(item)
    except Exception:
        log_once("stream.item", "thinkmeter_sdk could not read a stream event")
        return True


def hook_sync_stream(stream: Any, call: Call, observer: Observer) -> None:
    """Watch a sync stream through its private iterator; the object stays the same."""
    inner = stream._iterator

    def observed() -> Any:
        try:
            for item in inner:
                if _observe(call, observer, item):
                    yield item
        except GeneratorExit:
            _finish(call, observer, complete=False)
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            raise
        except BaseException as exc:
            _finish(call, observer, complete=False, error=exc)
            raise
        _finish(call, observer, complete=True)

    _replace(stream, observed(), call, observer, is_async=False)


def hook_async_stream(stream: Any, call: Call, observer: Observer) -> None:
    """Watch an async stream through its private iterator; the object stays the same."""
    inner = stream._iterator

    async def observed() -> Any:
        try:
            async for item in inner:
                if _observe(call, observer, item):
                    yield item
        except GeneratorExit:
            _finish(call, observer, complete=False)
            raise
        except BaseException as exc:
            _finish(call, observer, complete=False, error=exc)
            raise
        _finish(call, observer, complete=True)

    _replace(stream, observed(), call, observer, is_async=True)


def _replace(stream: Any, iterator: Any, call: Call, observer: Observer, is_async: bool) -> None:
    stream.__dict__["_iterator"] = iterator
    # Closed before the end, or dropped unread: the span still ends, with what was seen.
    weakref.finalize(stream, _finish, call, observer, False)
    ref = weakref.ref(stream)
    close_method = getattr(type(stream), "close", None)
    if close_method is None:
        return
    if is_async:
        async def aclose() -> Any:
            _finish(call, observer, complete=False)
            target = ref()
            return await close_method(target) if target is not None else None

        stream.__dict__["close"] = aclose
    else:
        def close() -> Any:
            _finish(call, observer, complete=False)
            target = ref()
            return close_method(target) if target is not None else None

        stream.__dict__["close"] = close


@contextlib.contextmanager
def _current(call: Call) -> Iterator[None]:
    """Around the provider call: our span is the current one, and an exception fails it (and goes on)."""
    token = otel_context.attach(trace.set_span_in_context(call.span))
    try:
        yield
    except BaseException as exc:
        call.fail(exc)
        raise
    finally:
        otel_context.detach(token)


def make_wrapper(target: Target, original: Callable[..., Any]) -> Callable[..., Any]:
    if target.is_async:
        @functools.wraps(original)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            begun = _begin(target, self, kwargs)
            if begun is None:
                return await original(self, *args, **kwargs)
            call, request = begun
            with _current(call):
                result = await original(self, *args, **request.kwargs)
            return _complete(target, call, request, result)

        wrapper: Callable[..., Any] = async_wrapper
    else:
        @functools.wraps(original)
        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            begun = _begin(target, self, kwargs)
            if begun is None:
                return original(self, *args, **kwargs)
            call, request = begun
            with _current(call):
                result = original(self, *args, **request.kwargs)
            return _complete(target, call, request, result)

        wrapper = sync_wrapper
    setattr(wrapper, MARKER, True)
    return wrapper


# -- targets ----------------------------------------------------------------------------

_installed: dict[str, Target] = {}


def _targets(package: str) -> list[Target]:
    if package == "openai":
        from thinkmeter_sdk import openai_calls as o

        chat, responses = o.ChatAdapter(), o.ResponsesAdapter()
        return [
            Target("openai", "openai.resources.chat.completions", "Completions", "create", False, chat),
            Target("openai", "openai.resources.chat.completions", "AsyncCompletions", "create", True, chat),
            Target("openai", "openai.resources.responses", "Responses", "create", False, responses),
            Target("openai", "openai.resources.responses", "AsyncResponses", "create", True, responses),
        ]
    from thinkmeter_sdk import anthropic_calls as a

    messages = a.MessagesAdapter()
    return [
        Target("anthropic", "anthropic.resources.messages", "Messages", "create", False, messages),
        Target("anthropic", "anthropic.resources.messages", "AsyncMessages", "create", True, messages),
        Target("anthropic", "anthropic.resources.beta.messages", "Messages", "create", False, messages),
        Target("anthropic", "anthropic.resources.beta.messages", "AsyncMessages", "create", True, messages),
    ]


def _install(target: Target) -> str:
    """Wrap one method; returns what happened (for the summary)."""
    if target.label in _installed:
        return "already instrumented"
    try:
        package = importlib.import_module(target.package)
        module = importlib.import_module(target.module)
        cls = getattr(module, target.owner)
    except (ImportError, AttributeError):
        return "not in this version"
    package_file = getattr(package, "__file__", None) or ""
    target.package_dir = os.path.dirname(package_file) + os.sep
    current = cls.__dict__.get(target.method)
    if current is None:
        return "not in this version"
    if foreign(current, target.package_dir):
        return "left to the instrumentation already wrapping it"
    if target.is_async != inspect.iscoroutinefunction(inspect.unwrap(current)):
        return "unexpected signature"
    target.cls, target.original = cls, current
    target.wrapper = make_wrapper(target, current)
    setattr(cls, target.method, target.wrapper)
    _installed[target.label] = target
    return "instrumented"


def instrument(
    *,
    openai: bool = True,
    anthropic: bool = True,
    tracer_provider: trace.TracerProvider | None = None,
    capture_content: bool | None = None,
    openai_stream_usage: bool = False,
) -> dict[str, str]:
    """Instrument the installed anthropic and openai packages (missing ones are skipped).

    ``tracer_provider``: where our spans go (default: the one ``configure()`` used, else the
    global one). ``capture_content``: record prompt and completion text (default:
    ``configure(capture_content=...)`` / ``THINKMETER_CAPTURE_CONTENT``, else off).
    ``openai_stream_usage``: ask OpenAI for the usage of streamed chat completions
    (``stream_options.include_usage``) when the application did not, and hide that extra
    final chunk from it; without usage a streamed chat call has no token counts.

    Returns ``{method: outcome}`` for every method considered. Calling it again only
    changes the options.
    """
    options.tracer_provider = tracer_provider
    options.capture_content = capture_content
    options.openai_stream_usage = openai_stream_usage
    try:
        options.capture_from_env = env_flag("THINKMETER_CAPTURE_CONTENT", os.environ)
    except ValueError:
        logger.warning("thinkmeter_sdk: THINKMETER_CAPTURE_CONTENT is neither true nor false; content is not captured")
        options.capture_from_env = False
    options.active = True
    outcome: dict[str, str] = {}
    for package, wanted in (("openai", openai), ("anthropic", anthropic)):
        if not wanted:
            continue
        try:
            importlib.import_module(package)
        except ImportError:
            outcome[package] = "not installed"
            continue
        for target in _targets(package):
            outcome[target.label] = _install(target)
    for label, result in outcome.items():
        if result not in ("instrumented", "already instrumented"):
            logger.info("thinkmeter_sdk: %s: %s", label, result)
    return outcome


def uninstrument() -> None:
    """Put the original methods back (a wrapper someone placed on top of ours stays, inactive)."""
    for label, target in list(_installed.items()):
        if target.cls is not None and target.cls.__dict__.get(target.method) is target.wrapper:
            setattr(target.cls, target.method, target.original)
        del _installed[label]
    options.active = False


def instrumented() -> list[str]:
    """The methods currently wrapped by us."""
    return sorted(_installed)
