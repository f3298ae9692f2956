"""Ingest services: decoded spans → normalized, classified, priced rows → stored.

``record_batch(project, batch)`` is what both receivers (OTLP/HTTP and gRPC) call. It
raises ClickHouseError when storage fails, so the receiver can answer 503/UNAVAILABLE
and the exporter retries; nothing is acknowledged that was not stored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingest import classify, writer
from ingest.catalog import catalog
from ingest.decode import DecodedBatch, DecodedSpan
from ingest.normalize import TRUNCATION_MARKER, Normalized, normalize
from ingest.pricing import ZERO, Cost, price
from ingest.redact import redact
from ingest.rows import SpanRows
from thinkmeter import metrics
from thinkmeter.models import Project

MAX_TEXT_CHARS = 32_768
timings: dict[str, float] = defaultdict(float)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    counted: int
    message: str = ""


def _text(value: str, store: bool) -> str:
    if not store or not value:
        return ""
    value = redact(value)
    return value if len(value) <= MAX_TEXT_CHARS else value[:MAX_TEXT_CHARS] + TRUNCATION_MARKER


def build_row(project: Project, span: DecodedSpan, n: Normalized, rules: list[classify.Rule]) -> dict[str, Any]:
    """One spans-table row: classification, tier fallback and price on top of the normalized span."""
    task_type, tier = n.task_type, n.tier
    if not task_type and n.has_usage:
        task_type, rule_tier = classify.apply(rules, span, n) if rules else (classify.UNCLASSIFIED, None)
        tier = tier or rule_tier or 0
    entry = catalog.match(project.pk, n.model) if n.model else None
    provider = n.provider or (entry.provider if entry else "")
    if not tier and entry and n.has_usage:
        tier = entry.tier
    cost, price_id, priced = Cost(), 0, not n.has_usage
    if n.has_usage and entry is not None:
        rates = entry.rates_on(datetime.fromtimestamp(span.start_ns / 1e9, UTC).date())
        if rates is not None:
            cost = price(rates, n.input_tokens, n.cache_read_tokens, n.cache_write_tokens, n.output_tokens,
                         n.reasoning_tokens)
            price_id, priced = rates.price_id, True
    return {
        "project_id": project.pk, "trace_id": span.trace_id, "span_id": span.span_id,
        "parent_span_id": span.parent_span_id, "name": span.name[:1000], "kind": span.kind,
        "start_time": span.start_ns, "duration_ns": max(span.end_ns - span.start_ns, 0),
        "status": span.status, "status_message": span.status_message[:4000], "service": n.service,
        "environment": n.environment, "instrumentation": span.scope, "provider": provider, "model": n.model,
        "request_model": n.request_model, "operation": n.operation, "task_type": task_type, "tier": tier,
        "user_id": n.user_id, "session_id": n.session_id, "request_id": n.request_id,
        "response_id": n.response_id, "thinking_budget": n.thinking_budget, "reasoning_effort": n.reasoning_effort,
        "ttft_ms": n.ttft_ms, "input_tokens": n.input_tokens, "cache_read_tokens": n.cache_read_tokens,
        "cache_write_tokens": n.cache_write_tokens, "output_tokens": n.output_tokens,
        "reasoning_tokens": n.reasoning_tokens, "reasoning_estimated": n.reasoning_estimated,
        "has_usage": n.has_usage, "counted": 0,
        "cost_input": cost.input, "cost_cache_read": cost.cache_read, "cost_cache_write": cost.cache_write,
        "cost_output_visible": cost.output_visible, "cost_reasoning": cost.reasoning,
        "cost_total": cost.total if priced else ZERO,
        "reported_cost": Decimal(n.reported_cost) if n.reported_cost is not None else None,
        "price_id": price_id, "priced": priced, "quality": n.quality, "runaway": 0,
        "prompt_text": _text(n.prompt_text, project.store_prompts),
        "completion_text": _text(n.completion_text, project.store_prompts),
        "attributes": n.attributes, "resource_attributes": n.resource_attributes,
    }


def prepare(project: Project, batch: DecodedBatch) -> SpanRows:
    started = time.perf_counter()
    normalized = [normalize(span) for span in batch.spans]
    normalized_at = time.perf_counter()
    rules = classify.rule_cache.rules_for(project.pk)
    rows = SpanRows(project.pk)
    for span, n in zip(batch.spans, normalized, strict=True):
        rows.append(build_row(project, span, n, rules))
    timings["normalize"] += normalized_at - started
    timings["price"] += time.perf_counter() - normalized_at
    return rows


def record_batch(project: Project, batch: DecodedBatch, protocol: str) -> IngestResult:
    """Store the batch's good spans; report the rejected ones. Raises ClickHouseError on storage failure."""
    metrics.SPANS_RECEIVED.labels(protocol).inc(len(batch.spans) + batch.rejected)
    if batch.rejected:
        metrics.SPANS_REJECTED.labels("malformed").inc(batch.rejected)
    rows = prepare(project, batch)
    counted = writer.write(rows) if len(rows) else 0
    message = "; ".join(batch.errors)
    if batch.rejected and not message:
        message = f"{batch.rejected} spans rejected"
    return IngestResult(accepted=len(rows), rejected=batch.rejected, counted=counted, message=message)
