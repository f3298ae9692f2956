"""Turn one decoded span into Thinkmeter's normalized columns (pure; no Django, no I/O).

Implements DESIGN.md §4: attribute aliases (span before resource, integers as strings),
provider names, and the provider token semantics:
- input_tokens counts every prompt token; cache reads and writes are parts of it
  (Anthropic's raw usage excludes them: add them back when the span is in that shape);
- output_tokens counts every billed generated token; reasoning is a part of it
  (Gemini reports thoughts beside candidates: add them);
- Anthropic thinking not reported separately is estimated from the thinking text,
  never above output, and flagged ``reasoning_estimated``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ingest import aliases
from ingest.decode import DecodedSpan

CHARS_PER_TOKEN = 3.8  # English prose, Claude tokenizer; an estimate is flagged as such
MAX_ATTRIBUTE_CHARS = 8192
TRUNCATION_MARKER = "…[truncated by thinkmeter]"

PROVIDER_NAMES = {
    "openai": "openai", "azure.ai.openai": "openai", "az.ai.openai": "openai", "azure": "openai",
    "anthropic": "anthropic", "aws.bedrock": "aws.bedrock",
    "gemini": "google", "gcp.gemini": "google", "gcp.vertex_ai": "google", "vertex_ai": "google",
    "google": "google", "google.generative-ai": "google", "google.vertex": "google", "vertexai": "google",
    "gcp.gen_ai": "google", "googlegenerativeai": "google",
    "deepseek": "deepseek", "xai": "xai", "x_ai": "xai", "x-ai": "xai",
    "mistral_ai": "mistral", "mistralai": "mistral", "mistral": "mistral",
}
MODEL_PREFIXES = re.compile(r"^(models/|openai/|anthropic/|google/|gemini/|deepseek/|xai/|mistral/|mistralai/)")


@dataclass(slots=True)
class Normalized:
    provider: str = ""
    model: str = ""
    request_model: str = ""
    operation: str = ""
    service: str = ""
    environment: str = ""
    task_type: str = ""
    tier: int = 0
    user_id: str = ""
    session_id: str = ""
    request_id: str = ""
    response_id: str = ""
    thinking_budget: int = 0
    reasoning_effort: str = ""
    ttft_ms: float = 0.0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning_estimated: bool = False
    has_usage: bool = False
    reported_cost: str | None = None
    quality: float | None = None
    prompt_text: str = ""
    completion_text: str = ""
    thinking_text: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    resource_attributes: dict[str, str] = field(default_factory=dict)


def _first(attrs: dict[str, Any], resource: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for source in (attrs, resource):
        for key in keys:
            value = source.get(key)
            if value is not None and value != "":
                return value
    return None


def as_int(value: Any) -> int | None:
    """Integers may arrive as ints, floats or strings ("1200", "1.2e3")."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if math.isnan(number) or number < 0 or number > 2**53:
        return None
    return int(number)


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def _int_attr(attrs: dict[str, Any], resource: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for source in (attrs, resource):
        for key in keys:
            if key in source:
                number = as_int(source[key])
                if number is not None:
                    return number
    return None


def canonical_provider(value: Any) -> str:
    text = str(value or "").strip().lower()
    if not text:
        return ""
    if text in PROVIDER_NAMES:
        return PROVIDER_NAMES[text]
    head = text.split(".", 1)[0]  # Vercel AI SDK: "openai.chat", "anthropic.messages"
    return PROVIDER_NAMES.get(head, text)


def canonical_model(value: Any) -> str:
    return MODEL_PREFIXES.sub("", str(value or "").strip())


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value[:1] == "{":
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _text_attribute(key: str) -> bool:
    return key.startswith(aliases.TEXT_PREFIXES)


def _stringify(attrs: dict[str, Any]) -> dict[str, str]:
    """Attribute values as text, without prompt/completion text, over-long values truncated."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if _text_attribute(key):
            continue
        text = value if isinstance(value, str) else json.dumps(value) if not isinstance(value, int | float) else str(value)
        if len(text) > MAX_ATTRIBUTE_CHARS:
            text = text[:MAX_ATTRIBUTE_CHARS] + TRUNCATION_MARKER
        out[key[:256]] = text
    return out


def _captured_text(attrs: dict[str, Any], events: list[tuple[str, dict[str, Any]]]) -> tuple[str, str, str]:
    """(prompt, completion, thinking) text as captured by the instrumentation, untruncated."""
    prompt: list[str] = []
    completion: list[str] = []
    thinking: list[str] = []
    for key, value in attrs.items():
        if not isinstance(value, str) or not _text_attribute(key):
            continue
        if key.endswith(".role") or key.endswith(".finish_reason") or key.endswith(".mime_type"):
            continue
        if key.startswith(("gen_ai.completion", "llm.output_messages", "output.value", "ai.response",
                           "gen_ai.output.messages", "gen_ai.choice")):
            role_key = key.rsplit(".", 1)[0] + ".role"
            if "thinking" in key or "reasoning" in key or attrs.get(role_key) == "thinking":
                thinking.append(value)
            else:
                completion.append(value)
        else:
            prompt.append(value)
    for name, event_attrs in events:
        for key, value in event_attrs.items():
            if isinstance(value, str) and ("content" in key or "message" in key):
                (completion if "choice" in name or "completion" in name else prompt).append(value)
    for text in completion:
        thinking.extend(_thinking_blocks(text))
    return "\n".join(prompt), "\n".join(completion), "\n".join(thinking)


def _thinking_blocks(text: str) -> list[str]:
    """Thinking text inside a JSON completion (Anthropic content blocks of type "thinking")."""
    if '"thinking"' not in text:
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "thinking" and isinstance(node.get("thinking"), str):
                found.append(node["thinking"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(parsed)
    return found


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def _anthropic_raw_shape(attrs: dict[str, Any], input_tokens: int, cache: int) -> bool:
    """Anthropic raw usage counts input without cache tokens; OTel-convention spans include them."""
    if cache and input_tokens < cache:
        return True
    return any(key.startswith("ai.usage.") for key in attrs) and not any(k.startswith("gen_ai.usage.") for k in attrs)


def normalize(span: DecodedSpan) -> Normalized:
    attrs, resource = span.attributes, span.resource
    out = Normalized()
    out.provider = canonical_provider(_first(attrs, resource, aliases.PROVIDER))
    out.model = canonical_model(_first(attrs, resource, aliases.MODEL))
    out.request_model = canonical_model(_first(attrs, resource, aliases.REQUEST_MODEL))
    out.operation = str(_first(attrs, resource, aliases.OPERATION) or "").lower()
    out.service = str(_first({}, resource, aliases.SERVICE) or attrs.get("service.name") or "")
    out.environment = str(_first(resource, attrs, aliases.ENVIRONMENT) or "")
    out.user_id = str(_first(attrs, resource, aliases.USER) or "")
    out.session_id = str(_first(attrs, resource, aliases.SESSION) or "")
    out.request_id = str(_first(attrs, resource, aliases.REQUEST_ID) or "")

    metadata = _json_object(attrs.get(aliases.METADATA_JSON))
    out.task_type = str(_first(attrs, resource, aliases.TASK_TYPE) or metadata.get("task_type") or "")
    out.tier = as_int(_first(attrs, resource, aliases.TIER) or metadata.get("tier")) or 0
    if out.tier > 9:
        out.tier = 0
    if not out.user_id and metadata.get("user_id"):
        out.user_id = str(metadata["user_id"])

    output_value = attrs.get(aliases.OUTPUT_VALUE)
    out.response_id = str(_first(attrs, {}, aliases.RESPONSE_ID) or _json_object(output_value).get("id") or "")

    invocation = _json_object(attrs.get(aliases.INVOCATION_PARAMETERS))
    thinking = invocation.get("thinking")
    budget = _int_attr(attrs, resource, aliases.THINKING_BUDGET)
    if budget is None and isinstance(thinking, dict):
        budget = as_int(thinking.get("budget_tokens"))
    out.thinking_budget = min(budget or 0, 2**32 - 1)
    effort = _first(attrs, resource, aliases.REASONING_EFFORT) or invocation.get("reasoning_effort")
    if effort is None and isinstance(invocation.get("reasoning"), dict):
        effort = invocation["reasoning"].get("effort")
    out.reasoning_effort = str(effort or "")

    for key, factor in aliases.TTFT:
        value = as_float(attrs.get(key))
        if value is not None and value >= 0:
            out.ttft_ms = value * factor
            break

    input_tokens = _int_attr(attrs, {}, aliases.INPUT_TOKENS)
    output_tokens = _int_attr(attrs, {}, aliases.OUTPUT_TOKENS)
    reasoning = _int_attr(attrs, {}, aliases.REASONING_TOKENS)
    cache_read = _int_attr(attrs, {}, aliases.CACHE_READ) or 0
    cache_write = _int_attr(attrs, {}, aliases.CACHE_WRITE) or 0
    out.has_usage = input_tokens is not None or output_tokens is not None
    input_tokens = input_tokens or 0
    output_tokens = output_tokens or 0

    if not out.provider and out.model:
        out.provider = ""  # inferred from the catalog by the caller
    if out.provider == "anthropic" and _anthropic_raw_shape(attrs, input_tokens, cache_read + cache_write):
        input_tokens += cache_read + cache_write
    if out.provider == "google" and reasoning:
        output_tokens += reasoning
    if cache_read + cache_write > input_tokens:
        input_tokens = cache_read + cache_write

    prompt, completion, thinking_text = _captured_text(attrs, span.events)
    if reasoning is None and out.provider in ("anthropic", "aws.bedrock") and thinking_text and output_tokens:
        reasoning = min(estimate_tokens(thinking_text), output_tokens)
        out.reasoning_estimated = True
    reasoning = min(reasoning or 0, output_tokens) if output_tokens else (reasoning or 0)
    if reasoning > output_tokens:
        output_tokens = reasoning

    out.input_tokens = input_tokens
    out.output_tokens = output_tokens
    out.reasoning_tokens = reasoning
    out.cache_read_tokens = cache_read
    out.cache_write_tokens = cache_write

    cost = _first(attrs, {}, aliases.REPORTED_COST)
    reported = as_float(cost)
    out.reported_cost = f"{reported:.9f}" if reported is not None and 0 <= reported < 1e9 else None
    quality = as_float(_first(attrs, resource, aliases.QUALITY))
    out.quality = quality if quality is not None and 0.0 <= quality <= 1.0 else None

    out.prompt_text, out.completion_text, out.thinking_text = prompt, completion, thinking_text
    out.attributes = _stringify(attrs)
    out.resource_attributes = _stringify(resource)
    return out


