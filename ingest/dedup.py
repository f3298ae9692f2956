"""Decide which stored row carries each provider call's usage (pure; no I/O).

A row is ``counted`` (contributes to every sum) only when it has usage and:
- its span identity (trace, span) was not stored before nor seen earlier in the flush
  (a re-sent batch adds nothing);
- its provider response (provider, gen_ai.response.id) was not counted before (one call
  reported by two instrumentations counts once);
- no descendant span in its trace carries usage (a parent span with the totals of its
  per-call children, like the AI SDK's ``ai.generateText``, is not added on top of them),
  and no ancestor that carries usage was already counted (a child that arrives after its
  totals parent adds nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Known:
    """A span already stored: what dedup needs to know about it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    has_usage: bool
    counted: bool


def counted_flags(
    trace_ids: list[str],
    span_ids: list[str],
    parent_ids: list[str],
    has_usage: list[bool],
    response_keys: list[tuple[str, str]],
    stored: Iterable[Known],
    counted_responses: set[tuple[str, str]],
) -> list[int]:
    stored_by_id: dict[tuple[str, str], Known] = {(k.trace_id, k.span_id): k for k in stored}
    parent_of: dict[tuple[str, str], str] = {key: k.parent_span_id for key, k in stored_by_id.items()}
    usage_ids = {key for key, k in stored_by_id.items() if k.has_usage}
    for trace, span, parent, usage in zip(trace_ids, span_ids, parent_ids, has_usage, strict=True):
        parent_of.setdefault((trace, span), parent)
        if usage:
            usage_ids.add((trace, span))

    has_usage_descendant: set[tuple[str, str]] = set()
    for trace, span in usage_ids:
        seen = 0
        parent = parent_of.get((trace, span), "")
        while parent and parent != span and seen < 256:  # a span naming itself as parent is a root
            has_usage_descendant.add((trace, parent))
            parent = parent_of.get((trace, parent), "")
            seen += 1

    def counted_ancestor(trace: str, span: str) -> bool:
        parent = parent_of.get((trace, span), "")
        for _ in range(256):
            if not parent:
                return False
            known = stored_by_id.get((trace, parent))
            if known is not None and known.counted:
                return True
            parent = parent_of.get((trace, parent), "")
        return False

    flags: list[int] = []
    seen_ids: set[tuple[str, str]] = set()
    seen_responses = set(counted_responses)
    for trace, span, usage, response in zip(trace_ids, span_ids, has_usage, response_keys, strict=True):
        key = (trace, span)
        duplicate = key in seen_ids or key in stored_by_id
        seen_ids.add(key)
        count = (
            usage
            and not duplicate
            and key not in has_usage_descendant
            and not (response[1] and response in seen_responses)
            and not counted_ancestor(trace, span)
        )
        if count and response[1]:
            seen_responses.add(response)
        flags.append(1 if count else 0)
    return flags
