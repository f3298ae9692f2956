"""Build OTLP ExportTraceServiceRequest payloads for tests (protobuf and JSON forms)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span_dict(
    name: str = "chat",
    attributes: dict[str, Any] | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_span_id: str = "",
    start_ns: int | None = None,
    duration_ms: float = 1500.0,
    status: int = 0,
) -> dict[str, Any]:
    start = start_ns if start_ns is not None else time.time_ns() - int(duration_ms * 1e6)
    return {
        "name": name,
        "attributes": attributes or {},
        "trace_id": trace_id or new_trace_id(),
        "span_id": span_id or new_span_id(),
        "parent_span_id": parent_span_id,
        "start_ns": start,
        "end_ns": start + int(duration_ms * 1e6),
        "status": status,
    }


def make_request(
    spans: list[dict[str, Any]], resource: dict[str, Any] | None = None, scope: str = "tests"
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values(resource or {"service.name": "test-service"}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    for item in spans:
        span = Span(
            trace_id=bytes.fromhex(item["trace_id"]),
            span_id=bytes.fromhex(item["span_id"]),
            parent_span_id=bytes.fromhex(item["parent_span_id"]) if item.get("parent_span_id") else b"",
            name=item["name"],
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=item["start_ns"],
            end_time_unix_nano=item["end_ns"],
        )
        span.attributes.extend(key_values(item.get("attributes") or {}))
        span.status.code = item.get("status", 0)
        scope_spans.spans.append(span)
    return request


def to_otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form: lowerCamelCase keys, hex ids, 64-bit integers as strings."""
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        import base64

                        span[key] = base64.b64decode(span[key]).hex()
    return document


def to_json_bytes(request: ExportTraceServiceRequest) -> bytes:
    return json.dumps(to_otlp_json(request)).encode()


OPENAI_USAGE = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "o3-mini",
    "gen_ai.response.model": "o3-mini-2025-01-31",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 900,
    "gen_ai.usage.reasoning_tokens": 640,
    "gen_ai.usage.cache_read_input_tokens": 1000,
}


def start_ns_of(moment: Any) -> int:
    """Nanoseconds since the epoch of an aware datetime (naive means UTC)."""
    from datetime import UTC

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def llm_span(
    model: str,
    *,
    provider: str = "openai",
    input_tokens: int = 1000,
    output_tokens: int = 500,
    reasoning_tokens: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    start: Any = None,
    attributes: dict[str, Any] | None = None,
    **span_fields: Any,
) -> dict[str, Any]:
    """A span dict (for :func:`make_request`) of one LLM call in the OTel GenAI convention.

    ``start`` is a datetime (UTC); other keyword arguments go to :func:`span_dict`
    (trace_id, span_id, parent_span_id, duration_ms, status, name).
    """
    attrs: dict[str, Any] = {
        "gen_ai.system": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    if reasoning_tokens:
        attrs["gen_ai.usage.reasoning_tokens"] = reasoning_tokens
    if cache_read:
        attrs["gen_ai.usage.cache_read_input_tokens"] = cache_read
    if cache_write:
        attrs["gen_ai.usage.cache_creation_input_tokens"] = cache_write
    attrs.update(attributes or {})
    if start is not None:
        span_fields["start_ns"] = start_ns_of(start)
    return span_dict(span_fields.pop("name", "chat " + model), attrs, **span_fields)


def post_spans(client: Any, key: str, spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> Any:
    """Send spans through ``POST /v1/traces`` with a Django test client; assert they were stored."""
    body = make_request(spans, resource).SerializeToString()
    response = client.post("/v1/traces", data=body, content_type="application/x-protobuf",
                           HTTP_AUTHORIZATION="Bearer " + key)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response


# --- helpers for the receiver, dedup and idempotency tests --------------------------------

SUM_COLUMNS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total",
)


def post_otlp(
    client: Any,
    body: bytes,
    key: str | None,
    content_type: str = "application/x-protobuf",
    encoding: str | None = None,
) -> Any:
    """POST raw bytes to /v1/traces with a Django test client (no assertion on the outcome)."""
    extra: dict[str, str] = {}
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = "Bearer " + key
    if encoding is not None:
        extra["HTTP_CONTENT_ENCODING"] = encoding
    return client.generic("POST", "/v1/traces", body, content_type=content_type, **extra)


def counted_sums(project_id: int) -> dict[str, Any]:
    """Sums over the spans that count (``counted = 1``), plus how many there are."""
    from thinkmeter import clickhouse

    sums = ", ".join(f"sum({c}) AS {c}" for c in SUM_COLUMNS)
    rows = clickhouse.execute(
        f"SELECT count() AS requests, {sums} FROM spans "
        f"WHERE project_id IN {clickhouse.PROJECT_PARAM} AND counted = 1",
        tag="tests.counted_sums", projects=project_id,
    )
    return rows[0]


def rollup_sums(project_id: int, table: str = "usage_hourly") -> dict[str, Any]:
    """The same sums read from a rollup (usage_hourly or usage_daily_users)."""
    from thinkmeter import clickhouse

    assert table in ("usage_hourly", "usage_daily_users")
    sums = ", ".join(f"sum({c}) AS {c}" for c in ("requests", *SUM_COLUMNS))
    rows = clickhouse.execute(
        f"SELECT {sums} FROM {table} WHERE project_id IN {clickhouse.PROJECT_PARAM}",
        tag="tests.rollup_sums", projects=project_id,
    )
    return rows[0]


def stored_spans(project_id: int, columns: str = "*") -> list[dict[str, Any]]:
    """Every stored row of a project (duplicates included: no FINAL)."""
    from thinkmeter import clickhouse

    return clickhouse.execute(
        f"SELECT {columns} FROM spans WHERE project_id IN {clickhouse.PROJECT_PARAM} ORDER BY start_time, span_id",
        tag="tests.stored_spans", projects=project_id,
    )


def gzip_bomb(inflated_mib: int, chunk_mib: int = 16) -> bytes:
    """A valid gzip stream of ``inflated_mib`` MiB of zeros, about 1/1000 of that in size.

    Built by repeating one fully flushed deflate block sequence, so making it costs a
    fraction of a second however large it inflates.
    """
    import struct
    import zlib

    chunk = bytes(chunk_mib << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = max(inflated_mib // chunk_mib, 1)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    final_empty_block = b"\x03\x00"
    trailer = struct.pack("<II", crc, (count * len(chunk)) & 0xFFFFFFFF)
    return first + repeat * (count - 1) + final_empty_block + trailer


def reattach(clickhouse: Any, table: str) -> None:
    """ATTACH a table detached to simulate an outage, and forget query-condition-cache entries.

    A re-attached MergeTree numbers its new parts from its highest existing block again,
    so part names recur; ClickHouse's query condition cache keys on part names and would
    serve stale entries for them (ClickHouse issue #116202).
    """
    from tests.conftest import drop_query_condition_cache

    clickhouse.execute(f"ATTACH TABLE {table}", tag="tests.storage_down", system=True)
    drop_query_condition_cache()
