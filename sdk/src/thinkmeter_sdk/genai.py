"""One LLM call as an OpenTelemetry GenAI span: names, token semantics, lifecycle.

Attribute names follow the OTel GenAI semantic conventions; token counts follow
Thinkmeter's (DESIGN.md §4), which are the convention's:

- ``gen_ai.usage.input_tokens``: every prompt token, cache reads and writes included
  (Anthropic's raw usage leaves them out: the instrumentation adds them back);
- ``gen_ai.usage.output_tokens``: every billed output token, reasoning included;
- ``gen_ai.usage.reasoning.output_tokens``: the reasoning part, when the provider reports it;
- ``gen_ai.usage.cache_read.input_tokens`` / ``gen_ai.usage.cache_creation.input_tokens``;
- ``gen_ai.response.time_to_first_chunk``: seconds from the call to the first generated
  chunk of a stream.

A :class:`Call` never raises into the application: every method that runs after the
provider answered catches its own errors and logs them once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from thinkmeter_sdk._log import log_once

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REASONING_EFFORT = "gen_ai.request.reasoning_effort"
THINKING_BUDGET = "thinkmeter.thinking_budget"
ANTHROPIC_BUDGET = "anthropic.thinking.budget_tokens"
ANTHROPIC_THINKING_TYPE = "anthropic.thinking.type"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE = "gen_ai.usage.cache_creation.input_tokens"
TTFT = "gen_ai.response.time_to_first_chunk"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
# Thinking tokens estimated from the thinking text (≈3.8 characters per token) when the
# provider did not report them; the text itself is only sent when content capture is on.
ESTIMATED_REASONING = "thinkmeter.usage.reasoning.estimated_output_tokens"
USAGE_MISSING = "thinkmeter.usage.missing"
CHARS_PER_TOKEN = 3.8


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


def get(obj: Any, name: str) -> Any:
    """A field of a response object (pydantic model or dict); None when absent."""
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, Mapping):
        return obj.get(name)
    return value


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def scalar(value: Any) -> str | int | float | bool | None:
    """A request argument that is a plain value (not the client's NOT_GIVEN / Omit sentinels)."""
    return value if isinstance(value, str | int | float | bool) else None


def server_attributes(resource: Any) -> dict[str, Any]:
    """server.address / server.port from a client resource's base URL."""
    url = getattr(getattr(resource, "_client", None), "base_url", None)
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return {}
    attributes: dict[str, Any] = {SERVER_ADDRESS: host}
    port = getattr(url, "port", None)
    if isinstance(port, int):
        attributes[SERVER_PORT] = port
    return attributes


def chat_request(provider: str, resource: Any, kwargs: Mapping[str, Any], stream: bool, *,
                 max_tokens: int | None, effort: Any = None) -> tuple[str, dict[str, Any]]:
    """The span name and the attributes every provider's chat request has.

    Operation, provider, requested model, ``max_tokens``, stream, temperature, the reasoning
    ``effort`` (when a string) and the server's address; each adapter adds its own.
    """
    model = scalar(kwargs.get("model"))
    attributes: dict[str, Any] = {OPERATION: "chat", PROVIDER: provider}
    if isinstance(model, str):
        attributes[REQUEST_MODEL] = model
    if max_tokens is not None:
        attributes[REQUEST_MAX_TOKENS] = max_tokens
    if stream:
        attributes[REQUEST_STREAM] = True
    temperature = scalar(kwargs.get("temperature"))
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        attributes[REQUEST_TEMPERATURE] = float(temperature)
    if isinstance(effort, str):
        attributes[REASONING_EFFORT] = effort
    attributes.update(server_attributes(resource))
    return f"chat {model}" if model else "chat", attributes


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


class Call:
    """The span of one provider call, from request to the end of its response or stream."""

    __slots__ = ("capture", "ended", "first_chunk_seen", "span", "started")

    def __init__(self, tracer: trace.Tracer, name: str, attributes: dict[str, Any], capture: bool) -> None:
        self.span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        self.started = time.perf_counter()
        self.ended = False
        self.first_chunk_seen = False
        self.capture = capture

    def first_chunk(self) -> None:
        if not self.first_chunk_seen:
            self.first_chunk_seen = True
            self.span.set_attribute(TTFT, time.perf_counter() - self.started)

    def set(self, attributes: Mapping[str, Any]) -> None:
        self.span.set_attributes({key: value for key, value in attributes.items() if value is not None})

    def fail(self, exc: BaseException) -> None:
        """The call raised: record it and end the span (the exception goes on to the app)."""
        if self.ended:
            return
        try:
            self.span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            self.span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1000])
            self.span.record_exception(exc)
        except Exception:
            log_once("span.fail", "thinkmeter_sdk could not record an error on its span")
        self.end()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            try:
                self.span.end()
            except Exception:
                log_once("span.end", "thinkmeter_sdk could not end its span")


def text_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string or content blocks) as GenAI-convention message parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable) and not isinstance(content, bytes | Mapping):
        for block in content:
            kind = get(block, "type")
            text = get(block, "text")
            if isinstance(text, str):
                parts.append({"type": "text", "content": text})
            elif kind in ("thinking", "reasoning") and isinstance(get(block, "thinking"), str):
                parts.append({"type": "reasoning", "content": get(block, "thinking")})
            else:
                parts.append({"type": str(kind or "unknown")})
    return parts


def input_messages(messages: Any) -> str | None:
    """Request messages ([{role, content}]) as ``gen_ai.input.messages`` JSON."""
    if isinstance(messages, str):
        return to_json([{"role": "user", "parts": text_parts(messages)}])
    if not isinstance(messages, Iterable) or isinstance(messages, bytes | Mapping):
        return None
    out = []
    for message in messages:
        role = get(message, "role")
        out.append({"role": str(role or get(message, "type") or "user"), "parts": text_parts(get(message, "content"))})
    return to_json(out)


def output_message(texts: list[str], thinking: list[str], finish_reason: str | None) -> str:
    parts = [{"type": "reasoning", "content": t} for t in thinking if t]
    parts += [{"type": "text", "content": t} for t in texts if t]
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return to_json([message])
