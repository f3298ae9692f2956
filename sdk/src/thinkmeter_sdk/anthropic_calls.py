"""Anthropic Messages calls → GenAI span attributes.

Anthropic's raw usage counts ``input_tokens`` *without* the cache: the span reports
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``, as the OTel
convention (and the Anthropic SDK's own spans) do. ``output_tokens`` includes thinking;
``usage.output_tokens_details.thinking_tokens``, when the API reports it, becomes
``gen_ai.usage.reasoning.output_tokens``. Otherwise the thinking text's length gives an
estimate in ``thinkmeter.usage.reasoning.estimated_output_tokens`` (the text itself is
sent only with content capture on, as a ``reasoning`` part of ``gen_ai.output.messages``).

Extended thinking's ``thinking={"type": "enabled", "budget_tokens": N}`` becomes
``thinkmeter.thinking_budget`` and ``anthropic.thinking.budget_tokens``;
``output_config={"effort": ...}`` becomes ``gen_ai.request.reasoning_effort``.

Streams: usage comes from ``message_start`` and is completed by ``message_delta``
(cumulative output; newer API versions repeat input and cache counts there); the first
``content_block_delta`` marks the time to first chunk.
"""

from __future__ import annotations

from typing import Any

from thinkmeter_sdk import genai as g
from thinkmeter_sdk.genai import Call, get
from thinkmeter_sdk.instrumentation import Options, Request

PROVIDER = "anthropic"
USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")


def usage_attributes(usage: dict[str, int | None], thinking_tokens: int | None,
                     thinking_chars: int) -> dict[str, Any]:
    raw_input = usage.get("input_tokens")
    cache_read = usage.get("cache_read_input_tokens")
    cache_write = usage.get("cache_creation_input_tokens")
    output = usage.get("output_tokens")
    attributes: dict[str, Any] = {
        g.INPUT_TOKENS: None if raw_input is None else raw_input + (cache_read or 0) + (cache_write or 0),
        g.OUTPUT_TOKENS: output,
        g.CACHE_READ: cache_read,
        g.CACHE_WRITE: cache_write,
        g.REASONING_TOKENS: thinking_tokens,
    }
    if thinking_tokens is None and thinking_chars:
        estimate = g.estimate_tokens(thinking_chars)
        attributes[g.ESTIMATED_REASONING] = min(estimate, output) if output is not None else estimate
    return attributes


def read_usage(usage: Any, into: dict[str, int | None]) -> int | None:
    """Copy the usage fields that are present into ``into``; returns the thinking tokens if reported."""
    for name in USAGE_FIELDS:
        value = g.as_int(get(usage, name))
        if value is not None:
            into[name] = value
    return g.as_int(get(get(usage, "output_tokens_details"), "thinking_tokens"))


class MessagesAdapter:
    provider = PROVIDER

    def request(self, resource: Any, kwargs: dict[str, Any], options: Options, capture: bool) -> Request:
        stream = kwargs.get("stream") is True
        output_config = kwargs.get("output_config")
        name, attributes = g.chat_request(
            PROVIDER, resource, kwargs, stream, max_tokens=g.as_int(kwargs.get("max_tokens")),
            effort=output_config.get("effort") if isinstance(output_config, dict) else None)
        thinking = kwargs.get("thinking")
        if isinstance(thinking, dict):
            kind = g.scalar(thinking.get("type"))
            if isinstance(kind, str):
                attributes[g.ANTHROPIC_THINKING_TYPE] = kind
            budget = g.as_int(thinking.get("budget_tokens"))
            if budget is not None:
                attributes[g.THINKING_BUDGET] = budget
                attributes[g.ANTHROPIC_BUDGET] = budget
        if capture:
            messages = g.input_messages(kwargs.get("messages"))
            if messages is not None:
                attributes[g.INPUT_MESSAGES] = messages
            system = kwargs.get("system")
            if isinstance(system, str) or (isinstance(system, list) and system):
                attributes[g.SYSTEM_INSTRUCTIONS] = g.to_json(g.text_parts(system))
        return Request(name, attributes, kwargs, stream)

    def response(self, call: Call, request: Request, result: Any) -> None:
        content = get(result, "content")
        if get(result, "type") != "message" or content is None:
            return  # a raw response (with_raw_response) or something else: nothing to read
        usage: dict[str, int | None] = {}
        thinking_tokens = read_usage(get(result, "usage"), usage)
        texts: list[str] = []
        thinking: list[str] = []
        for block in content:
            kind = get(block, "type")
            if kind == "thinking":
                text = get(block, "thinking")
                if isinstance(text, str):
                    thinking.append(text)
            elif kind == "text" and call.capture:
                text = get(block, "text")
                if isinstance(text, str):
                    texts.append(text)
        attributes = usage_attributes(usage, thinking_tokens, sum(len(t) for t in thinking))
        attributes[g.RESPONSE_ID] = get(result, "id")
        attributes[g.RESPONSE_MODEL] = get(result, "model")
        stop = get(result, "stop_reason")
        if isinstance(stop, str):
            attributes[g.FINISH_REASONS] = [stop]
        if call.capture:
            attributes[g.OUTPUT_MESSAGES] = g.output_message(texts, thinking, stop if isinstance(stop, str) else None)
        call.set(attributes)

    def observer(self, call: Call, request: Request) -> MessagesStream:
        return MessagesStream(call)


class MessagesStream:
    """Watches raw message stream events (message_start … message_stop)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.id: str | None = None
        self.model: str | None = None
        self.usage: dict[str, int | None] = {}
        self.thinking_tokens: int | None = None
        self.thinking_chars = 0
        self.stop: str | None = None
        self.blocks: dict[int, tuple[str, list[str]]] = {}

    def on_item(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "content_block_delta":
            self.call.first_chunk()
            delta = get(event, "delta")
            delta_type = get(delta, "type")
            if delta_type == "thinking_delta":
                text = get(delta, "thinking")
                if isinstance(text, str):
                    self.thinking_chars += len(text)
                    if self.call.capture:
                        self._block(event, "thinking").append(text)
            elif delta_type == "text_delta" and self.call.capture:
                text = get(delta, "text")
                if isinstance(text, str):
                    self._block(event, "text").append(text)
        elif kind == "message_start":
            message = get(event, "message")
            self.id, self.model = get(message, "id"), get(message, "model")
            reported = read_usage(get(message, "usage"), self.usage)
            self.thinking_tokens = reported if reported is not None else self.thinking_tokens
        elif kind == "message_delta":
            reported = read_usage(get(event, "usage"), self.usage)
            self.thinking_tokens = reported if reported is not None else self.thinking_tokens
            stop = get(get(event, "delta"), "stop_reason")
            if isinstance(stop, str):
                self.stop = stop
        return True

    def _block(self, event: Any, kind: str) -> list[str]:
        index = get(event, "index")
        key = index if isinstance(index, int) else len(self.blocks)
        if key not in self.blocks:
            self.blocks[key] = (kind, [])
        return self.blocks[key][1]

    def finish(self, complete: bool) -> None:
        attributes = usage_attributes(self.usage, self.thinking_tokens, self.thinking_chars) if self.usage else {}
        attributes[g.RESPONSE_ID] = self.id
        attributes[g.RESPONSE_MODEL] = self.model
        if self.stop:
            attributes[g.FINISH_REASONS] = [self.stop]
        if self.call.capture:
            ordered = [self.blocks[k] for k in sorted(self.blocks)]
            attributes[g.OUTPUT_MESSAGES] = g.output_message(
                ["".join(parts) for kind, parts in ordered if kind == "text"],
                ["".join(parts) for kind, parts in ordered if kind == "thinking"], self.stop)
        self.call.set(attributes)
