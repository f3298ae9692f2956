"""OpenAI Chat Completions and Responses calls → GenAI span attributes.

Token semantics (OpenAI's are already the convention's): ``prompt_tokens`` /
``input_tokens`` include the cached ones (``*_tokens_details.cached_tokens``), and
``completion_tokens`` / ``output_tokens`` include reasoning
(``*_tokens_details.reasoning_tokens``). The requested effort is ``reasoning_effort``
(chat) or ``reasoning.effort`` (Responses).

Streams: the first chunk that carries generated content marks the time to first chunk;
a streamed chat completion has usage only with ``stream_options.include_usage``
(``instrument(openai_stream_usage=True)`` asks for it and hides the extra chunk).
"""

from __future__ import annotations

import logging
from typing import Any

from thinkmeter_sdk import genai as g
from thinkmeter_sdk._log import log_once
from thinkmeter_sdk.genai import Call, get
from thinkmeter_sdk.instrumentation import Options, Request

PROVIDER = "openai"


def usage_attributes(usage: Any, chat: bool) -> dict[str, Any]:
    """Chat ``usage`` (prompt/completion) or Responses ``usage`` (input/output) as attributes."""
    if chat:
        input_tokens, output_tokens = get(usage, "prompt_tokens"), get(usage, "completion_tokens")
        input_details, output_details = get(usage, "prompt_tokens_details"), get(usage, "completion_tokens_details")
    else:
        input_tokens, output_tokens = get(usage, "input_tokens"), get(usage, "output_tokens")
        input_details, output_details = get(usage, "input_tokens_details"), get(usage, "output_tokens_details")
    return {
        g.INPUT_TOKENS: g.as_int(input_tokens),
        g.OUTPUT_TOKENS: g.as_int(output_tokens),
        g.CACHE_READ: g.as_int(get(input_details, "cached_tokens")),
        g.REASONING_TOKENS: g.as_int(get(output_details, "reasoning_tokens")),
    }


# -- Chat Completions -------------------------------------------------------------------

class ChatAdapter:
    provider = PROVIDER

    def request(self, resource: Any, kwargs: dict[str, Any], options: Options, capture: bool) -> Request:
        stream = kwargs.get("stream") is True
        name, attributes = g.chat_request(
            PROVIDER, resource, kwargs, stream, effort=g.scalar(kwargs.get("reasoning_effort")),
            max_tokens=g.as_int(kwargs.get("max_completion_tokens")) or g.as_int(kwargs.get("max_tokens")))
        state: dict[str, Any] = {}
        if capture:
            messages = g.input_messages(kwargs.get("messages"))
            if messages is not None:
                attributes[g.INPUT_MESSAGES] = messages
        if stream and options.openai_stream_usage and not isinstance(kwargs.get("stream_options"), dict):
            kwargs = {**kwargs, "stream_options": {"include_usage": True}}
            state["hide_usage_chunk"] = True
        return Request(name, attributes, kwargs, stream, state)

    def response(self, call: Call, request: Request, result: Any) -> None:
        choices = get(result, "choices")
        if choices is None:  # a raw response (with_raw_response) or something else: nothing to read
            return
        attributes = usage_attributes(get(result, "usage"), chat=True)
        attributes[g.RESPONSE_ID] = get(result, "id")
        attributes[g.RESPONSE_MODEL] = get(result, "model")
        reasons = [str(r) for r in (get(c, "finish_reason") for c in choices) if r]
        if reasons:
            attributes[g.FINISH_REASONS] = reasons
        if call.capture:
            texts = [get(get(c, "message"), "content") for c in choices]
            attributes[g.OUTPUT_MESSAGES] = g.output_message(
                [t for t in texts if isinstance(t, str)], [], reasons[0] if reasons else None)
        call.set(attributes)

    def observer(self, call: Call, request: Request) -> ChatStream:
        return ChatStream(call, request)


class ChatStream:
    """Watches ``ChatCompletionChunk`` items."""

    def __init__(self, call: Call, request: Request) -> None:
        self.call = call
        self.hide_usage = bool(request.state.get("hide_usage_chunk"))
        self.id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.reasons: list[str] = []
        self.text: list[str] = []

    def on_item(self, chunk: Any) -> bool:
        if self.id is None:
            self.id, self.model = get(chunk, "id"), get(chunk, "model")
        choices = get(chunk, "choices") or ()
        for choice in choices:
            delta = get(choice, "delta")
            content = get(delta, "content")
            if content or get(delta, "tool_calls") or get(delta, "refusal") or get(delta, "function_call"):
                self.call.first_chunk()
                if self.call.capture and isinstance(content, str) and get(choice, "index") in (0, None):
                    self.text.append(content)
            reason = get(choice, "finish_reason")
            if reason:
                self.reasons.append(str(reason))
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
            if self.hide_usage and not choices:
                return False
        return True

    def finish(self, complete: bool) -> None:
        attributes: dict[str, Any] = {g.RESPONSE_ID: self.id, g.RESPONSE_MODEL: self.model}
        if self.usage is not None:
            attributes.update(usage_attributes(self.usage, chat=True))
        elif complete:
            attributes[g.USAGE_MISSING] = True
            log_once("openai.stream_usage", "thinkmeter_sdk: a streamed chat completion had no usage; pass "
                     "stream_options={'include_usage': True} or instrument(openai_stream_usage=True) to count "
                     "its tokens", exc_info=False, level=logging.INFO)
        if self.reasons:
            attributes[g.FINISH_REASONS] = self.reasons
        if self.call.capture:
            attributes[g.OUTPUT_MESSAGES] = g.output_message(["".join(self.text)], [],
                                                             self.reasons[0] if self.reasons else None)
        self.call.set(attributes)


# -- Responses ----------------------------------------------------------------------------

def _response_output(response: Any) -> tuple[list[str], list[str]]:
    """(visible texts, reasoning summaries) of a Response's output items."""
    texts: list[str] = []
    reasoning: list[str] = []
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            for part in get(item, "content") or ():
                text = get(part, "text")
                if isinstance(text, str):
                    texts.append(text)
        elif kind == "reasoning":
            for part in get(item, "summary") or ():
                text = get(part, "text")
                if isinstance(text, str):
                    reasoning.append(text)
    return texts, reasoning


def _response_attributes(call: Call, response: Any) -> dict[str, Any]:
    attributes = usage_attributes(get(response, "usage"), chat=False)
    attributes[g.RESPONSE_ID] = get(response, "id")
    attributes[g.RESPONSE_MODEL] = get(response, "model")
    status = get(response, "status")
    if isinstance(status, str):
        attributes[g.FINISH_REASONS] = [status]
    if call.capture:
        texts, reasoning = _response_output(response)
        attributes[g.OUTPUT_MESSAGES] = g.output_message(texts, reasoning, status if isinstance(status, str) else None)
    return attributes


class ResponsesAdapter:
    provider = PROVIDER

    def request(self, resource: Any, kwargs: dict[str, Any], options: Options, capture: bool) -> Request:
        stream = kwargs.get("stream") is True
        reasoning = kwargs.get("reasoning")
        name, attributes = g.chat_request(
            PROVIDER, resource, kwargs, stream, max_tokens=g.as_int(kwargs.get("max_output_tokens")),
            effort=g.scalar(reasoning.get("effort")) if isinstance(reasoning, dict) else None)
        if capture:
            messages = g.input_messages(kwargs.get("input"))
            if messages is not None:
                attributes[g.INPUT_MESSAGES] = messages
            instructions = kwargs.get("instructions")
            if isinstance(instructions, str):
                attributes[g.SYSTEM_INSTRUCTIONS] = g.to_json([{"type": "text", "content": instructions}])
        return Request(name, attributes, kwargs, stream)

    def response(self, call: Call, request: Request, result: Any) -> None:
        if get(result, "object") != "response" and get(result, "output") is None:
            return
        call.set(_response_attributes(call, result))

    def observer(self, call: Call, request: Request) -> ResponsesStream:
        return ResponsesStream(call)


FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStream:
    """Watches Responses API stream events; the final event carries the whole response."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.response: Any = None
        self.final: Any = None

    def on_item(self, event: Any) -> bool:
        kind = get(event, "type")
        if isinstance(kind, str):
            if kind.endswith(".delta"):
                self.call.first_chunk()
            elif kind in FINAL_EVENTS:
                self.final = get(event, "response")
            elif self.response is None and kind == "response.created":
                self.response = get(event, "response")
        return True

    def finish(self, complete: bool) -> None:
        if self.final is not None:
            self.call.set(_response_attributes(self.call, self.final))
        elif self.response is not None:
            self.call.set({g.RESPONSE_ID: get(self.response, "id"), g.RESPONSE_MODEL: get(self.response, "model")})
