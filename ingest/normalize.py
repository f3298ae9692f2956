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


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    for concept, keys in table.items():
        for rank, key in enumerate(keys):
            index.setdefault(key, (concept, rank))
    return index


# Every accepted attribute name → (concept, rank); one dict lookup per attribute.
CONCEPTS: dict[str, tuple[str, ...]] = {
    "provider": aliases.PROVIDER, "model": aliases.MODEL, "request_model": aliases.REQUEST_MODEL,
    "operation": aliases.OPERATION, "input": aliases.INPUT_TOKENS, "output": aliases.OUTPUT_TOKENS,
    "reasoning": aliases.REASONING_TOKENS, "cache_read": aliases.CACHE_READ, "cache_write": aliases.CACHE_WRITE,
    "ttft": tuple(key for key, _ in aliases.TTFT), "effort": aliases.REASONING_EFFORT,
    "budget": aliases.THINKING_BUDGET, "user": aliases.USER, "session": aliases.SESSION,
    "task_type": aliases.TASK_TYPE, "tier": aliases.TIER, "request_id": aliases.REQUEST_ID,
    "quality": aliases.QUALITY, "cost": aliases.REPORTED_COST, "response_id": aliases.RESPONSE_ID,
    "service": aliases.SERVICE, "environment": aliases.ENVIRONMENT, "total": aliases.TOTAL_TOKENS,
}
INDEX = _index(CONCEPTS)
# request_model shares keys with model; a second index keeps both concepts answerable.
REQUEST_MODEL_INDEX = _index({"request_model": aliases.REQUEST_MODEL})
TTFT_FACTOR = dict(aliases.TTFT)
SPAN_ONLY = frozenset({"input", "output", "reasoning", "cache_read", "cache_write", "cost", "response_id", "total"})
# Keys OpenInference users put in the free-form ``metadata`` JSON.
METADATA_KEYS = {
    "task_type": ("thinkmeter.task_type", "task_type", "taskType"),
    "tier": ("thinkmeter.tier", "tier"),
    "user": ("user_id", "userId", "user.id"),
    "session": ("session_id", "sessionId", "session.id"),
}


def _from_metadata(metadata: dict[str, Any], concept: str) -> Any:
    for key in METADATA_KEYS[concept]:
        value = metadata.get(key)
        if value is not None and value != "":
            return value
    return None


# Per attribute name: (concept hits as ((concept, rank), ...), is a text attribute, name as
# stored). Names repeat from span to span, so each is worked out once.
_KeyInfo = tuple[tuple[tuple[str, int], ...], bool, str]
_key_info: dict[str, _KeyInfo] = {}
KEY_INFO_KEPT = 100_000


def _info(key: str) -> _KeyInfo:
    info = _key_info.get(key)
    if info is None:
        hits = tuple(hit for hit in (
            (INDEX[key] if key in INDEX else None),
            (("request_model", REQUEST_MODEL_INDEX[key][1]) if key in REQUEST_MODEL_INDEX else None),
        ) if hit is not None)
        info = (hits, key.startswith(aliases.TEXT_PREFIXES), key if len(key) <= 256 else key[:256])
        if len(_key_info) >= KEY_INFO_KEPT:
            _key_info.clear()
        _key_info[key] = info
    return info


def scan(attrs: dict[str, Any]) -> tuple[dict[str, tuple[int, Any, str]], dict[str, str], list[tuple[str, Any]]]:
    """One pass over a span's (or resource's) attributes.

    Returns the best-ranked value per concept (rank, value, key), the attributes as
    strings for the stored map (text attributes left out, long values truncated),
    and the text attributes.
    """
    found: dict[str, tuple[int, Any, str]] = {}
    stored: dict[str, str] = {}
    texts: list[tuple[str, Any]] = []
    key_info = _key_info
    limit = MAX_ATTRIBUTE_CHARS
    for key, value in attrs.items():
        info = key_info.get(key) or _info(key)
        hits = info[0]
        if hits and value is not None and value != "":
            for concept, rank in hits:
                previous = found.get(concept)
                if previous is None or rank < previous[0]:
                    found[concept] = (rank, value, key)
        if info[1]:
            texts.append((key, value))
            continue
        text = value if type(value) is str else _to_text(value)
        stored[info[2]] = text if len(text) <= limit else text[:limit] + TRUNCATION_MARKER
    return found, stored, texts


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


@dataclass(slots=True)
class ResourceInfo:
    """What a resource contributes, computed once per resource, shared by its spans.

    ``fallback`` holds the values a span may take from its resource (every concept but
    the span-only ones), by concept.
    """

    found: dict[str, tuple[int, Any, str]]
    stored: dict[str, str]
    fallback: dict[str, Any]


_resource_cache: dict[int, tuple[dict[str, Any], ResourceInfo]] = {}


def resource_info(resource: dict[str, Any]) -> ResourceInfo:
    cached = _resource_cache.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    found, stored, _ = scan(resource)
    info = ResourceInfo(found, stored, {c: hit[1] for c, hit in found.items() if c not in SPAN_ONLY})
    if len(_resource_cache) > 256:
        _resource_cache.clear()
    _resource_cache[id(resource)] = (resource, info)
    return info


def as_int(value: Any) -> int | None:
    """Integers may arrive as ints, floats or strings ("1200", "1.2e3")."""
    if type(value) is int:
        return value if value >= 0 else None
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


_canonical: dict[tuple[str, str], str] = {}  # (kind, raw text) → canonical name; names repeat
CANONICAL_KEPT = 10_000


def _remember(kind: str, value: Any, name: str) -> str:
    if type(value) is str:  # only text: 1 == True would mix an int up with a bool
        if len(_canonical) >= CANONICAL_KEPT:
            _canonical.clear()
        _canonical[(kind, value)] = name
    return name


def canonical_provider(value: Any) -> str:
    known = _canonical.get(("provider", value)) if type(value) is str else None
    if known is not None:
        return known
    text = str(value or "").strip().lower()
    if not text:
        name = ""
    elif text in PROVIDER_NAMES:
        name = PROVIDER_NAMES[text]
    else:
        head = text.split(".", 1)[0]  # Vercel AI SDK: "openai.chat", "anthropic.messages"
        name = PROVIDER_NAMES.get(head, text)
    return _remember("provider", value, name)


def canonical_model(value: Any) -> str:
    known = _canonical.get(("model", value)) if type(value) is str else None
    if known is not None:
        return known
    return _remember("model", value, MODEL_PREFIXES.sub("", str(value or "").strip()))


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


def _captured_text(
    texts: list[tuple[str, Any]], events: list[tuple[str, dict[str, Any]]]
) -> tuple[str, str, str]:
    """(prompt, completion, thinking) text as captured by the instrumentation, untruncated."""
    prompt: list[str] = []
    completion: list[str] = []
    thinking: list[str] = []
    roles = {key: value for key, value in texts if key.endswith(".role")}
    for key, value in texts:
        if not isinstance(value, str) or key.endswith((".role", ".finish_reason", ".mime_type")):
            continue
        if key.startswith(("gen_ai.completion", "llm.output_messages", "output.value", "ai.response",
                           "gen_ai.output.messages", "gen_ai.choice")):
            role_key = key.rsplit(".", 1)[0] + ".role"
            if "thinking" in key or "reasoning" in key or roles.get(role_key) == "thinking":
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
    """Thinking text inside a JSON completion: Anthropic content blocks ``{"type": "thinking",
    "thinking": ...}`` and GenAI-convention message parts ``{"type": "reasoning", "content": ...}``."""
    if '"thinking"' not in text and '"reasoning"' not in text:
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("thinking", "reasoning"):
                for key in ("thinking", "content", "text"):
                    if isinstance(node.get(key), str):
                        found.append(node[key])
                        break
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(parsed)
    return found


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def _not_streamed(attrs: dict[str, Any]) -> bool:
    """The span says its call was not streamed (then a TTFT is just the call's latency)."""
    flag = attrs.get(aliases.STREAM_FLAG)
    return flag is False or (isinstance(flag, str) and flag.strip().lower() == "false")


def _has_prefix(attrs: dict[str, Any], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in attrs)


def _anthropic_raw_shape(attrs: dict[str, Any], scope: str, input_tokens: int, cache: int) -> bool:
    """Anthropic raw usage counts input without cache tokens; OTel-convention spans include them.

    Raw shape: any span whose input is smaller than its cache tokens (impossible when
    cache is included); the Vercel AI SDK 5, which passes Anthropic's usage through as
    ``ai.usage.*`` (and mirrors it in ``gen_ai.usage.*`` on its call spans), whereas AI
    SDK 6 reports the total and breaks it down in ``ai.usage.inputTokenDetails.*``;
    OpenLIT (its ``gen_ai.usage.input_tokens`` for Anthropic is the raw, cache-less number).
    """
    if not cache:
        return False
    if input_tokens < cache:
        return True
    if _has_prefix(attrs, "ai.usage."):
        return not _has_prefix(attrs, "ai.usage.inputTokenDetails.")
    return scope.startswith("openlit")


def _gemini_thoughts_outside_output(attrs: dict[str, Any], input_tokens: int, output_tokens: int,
                                    total: int | None) -> bool:
    """Gemini counts thoughts beside candidates; some instrumentations already added them up.

    Already added: AI SDK 6 (``ai.usage.outputTokenDetails.*`` breaks its total output
    down), or a reported total equal to input + output.
    """
    if _has_prefix(attrs, "ai.usage.outputTokenDetails."):
        return False
    return total is None or total != input_tokens + output_tokens


def normalize(span: DecodedSpan) -> Normalized:
    attrs = span.attributes
    found, stored, texts = scan(attrs)
    res = resource_info(span.resource)
    rfound = res.found
    # concept → value, the span's own first, then its resource's (span-only concepts excepted)
    values = dict(res.fallback)
    for concept, hit in found.items():
        values[concept] = hit[1]
    pick = values.get

    def count(concept: str) -> int | None:
        hit = found.get(concept)
        return None if hit is None else as_int(hit[1])

    out = Normalized()
    out.provider = canonical_provider(pick("provider"))
    out.model = canonical_model(pick("model"))
    out.request_model = canonical_model(pick("request_model"))
    out.operation = str(pick("operation") or "").lower()
    service = rfound.get("service") or found.get("service")
    out.service = str(service[1]) if service else ""
    environment = rfound.get("environment") or found.get("environment")
    out.environment = str(environment[1]) if environment else ""
    out.user_id = str(pick("user") or "")
    out.session_id = str(pick("session") or "")
    out.request_id = str(pick("request_id") or "")

    metadata = _json_object(attrs.get(aliases.METADATA_JSON)) if aliases.METADATA_JSON in attrs else {}
    if metadata:
        out.task_type = str(pick("task_type") or _from_metadata(metadata, "task_type") or "")
        tier = as_int(pick("tier") or _from_metadata(metadata, "tier")) or 0
        out.user_id = out.user_id or str(_from_metadata(metadata, "user") or "")
        out.session_id = out.session_id or str(_from_metadata(metadata, "session") or "")
    else:
        out.task_type = str(pick("task_type") or "")
        tier = as_int(pick("tier")) or 0
    out.tier = tier if tier <= 9 else 0

    response_id = pick("response_id")
    if not response_id and aliases.OUTPUT_VALUE in attrs:
        response_id = _json_object(attrs[aliases.OUTPUT_VALUE]).get("id")
    out.response_id = str(response_id or "")

    invocation = (
        _json_object(attrs[aliases.INVOCATION_PARAMETERS]) if aliases.INVOCATION_PARAMETERS in attrs else {}
    )
    budget = as_int(pick("budget"))
    thinking = invocation.get("thinking")
    if budget is None and isinstance(thinking, dict):
        budget = as_int(thinking.get("budget_tokens"))
    out.thinking_budget = min(budget or 0, 2**32 - 1)
    effort = pick("effort") or invocation.get("reasoning_effort")
    if effort is None and isinstance(invocation.get("reasoning"), dict):
        effort = invocation["reasoning"].get("effort")
    out.reasoning_effort = str(effort or "")
    # OpenInference's llm.model_name is the response model; the requested one is only in the
    # invocation parameters.
    request_hit = found.get("request_model") or rfound.get("request_model")
    if (request_hit is None or request_hit[2] == "llm.model_name") and isinstance(invocation.get("model"), str):
        out.request_model = canonical_model(invocation["model"]) or out.request_model

    ttft = found.get("ttft")
    if ttft is not None and not (ttft[2] == "gen_ai.server.time_to_first_token" and _not_streamed(attrs)):
        seconds = as_float(ttft[1])
        if seconds is not None and seconds >= 0:
            out.ttft_ms = seconds * TTFT_FACTOR[ttft[2]]
    elif ttft is None and span.event_times_ns and len(span.event_times_ns) == len(span.events):
        for (event_name, _), at_ns in zip(span.events, span.event_times_ns, strict=True):
            if event_name in aliases.TTFT_EVENTS and at_ns >= span.start_ns:
                out.ttft_ms = (at_ns - span.start_ns) / 1e6
                break

    input_tokens = count("input")
    output_tokens = count("output")
    reasoning = count("reasoning")
    cache_read = count("cache_read") or 0
    cache_write = count("cache_write") or 0
    out.has_usage = input_tokens is not None or output_tokens is not None
    input_tokens = input_tokens or 0
    output_tokens = output_tokens or 0

    if out.provider == "anthropic" and _anthropic_raw_shape(attrs, span.scope, input_tokens, cache_read + cache_write):
        input_tokens += cache_read + cache_write
    if out.provider == "google" and reasoning and _gemini_thoughts_outside_output(
        attrs, input_tokens, output_tokens, count("total")
    ):
        output_tokens += reasoning
    if cache_read + cache_write > input_tokens:
        input_tokens = cache_read + cache_write

    prompt, completion, thinking_text = _captured_text(texts, span.events) if texts or span.events else ("", "", "")
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

    reported = as_float(pick("cost"))
    out.reported_cost = f"{reported:.9f}" if reported is not None and 0 <= reported < 1e9 else None
    quality = as_float(pick("quality"))
    out.quality = quality if quality is not None and 0.0 <= quality <= 1.0 else None

    out.prompt_text, out.completion_text, out.thinking_text = prompt, completion, thinking_text
    out.attributes = stored
    out.resource_attributes = res.stored
    return out
