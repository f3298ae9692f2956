"""The OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf or JSON, gzip or deflate).

Status codes follow the OTLP specification: 200 with an ExportTraceServiceResponse
(``partial_success`` when some spans were rejected); 400 undecodable; 401 missing,
invalid or revoked key (the same answer, so nothing reveals whether a project exists);
403 key without the ingest scope; 413 over 64 MiB decompressed or too many spans;
415 other content types or encodings; 429 rate limited and 503 storage unavailable,
both with Retry-After. Error bodies are google.rpc.Status in the request's encoding.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import decode, services
from ingest.receiver import KeyRejected, check_key
from thinkmeter import metrics
from thinkmeter.auth import bearer_token
from thinkmeter.clickhouse import ClickHouseError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def _encode(message: object, as_json: bool, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    if as_json:
        body = json_format.MessageToJson(message, indent=None)  # type: ignore[arg-type]
        response = HttpResponse(body, status=status, content_type=JSON)
    else:
        response = HttpResponse(message.SerializeToString(), status=status, content_type=PROTOBUF)  # type: ignore[attr-defined]
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(status: int, text: str, as_json: bool, headers: dict[str, str] | None = None) -> HttpResponse:
    return _encode(status_pb2.Status(code=status, message=text), as_json, status, headers)


@csrf_exempt
def export_traces(request: HttpRequest) -> HttpResponse:
    content_type = request.META.get("CONTENT_TYPE", "")
    media = content_type.split(";", 1)[0].strip().lower()
    as_json = media == JSON
    if request.method != "POST":
        response = _error(405, "use POST", as_json)
        response["Allow"] = "POST"
        return response
    try:
        key = check_key(bearer_token(request.META.get("HTTP_AUTHORIZATION")))
    except KeyRejected as exc:
        headers = {}
        if exc.unauthenticated:
            headers["WWW-Authenticate"] = 'Bearer realm="thinkmeter"'
        if exc.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return _error(exc.status, exc.reason, as_json, headers)
    if media not in (PROTOBUF, "application/protobuf", JSON):
        return _error(415, f"unsupported Content-Type {media!r}; use {PROTOBUF} or {JSON}", False)
    limit = settings.OTLP_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        return _error(413, f"body exceeds {limit} bytes", as_json)
    key.touch()
    body = request.read(limit + 1)  # never hold more than the limit, even without Content-Length
    if len(body) > limit:
        return _error(413, f"body exceeds {limit} bytes", as_json)
    try:
        result = services.ingest_payload(
            key.project, body, content_type, request.META.get("HTTP_CONTENT_ENCODING", ""), "http",
            api_key_id=key.pk,
        )
    except decode.PayloadTooLarge as exc:
        metrics.SPANS_REJECTED.labels("too_large").inc()
        return _error(413, str(exc), as_json)
    except services.TooManySpans as exc:
        return _error(413, str(exc), as_json)
    except (decode.UnsupportedEncoding, decode.UnsupportedMediaType) as exc:
        return _error(415, str(exc), as_json)
    except decode.DecodeError as exc:
        metrics.SPANS_REJECTED.labels("undecodable").inc()
        return _error(400, str(exc), as_json)
    except (ClickHouseError, TimeoutError) as exc:
        metrics.SPANS_REJECTED.labels("storage_unavailable").inc()
        what = exc.tag if isinstance(exc, ClickHouseError) else "span writer timed out"
        return _error(503, f"storage unavailable, retry later ({what})", as_json, {"Retry-After": "2"})
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.message
    return _encode(response, as_json, 200)
