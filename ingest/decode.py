"""Decode OTLP/HTTP export requests (protobuf or JSON, gzip or deflate) into flat spans.

The output is a list of :class:`DecodedSpan` with plain Python attribute dicts and hex
ids, plus the number of spans rejected individually (a malformed id rejects its span,
not the request). Whole-request problems raise :class:`DecodeError` (HTTP 400) or
:class:`PayloadTooLarge` (413, detected while decompressing, so zip bombs stop early).
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")
MAX_JSON_DEPTH = 64
MAX_TIME_NS = 2**63 - 1  # the last instant DateTime64(9) (and an Arrow timestamp) holds: 2262-04-11
# Inflate at most this much per step: the limit is checked between steps, and memory
# stays at the output so far (one large step would buffer its output twice).
INFLATE_STEP = 1 << 20


class DecodeError(ValueError):
    """The request body cannot be decoded; the message says what was wrong."""


class PayloadTooLarge(ValueError):
    """The decompressed body exceeds the limit."""


@dataclass(slots=True)
class DecodedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    event_times_ns: list[int] = field(default_factory=list)  # time of each of ``events``, same order


@dataclass(slots=True)
class DecodedBatch:
    spans: list[DecodedSpan]
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5 and reason not in self.errors:
            self.errors.append(reason)


def _zlib_wrapped(body: bytes) -> bool:
    """True when a deflate body carries the zlib header (RFC 1950), False for raw deflate (RFC 1951)."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and body[0] >> 4 <= 7 and (body[0] << 8 | body[1]) % 31 == 0


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo Content-Encoding (identity, gzip, deflate) without ever holding more than ``limit`` bytes.

    gzip may hold several members (RFC 1952 allows concatenation); deflate may be
    zlib-wrapped (what the HTTP spec means) or raw (what some clients send). A body that
    ends before its compressed stream does, or has other bytes after it, is rejected
    rather than decoded from a prefix.
    """
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"body of {len(body)} bytes exceeds {limit} bytes")
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if _zlib_wrapped(body) else -zlib.MAX_WBITS
    else:
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            decompressor = zlib.decompressobj(wbits)
            while data:
                chunk = decompressor.decompress(data, min(limit + 1 - size, INFLATE_STEP))
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes")
                parts.append(chunk)
                data = decompressor.unconsumed_tail
                if decompressor.eof or not chunk:
                    break
            if not decompressor.eof:
                tail = decompressor.flush()
                size += len(tail)
                if size > limit:
                    raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes")
                parts.append(tail)
                if not decompressor.eof:
                    raise DecodeError(f"body is not complete {encoding} data: the compressed stream is truncated")
            rest = decompressor.unused_data.lstrip(b"\0")
            if not rest:
                break
            if encoding == "deflate" or rest[:2] != b"\x1f\x8b":
                raise DecodeError(f"body has {len(rest)} unexpected bytes after the {encoding} data")
            data = rest  # another gzip member
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding} data: {exc}") from exc
    return b"".join(parts)


class UnsupportedEncoding(ValueError):
    """Content-Encoding we do not speak (HTTP 415)."""


ZERO_TRACE_ID = bytes(16)
ZERO_SPAN_ID = bytes(8)
SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def any_value(value: Any) -> Any:
    """Convert an OTLP AnyValue to a Python value; arrays and maps become JSON text."""
    which = value.WhichOneof("value")
    if which in SCALARS:
        return getattr(value, which)
    if which == "array_value":
        return json.dumps([_plain(v) for v in value.array_value.values], separators=(",", ":"))
    if which == "kvlist_value":
        return json.dumps({kv.key: _plain(kv.value) for kv in value.kvlist_value.values}, separators=(",", ":"))
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _plain(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return any_value(value)


def attributes(kvs: Any) -> dict[str, Any]:
    """Key → Python value; the scalar cases inline (this runs for every attribute of every span)."""
    out: dict[str, Any] = {}
    scalars = SCALARS
    for kv in kvs:
        value = kv.value
        which = value.WhichOneof("value")
        out[kv.key] = getattr(value, which) if which in scalars else any_value(value)
    return out


def from_proto(request: ExportTraceServiceRequest) -> DecodedBatch:
    """Flatten an ExportTraceServiceRequest; spans with malformed ids are rejected one by one."""
    batch = DecodedBatch(spans=[])
    append = batch.spans.append
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
                start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
                if len(trace_id) != 16 or trace_id == ZERO_TRACE_ID:
                    batch.reject(f"span {span.name!r}: trace_id must be 16 bytes, not all zero "
                                 f"(got {len(trace_id)} bytes)")
                    continue
                if len(span_id) != 8 or span_id == ZERO_SPAN_ID:
                    batch.reject(f"span {span.name!r}: span_id must be 8 bytes, not all zero (got {len(span_id)} bytes)")
                    continue
                if parent and len(parent) != 8:
                    batch.reject(f"span {span.name!r}: parent_span_id must be 8 bytes or empty")
                    continue
                if start_ns > MAX_TIME_NS or end_ns > MAX_TIME_NS:
                    batch.reject(f"span {span.name!r}: timestamps must be before 2262-04-11")
                    continue
                if end_ns and end_ns < start_ns:
                    batch.reject(f"span {span.name!r}: ends before it starts")
                    continue
                kind = span.kind
                status = span.status
                code = status.code
                events = span.events
                append(
                    DecodedSpan(
                        trace_id.hex(),
                        span_id.hex(),
                        parent.hex() if parent else "",
                        span.name,
                        KINDS[kind] if 0 <= kind < len(KINDS) else "unspecified",
                        start_ns,
                        end_ns or start_ns,
                        STATUSES[code] if 0 <= code < len(STATUSES) else "unset",
                        status.message,
                        attributes(span.attributes),
                        resource,
                        scope,
                        [(e.name, attributes(e.attributes)) for e in events] if events else [],
                        [e.time_unix_nano for e in events] if events else [],
                    )
                )
    return batch


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a valid ExportTraceServiceRequest protobuf: {exc}") from exc
    return request


def _depth_ok(value: Any, depth: int = 0) -> bool:
    if depth > MAX_JSON_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


def _hex_to_b64(value: Any, size: int) -> str | None:
    """OTLP/JSON ids are hex (not proto3's base64); None when malformed."""
    if not isinstance(value, str):
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return base64.b64encode(raw).decode() if len(raw) == size else None


def parse_json(body: bytes) -> tuple[ExportTraceServiceRequest, DecodedBatch]:
    """Parse OTLP/JSON; returns the proto plus a batch carrying per-span rejections."""
    rejected = DecodedBatch(spans=[])
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DecodeError("body must be a JSON object with a resourceSpans array")
    if not _depth_ok(document):
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            kept = []
            for span in _list(scope_spans, "spans"):
                if not isinstance(span, dict):
                    rejected.reject("a span is not a JSON object")
                    continue
                problem = _fix_ids(span)
                if problem:
                    rejected.reject(f"span {span.get('name', '')!r}: {problem}")
                    continue
                kept.append(span)
            scope_spans["spans"] = kept
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"JSON does not follow the OTLP ExportTraceServiceRequest mapping: {exc}") from exc
    return request, rejected


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object holding {keys[0]}")
    for key in keys:
        if key in obj:
            value = obj[key]
            if value is None:
                return []
            if not isinstance(value, list):
                raise DecodeError(f"{key} must be an array")
            return value
    return []


def _fix_ids(span: dict[str, Any]) -> str | None:
    for camel, snake, size, required in (
        ("traceId", "trace_id", 16, True),
        ("spanId", "span_id", 8, True),
        ("parentSpanId", "parent_span_id", 8, False),
    ):
        key = camel if camel in span else snake
        value = span.get(key)
        if value in (None, "") and not required:
            span.pop(key, None)
            continue
        converted = _hex_to_b64(value, size)
        if converted is None:
            return f"{camel} must be {size * 2} hex digits"
        span[key] = converted
    for link in span.get("links") or []:
        if isinstance(link, dict):
            for camel, size in (("traceId", 16), ("spanId", 8)):
                if camel in link:
                    link[camel] = _hex_to_b64(link[camel], size) or ""
    return None


def decode(body: bytes, content_type: str) -> DecodedBatch:
    """Decode a decompressed body by content type (protobuf or JSON)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-protobuf" or media == "application/protobuf":
        return from_proto(parse_protobuf(body))
    if media == "application/json":
        request, upfront = parse_json(body)
        batch = from_proto(request)
        batch.rejected += upfront.rejected
        batch.errors = upfront.errors + batch.errors
        return batch
    raise UnsupportedMediaType(f"unsupported Content-Type {media!r}; use application/x-protobuf or application/json")


class UnsupportedMediaType(ValueError):
    """Content-Type we do not accept (HTTP 415)."""


__all__ = [
    "DecodeError",
    "DecodedBatch",
    "DecodedSpan",
    "PayloadTooLarge",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "decode",
    "decompress",
    "from_proto",
]
