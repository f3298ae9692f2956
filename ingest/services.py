"""Ingest services: decoded spans → normalized, classified, priced rows → stored.

``ingest_payload(project, body, ..., api_key_id=...)`` is what both receivers (OTLP/HTTP
and gRPC) call; ``api_key_id`` is the pk of the key that authenticated the request and
lands in every row's ``api_key_id`` column. It raises ClickHouseError when storage fails,
so the receiver can answer 503/UNAVAILABLE and the exporter retries; nothing is
acknowledged that was not stored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
from django.conf import settings

from ingest import classify, decode, writer
from ingest.catalog import Entry, catalog
from ingest.decode import DecodedBatch, DecodedSpan
from ingest.normalize import TRUNCATION_MARKER, Normalized, normalize
from ingest.pricing import Rates, price_nanos
from ingest.redact import redact
from ingest.rows import SpanRows
from thinkmeter import metrics
from thinkmeter.models import Project

MAX_TEXT_CHARS = 32_768
NO_COST = (0, 0, 0, 0, 0)


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


class Pricer:
    """Catalog look-ups for one batch: each model's entry and each (entry, day)'s rates once."""

    # Spans of one quarter hour share a calendar day in any time zone (offsets are whole
    # quarter hours), so rates are looked up per quarter hour instead of per span.
    QUARTER_HOUR_NS = 900 * 1_000_000_000

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self._entries: dict[str, Entry | None] = {}
        self._rates: dict[tuple[int, int], Rates | None] = {}

    def entry(self, model: str) -> Entry | None:
        try:
            return self._entries[model]
        except KeyError:
            found = self._entries[model] = catalog.match(self.project_id, model)
            return found

    def rates(self, entry: Entry, start_ns: int) -> Rates | None:
        key = (entry.id, start_ns // self.QUARTER_HOUR_NS)
        try:
            return self._rates[key]
        except KeyError:
            found = self._rates[key] = entry.rates_on(date.fromtimestamp(start_ns // 1_000_000_000))
            return found


def build_row(
    project: Project, span: DecodedSpan, n: Normalized, rules: list[classify.Rule], api_key_id: int,
    pricer: Pricer | None = None,
) -> tuple[Any, ...]:
    """One spans-table row (in rows.COLUMNS order): classification, tier fallback and price.

    ``api_key_id`` is the pk of the API key that sent the span (0 when none did);
    ``pricer`` shares catalog look-ups across a batch.
    """
    project_id = project.pk
    if pricer is None:
        pricer = Pricer(project_id)
    task_type, tier, has_usage = n.task_type, n.tier, n.has_usage
    if not task_type and has_usage:
        task_type, rule_tier = classify.apply(rules, span, n) if rules else (classify.UNCLASSIFIED, None)
        tier = tier or rule_tier or 0
    entry = pricer.entry(n.model) if n.model else None
    provider = n.provider or (entry.provider if entry else "")
    if not tier and entry and has_usage:
        tier = entry.tier
    parts, price_id, priced = NO_COST, 0, not has_usage
    if has_usage and entry is not None:
        rates = pricer.rates(entry, span.start_ns)
        if rates is not None:
            parts = price_nanos(rates.micro, n.input_tokens, n.cache_read_tokens, n.cache_write_tokens,
                                n.output_tokens, n.reasoning_tokens)
            price_id, priced = rates.price_id, True
    store_prompts = project.store_prompts
    name, status_message = span.name, span.status_message
    return (
        project_id, api_key_id, span.trace_id, span.span_id, span.parent_span_id,
        name if len(name) <= 1000 else name[:1000], span.kind,
        span.start_ns, max(span.end_ns - span.start_ns, 0), span.status,
        status_message if len(status_message) <= 4000 else status_message[:4000],
        n.service, n.environment, span.scope, provider, n.model, n.request_model, n.operation, task_type, tier,
        n.user_id, n.session_id, n.request_id, n.response_id, n.thinking_budget, n.reasoning_effort, n.ttft_ms,
        n.input_tokens, n.cache_read_tokens, n.cache_write_tokens, n.output_tokens, n.reasoning_tokens,
        n.reasoning_estimated, has_usage, 0,
        parts[0], parts[1], parts[2], parts[3], parts[4], parts[0] + parts[1] + parts[2] + parts[3] + parts[4],
        Decimal(n.reported_cost) if n.reported_cost is not None else None,
        price_id, priced, n.quality, 0,
        _text(n.prompt_text, store_prompts) if n.prompt_text else "",
        _text(n.completion_text, store_prompts) if n.completion_text else "",
        n.attributes, n.resource_attributes,
    )


def prepare(project: Project, batch: DecodedBatch, api_key_id: int) -> pa.Table:
    """Normalize, classify and price a decoded batch into an Arrow table in the spans schema.

    Every row records ``api_key_id``, the key that sent the batch (0 when none did).
    """
    started = time.perf_counter()
    normalized = [normalize(span) for span in batch.spans]
    normalized_at = time.perf_counter()
    rules = classify.rule_cache.rules_for(project.pk)
    pricer = Pricer(project.pk)
    rows = SpanRows(project.pk)
    rows.rows = [build_row(project, span, n, rules, api_key_id, pricer)
                 for span, n in zip(batch.spans, normalized, strict=True)]
    table = rows.to_arrow()
    STAGES["normalize"] += normalized_at - started
    STAGES["price"] += time.perf_counter() - normalized_at
    return table


def _result(batch_rejected: int, errors: list[str], accepted: int, counted: int) -> IngestResult:
    message = "; ".join(errors)
    if batch_rejected and not message:
        message = f"{batch_rejected} spans rejected"
    return IngestResult(accepted=accepted, rejected=batch_rejected, counted=counted, message=message)


def _count_received(protocol: str, accepted: int, rejected: int) -> None:
    metrics.SPANS_RECEIVED.labels(protocol).inc(accepted + rejected)
    if rejected:
        metrics.SPANS_REJECTED.labels("malformed").inc(rejected)


def record_batch(project: Project, batch: DecodedBatch, protocol: str, api_key_id: int) -> IngestResult:
    """Store the batch's good spans; report the rejected ones. Raises ClickHouseError on storage failure."""
    _count_received(protocol, len(batch.spans), batch.rejected)
    table = prepare(project, batch, api_key_id)
    _flush_stage_metrics()
    counted = writer.write(project.pk, table) if table.num_rows else 0
    return _result(batch.rejected, batch.errors, table.num_rows, counted)


class TooManySpans(ValueError):
    """More spans in one request than OTLP_MAX_SPANS_PER_REQUEST."""


def decode_payload(body: bytes, content_type: str, encoding: str) -> DecodedBatch:
    """Decompress and decode one export request body; enforce the size and span-count caps."""
    started = time.perf_counter()
    batch = decode.decode(decode.decompress(body, encoding, settings.OTLP_MAX_BODY_BYTES), content_type)
    STAGES["decode"] += time.perf_counter() - started
    cap = settings.OTLP_MAX_SPANS_PER_REQUEST
    if len(batch.spans) > cap:
        metrics.SPANS_REJECTED.labels("too_many_spans").inc(len(batch.spans))
        raise TooManySpans(f"{len(batch.spans)} spans in one request exceed the limit of {cap}; send smaller batches")
    return batch


def ingest_payload(
    project: Project, body: bytes, content_type: str, encoding: str, protocol: str, *, api_key_id: int
) -> IngestResult:
    """Decode, prepare and store one export request body sent with API key ``api_key_id``.

    With worker processes running (``manage.py serve`` starts them), the CPU-bound part
    (decompress, decode, normalize, price, build Arrow) runs in a worker and only the
    Arrow table comes back; the group-commit writer stays in this process. Raises the
    decode errors (400/413/415) and ClickHouseError (503).
    """
    from ingest import parallel

    if parallel.running():
        prepared = parallel.prepare(project.pk, body, content_type, encoding, api_key_id)
        for stage, seconds in prepared.stages.items():
            metrics.INGEST_STAGE_SECONDS.labels(stage).inc(seconds)
        _count_received(protocol, prepared.table.num_rows, prepared.rejected)
        counted = writer.write(project.pk, prepared.table) if prepared.table.num_rows else 0
        return _result(prepared.rejected, prepared.errors, prepared.table.num_rows, counted)
    batch = decode_payload(body, content_type, encoding)
    return record_batch(project, batch, protocol, api_key_id)


STAGES: dict[str, float] = defaultdict(float)


def _flush_stage_metrics() -> None:
    for stage in list(STAGES):
        seconds = STAGES.pop(stage, 0.0)
        if seconds:
            metrics.INGEST_STAGE_SECONDS.labels(stage).inc(seconds)
