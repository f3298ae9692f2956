"""The OTLP/HTTP receiver, ``POST /v1/traces``, through Django's test client into real chdb.

Covers both encodings (protobuf; OTLP/JSON with hex ids, integer enums, 64-bit integers
as strings, lowerCamelCase keys and unknown fields), gzip and deflate, the exact status
codes and bodies of DESIGN.md §5 (partial success, 400, 401/403 without revealing whether
a project exists, 413 for bombs and span caps, 415, 429 and 503 with Retry-After), and
what is stored: truncated attributes, no prompt text by default, redacted text when the
project asks for it, catalog inference and unpriced models, and the hand-written
Vercel AI SDK and Logfire payloads.
"""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from django.test import Client
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import ratelimit
from ingest.normalize import MAX_ATTRIBUTE_CHARS, TRUNCATION_MARKER
from tests.ingest.otlp_builders import (
    OPENAI_USAGE,
    counted_sums,
    gzip_bomb,
    make_request,
    new_span_id,
    new_trace_id,
    post_otlp,
    reattach,
    rollup_sums,
    span_dict,
    stored_spans,
    to_json_bytes,
)

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MiB = 1024 * 1024


@pytest.fixture
def store(ch: ModuleType) -> ModuleType:
    """An emptied ClickHouse (every test here reads back what the receiver stored)."""
    return ch


def status_of(response: Any) -> status_pb2.Status:
    """The google.rpc.Status error body, in the response's encoding."""
    status = status_pb2.Status()
    if response["Content-Type"].startswith(JSON):
        document = json.loads(response.content)
        status.code, status.message = document["code"], document["message"]
    else:
        assert response["Content-Type"].startswith(PROTOBUF)
        status.ParseFromString(response.content)
    return status


def export_response(response: Any) -> ExportTraceServiceResponse:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith(PROTOBUF)
    message = ExportTraceServiceResponse()
    message.ParseFromString(response.content)
    return message


def one_call(**overrides: Any) -> dict[str, Any]:
    return span_dict(attributes={**OPENAI_USAGE, **overrides})


# --- encodings ----------------------------------------------------------------------------


def test_protobuf_export_is_stored_and_answered_with_an_export_response(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    item = one_call()
    response = post_otlp(client, make_request([item]).SerializeToString(), project_key)
    answer = export_response(response)
    assert not answer.HasField("partial_success")
    rows = stored_spans(project.pk)
    assert len(rows) == 1
    row = rows[0]
    assert (row["trace_id"], row["span_id"]) == (item["trace_id"], item["span_id"])
    assert (row["provider"], row["model"], row["kind"], row["service"]) == (
        "openai", "o3-mini-2025-01-31", "client", "test-service")
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1200, 1000, 900, 640)
    assert row["counted"] == 1 and row["priced"]
    assert row["duration_ns"] == 1_500_000_000


def hand_written_json(trace_id: str, good_span_id: str) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: hex ids, enums as integers, 64-bit integers as strings."""
    return {
        "resourceSpans": [{
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}],
                "droppedAttributesCount": 0,
                "aFieldFromTheFuture": {"nested": [1, 2, 3]},
            },
            "scopeSpans": [{
                "scope": {"name": "hand.written", "version": "1.0"},
                "spans": [{
                    "traceId": trace_id,
                    "spanId": good_span_id,
                    "parentSpanId": "",
                    "name": "chat o3-mini",
                    "kind": 3,
                    "startTimeUnixNano": str(time.time_ns() - 2_000_000_000),
                    "endTimeUnixNano": str(time.time_ns()),
                    "attributes": [
                        {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "o3-mini"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "900"}},
                        {"key": "gen_ai.usage.reasoning_tokens", "value": {"intValue": 640}},
                        {"key": "custom.ratio", "value": {"doubleValue": 0.25}},
                        {"key": "custom.flag", "value": {"boolValue": True}},
                        {"key": "custom.tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                    ],
                    "status": {"code": 2, "message": "upstream timeout"},
                    "flags": 256,
                    "someUnknownSpanField": "ignored",
                }],
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            }],
        }],
        "unknownTopLevel": True,
    }


def test_json_export_with_hex_ids_integer_enums_and_string_integers(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    body = json.dumps(hand_written_json(trace_id, span_id)).encode()
    response = post_otlp(client, body, project_key, JSON)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(JSON)
    assert json.loads(response.content) == {}
    (row,) = stored_spans(project.pk)
    assert (row["trace_id"], row["span_id"], row["parent_span_id"]) == (trace_id, span_id, "")
    assert (row["kind"], row["status"], row["status_message"]) == ("client", "error", "upstream timeout")
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (1200, 900, 640)
    assert (row["service"], row["instrumentation"]) == ("json-svc", "hand.written")
    attributes = dict(row["attributes"])
    assert attributes["custom.ratio"] == "0.25"
    assert json.loads(attributes["custom.tags"]) == ["a"]


def test_json_export_also_accepts_enum_names(client: Client, store: ModuleType, project: Any,
                                             project_key: str) -> None:
    document = hand_written_json(new_trace_id(), new_span_id())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["kind"], span["status"]["code"] = "SPAN_KIND_SERVER", "STATUS_CODE_OK"
    response = post_otlp(client, json.dumps(document).encode(), project_key, JSON)
    assert response.status_code == 200, response.content
    (row,) = stored_spans(project.pk, "kind, status")
    assert (row["kind"], row["status"]) == ("server", "ok")


def test_json_partial_success_in_the_proto_json_mapping(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    """One span with a malformed id is rejected; the good one is stored; 200 says so."""
    good, bad = one_call(), one_call()
    document = json.loads(to_json_bytes(make_request([good, bad])))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "not-hex!"
    response = post_otlp(client, json.dumps(document).encode(), project_key, JSON)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(JSON)
    answer = json.loads(response.content)
    assert set(answer) == {"partialSuccess"}
    assert answer["partialSuccess"]["rejectedSpans"] == "1"  # int64 → string in proto JSON
    assert "spanId" in answer["partialSuccess"]["errorMessage"]
    assert [r["span_id"] for r in stored_spans(project.pk, "span_id")] == [good["span_id"]]


def test_protobuf_partial_success(client: Client, store: ModuleType, project: Any, project_key: str) -> None:
    good, bad, zero = one_call(), one_call(), one_call()
    request = make_request([good, bad, zero])
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[1].span_id = b"\x01\x02\x03"
    spans[2].trace_id = b"\0" * 16
    answer = export_response(post_otlp(client, request.SerializeToString(), project_key))
    assert answer.partial_success.rejected_spans == 2
    assert "span_id" in answer.partial_success.error_message
    assert "trace_id" in answer.partial_success.error_message
    assert [r["span_id"] for r in stored_spans(project.pk, "span_id")] == [good["span_id"]]


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, what RFC 9110 means by deflate
        ("deflate", raw_deflate),  # raw deflate, what some clients send
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "identity"],
)
@pytest.mark.parametrize("media", [PROTOBUF, JSON])
def test_compressed_bodies(
    client: Client, store: ModuleType, project: Any, project_key: str, encoding: str, compress: Any, media: str
) -> None:
    request = make_request([one_call(), one_call()])
    raw = request.SerializeToString() if media == PROTOBUF else to_json_bytes(request)
    response = post_otlp(client, compress(raw), project_key, media, encoding)
    assert response.status_code == 200, response.content
    assert len(stored_spans(project.pk, "span_id")) == 2


def test_concatenated_gzip_members_are_all_read(client: Client, store: ModuleType, project: Any,
                                               project_key: str) -> None:
    raw = make_request([one_call()]).SerializeToString()
    # Protobuf messages concatenate: two members make one request with both spans.
    more = make_request([one_call()]).SerializeToString()
    response = post_otlp(client, gzip.compress(raw) + gzip.compress(more), project_key, PROTOBUF, "gzip")
    assert response.status_code == 200
    assert len(stored_spans(project.pk, "span_id")) == 2


# --- 400 ----------------------------------------------------------------------------------


def test_malformed_protobuf_is_400_with_a_message(client: Client, store: ModuleType, project: Any,
                                                  project_key: str) -> None:
    response = post_otlp(client, b"\xff\xff\xff\xff\x0f garbage", project_key)
    assert response.status_code == 400
    status = status_of(response)
    assert status.code == 400
    assert "protobuf" in status.message
    assert stored_spans(project.pk) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"resourceSpans": [', "not valid JSON"),
        (b'["a list"]', "JSON object"),
        (b'{"resourceSpans": 5}', "must be an array"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + b"ab" * 16
         + b'", "spanId": "' + b"cd" * 8 + b'", "startTimeUnixNano": "soon"}]}]}]}', "mapping"),
    ],
    ids=["truncated", "not-an-object", "wrong-type", "bad-field-value"],
)
def test_malformed_json_is_400_with_a_json_message(client: Client, store: ModuleType, project: Any,
                                                   project_key: str, body: bytes, says: str) -> None:
    response = post_otlp(client, body, project_key, JSON)
    assert response.status_code == 400
    assert response["Content-Type"].startswith(JSON)
    document = json.loads(response.content)
    assert document["code"] == 400
    assert says in document["message"]


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"this is not gzip", "gzip"),
        (gzip.compress(b"\x0a\x00" * 100)[:-12], "gzip"),  # cut short: never decode a prefix
        (gzip.compress(b"") + b"trailing junk", "gzip"),
        (zlib.compress(b"\x0a\x00" * 100)[:-6], "deflate"),
    ],
    ids=["not-gzip", "truncated-gzip", "trailing-bytes", "truncated-deflate"],
)
def test_bad_compressed_data_is_400(client: Client, store: ModuleType, project: Any, project_key: str,
                                    body: bytes, encoding: str) -> None:
    response = post_otlp(client, body, project_key, PROTOBUF, encoding)
    assert response.status_code == 400
    assert encoding in status_of(response).message


# --- 413 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """~330 KB of gzip that inflates to 320 MiB (five times the 64 MiB limit)."""
    return gzip_bomb(320)


@pytest.fixture
def warm(client: Client, project_key: str) -> None:
    """One ordinary request first, so lazy imports and caches are not measured."""
    assert post_otlp(client, make_request([]).SerializeToString(), project_key).status_code == 200


def peak_while(action: Any) -> tuple[Any, float, int]:
    """(result, seconds, peak bytes allocated by Python) of ``action()``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = action()
        return result, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_is_stopped_while_decompressing(
    client: Client, store: ModuleType, project: Any, project_key: str, bomb: bytes, settings: Any, warm: None
) -> None:
    settings.OTLP_MAX_BODY_BYTES = 1 * MiB
    assert len(bomb) < 400_000
    response, seconds, peak = peak_while(lambda: post_otlp(client, bomb, project_key, PROTOBUF, "gzip"))
    assert response.status_code == 413
    assert "exceeds" in status_of(response).message
    # Inflating everything would take ~2 s and 320 MiB; stopping at the limit takes neither.
    assert seconds < 0.5, seconds
    assert peak < 16 * MiB, peak


def test_gzip_bomb_at_the_real_64_mib_limit(
    client: Client, store: ModuleType, project: Any, project_key: str, bomb: bytes, settings: Any, warm: None
) -> None:
    assert settings.OTLP_MAX_BODY_BYTES == 64 * MiB
    started = time.perf_counter()
    response = post_otlp(client, bomb, project_key, PROTOBUF, "gzip")
    seconds = time.perf_counter() - started
    assert response.status_code == 413
    assert seconds < 2.0, seconds
    # Memory, measured separately (tracing allocations slows the request down).
    response, _, peak = peak_while(lambda: post_otlp(client, bomb, project_key, PROTOBUF, "gzip"))
    assert response.status_code == 413
    assert peak < 64 * MiB + 16 * MiB, peak  # never the 320 MiB the bomb inflates to


def test_deflate_bomb_is_413_too(client: Client, store: ModuleType, project: Any, project_key: str,
                                 settings: Any) -> None:
    settings.OTLP_MAX_BODY_BYTES = 1 * MiB
    body = zlib.compress(bytes(8 * MiB), 9)
    response = post_otlp(client, body, project_key, PROTOBUF, "deflate")
    assert response.status_code == 413


def test_uncompressed_body_over_the_limit_is_413(client: Client, store: ModuleType, project: Any,
                                                 project_key: str, settings: Any) -> None:
    settings.OTLP_MAX_BODY_BYTES = 64 * 1024
    response = post_otlp(client, b"\x00" * (64 * 1024 + 1), project_key)
    assert response.status_code == 413


def test_too_many_spans_in_one_request_is_413(
    client: Client, store: ModuleType, project: Any, project_key: str, settings: Any
) -> None:
    settings.OTLP_MAX_SPANS_PER_REQUEST = 3
    response = post_otlp(client, make_request([one_call() for _ in range(4)]).SerializeToString(), project_key)
    assert response.status_code == 413
    assert "3" in status_of(response).message
    assert stored_spans(project.pk) == []
    response = post_otlp(client, make_request([one_call() for _ in range(3)]).SerializeToString(), project_key)
    assert response.status_code == 200


# --- 415, 405 -----------------------------------------------------------------------------


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_other_content_types_are_415(client: Client, store: ModuleType, project: Any, project_key: str,
                                     media: str) -> None:
    response = post_otlp(client, make_request([one_call()]).SerializeToString(), project_key, media)
    assert response.status_code == 415
    assert status_of(response).code == 415
    assert stored_spans(project.pk) == []


def test_brotli_content_encoding_is_415(client: Client, store: ModuleType, project: Any, project_key: str) -> None:
    response = post_otlp(client, make_request([one_call()]).SerializeToString(), project_key, PROTOBUF, "br")
    assert response.status_code == 415
    assert "br" in status_of(response).message


def test_get_is_405(client: Client, project_key: str) -> None:
    response = client.get("/v1/traces", HTTP_AUTHORIZATION="Bearer " + project_key)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


# --- 401, 403: keys -----------------------------------------------------------------------


def test_missing_key_is_401(client: Client, store: ModuleType, project: Any) -> None:
    response = post_otlp(client, make_request([one_call()]).SerializeToString(), None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "API key" in status_of(response).message
    assert stored_spans(project.pk) == []


def test_non_bearer_authorization_is_401(client: Client, project: Any) -> None:
    response = client.generic("POST", "/v1/traces", b"", content_type=PROTOBUF,
                              HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401


def test_invalid_revoked_and_deleted_project_keys_get_the_same_401(
    client: Client, store: ModuleType, project: Any, other_project: Any
) -> None:
    """Nothing in the answer tells a wrong key from a revoked one or one of a deleted project."""
    from thinkmeter.models import ApiKey

    body = make_request([one_call()]).SerializeToString()
    revoked, revoked_secret = ApiKey.issue(project, name="revoked")
    revoked.revoke()
    _, orphan_secret = ApiKey.issue(other_project, name="orphan")
    other_project.delete()
    responses = {
        "invalid": post_otlp(client, body, "tm_" + "x" * 43),
        "not-even-a-key": post_otlp(client, body, "hello"),
        "revoked": post_otlp(client, body, revoked_secret),
        "deleted project": post_otlp(client, body, orphan_secret),
    }
    for name, response in responses.items():
        assert response.status_code == 401, name
        assert response["WWW-Authenticate"] == responses["invalid"]["WWW-Authenticate"], name
        assert response.content == responses["invalid"].content, name
    assert "acme" not in responses["revoked"].content.decode(errors="replace")
    assert stored_spans(project.pk) == []


def test_invalid_key_with_a_json_request_gets_a_json_401(client: Client) -> None:
    response = post_otlp(client, b"{}", "tm_nope", JSON)
    assert response.status_code == 401
    assert json.loads(response.content)["code"] == 401


def test_key_without_ingest_scope_is_403(client: Client, store: ModuleType, project: Any) -> None:
    from thinkmeter.models import ApiKey

    _, read_only = ApiKey.issue(project, scopes=("read",), name="dashboards")
    response = post_otlp(client, make_request([one_call()]).SerializeToString(), read_only)
    assert response.status_code == 403
    assert "ingest" in status_of(response).message
    assert stored_spans(project.pk) == []


# --- 429: per-key rate limit --------------------------------------------------------------

LOW_RATE = 2.0


@pytest.fixture
def low_rate(settings: Any) -> Iterator[float]:
    """A per-key limit of 2 requests/s with a fresh bucket (buckets are cached per rate)."""
    settings.OTLP_RATE_LIMIT_PER_SECOND = LOW_RATE
    ratelimit._buckets.pop(LOW_RATE, None)
    yield LOW_RATE
    ratelimit._buckets.pop(LOW_RATE, None)


def test_over_the_per_key_rate_is_429_with_retry_after(
    client: Client, store: ModuleType, project: Any, project_key: str, other_project_key: str, low_rate: float
) -> None:
    body = make_request([]).SerializeToString()  # not empty: the test client drops Content-Type then
    answers = [post_otlp(client, body, project_key).status_code for _ in range(int(low_rate))]
    assert answers == [200] * int(low_rate)  # the burst
    limited = post_otlp(client, body, project_key, JSON)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert json.loads(limited.content)["code"] == 429
    # The limit is per key: another key is not affected.
    assert post_otlp(client, body, other_project_key).status_code == 200
    # And the key recovers once tokens refill.
    time.sleep(1.0 / low_rate + 0.05)
    assert post_otlp(client, body, project_key).status_code == 200


def test_default_rate_lets_at_least_100_requests_per_second_through(
    client: Client, store: ModuleType, project: Any, project_key: str, settings: Any
) -> None:
    body = make_request([]).SerializeToString()
    codes = [post_otlp(client, body, project_key).status_code for _ in range(150)]
    assert codes == [200] * 150
    # The test client may be slower than 100 requests/s on a busy machine, so check the
    # limiter itself too: a burst of 100 at once, then 100/s sustained.
    bucket = ratelimit.limiter(settings.OTLP_RATE_LIMIT_PER_SECOND)
    key = object()
    burst = 0
    while bucket.take(key) == 0.0:  # drain the burst
        burst += 1
    assert burst >= 100
    time.sleep(0.5)
    assert [bucket.take(key) for _ in range(50)] == [0.0] * 50  # refilled at ≥ 100/s


# --- 503: storage down ----------------------------------------------------------------------


@pytest.mark.parametrize("media", [PROTOBUF, JSON])
def test_storage_down_is_503_with_retry_after_and_nothing_is_acknowledged(
    client: Client, project: Any, project_key: str, store: ModuleType, media: str
) -> None:
    request = make_request([one_call(), one_call()])
    body = request.SerializeToString() if media == PROTOBUF else to_json_bytes(request)
    store.execute("DETACH TABLE spans", tag="tests.storage_down", system=True)
    try:
        responses = [post_otlp(client, body, project_key, media) for _ in range(3)]
    finally:
        reattach(store, "spans")
    for response in responses:
        assert response.status_code == 503
        assert int(response["Retry-After"]) >= 1
        assert status_of(response).code == 503
    assert stored_spans(project.pk) == []
    assert counted_sums(project.pk)["requests"] == 0
    # Storage back: the retried request is stored, once.
    assert post_otlp(client, body, project_key, media).status_code == 200
    assert len(stored_spans(project.pk)) == 2
    assert counted_sums(project.pk)["requests"] == 2
    assert rollup_sums(project.pk)["requests"] == 2


def test_a_rollup_table_down_is_503_and_the_retry_counts_once_everywhere(
    client: Client, project: Any, project_key: str, store: ModuleType
) -> None:
    """A materialized view's target missing fails the insert as a whole, never half of it."""
    body = make_request([one_call()]).SerializeToString()
    store.execute("DETACH TABLE usage_hourly", tag="tests.storage_down", system=True)
    try:
        assert post_otlp(client, body, project_key).status_code == 503
    finally:
        reattach(store, "usage_hourly")
    assert stored_spans(project.pk) == []
    assert rollup_sums(project.pk, "usage_daily_users")["requests"] == 0
    assert post_otlp(client, body, project_key).status_code == 200
    assert counted_sums(project.pk)["requests"] == 1
    assert rollup_sums(project.pk)["requests"] == 1
    assert rollup_sums(project.pk, "usage_daily_users")["requests"] == 1


def test_a_writer_timeout_is_503_not_500(
    client: Client, store: ModuleType, project: Any, project_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group-commit writer not finishing in time is a storage problem the exporter retries."""
    from ingest import writer

    def too_slow(*args: Any, **kwargs: Any) -> int:
        raise TimeoutError("span writer did not finish in time")

    monkeypatch.setattr(writer, "write", too_slow)
    response = post_otlp(client, make_request([one_call()]).SerializeToString(), project_key)
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert "span writer timed out" in status_of(response).message
    monkeypatch.undo()
    assert stored_spans(project.pk) == []


def test_a_locked_key_store_is_503_so_the_exporter_retries(
    client: Client, store: ModuleType, project: Any, project_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from thinkmeter.models import ApiKey

    def locked(cls: Any, secret: str) -> None:
        raise OperationalError("database is locked")

    body = make_request([one_call()]).SerializeToString()
    monkeypatch.setattr(ApiKey, "lookup", classmethod(locked))
    response = post_otlp(client, body, project_key)
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    monkeypatch.undo()
    assert post_otlp(client, body, project_key).status_code == 200
    assert len(stored_spans(project.pk)) == 1


# --- what is stored ---------------------------------------------------------------------------


def test_over_long_attribute_values_are_truncated_with_the_marker(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    long_value = "q" * (MAX_ATTRIBUTE_CHARS * 4)
    post_otlp(client, make_request([one_call(**{"custom.blob": long_value})]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "attributes")
    stored = dict(row["attributes"])["custom.blob"]
    assert stored == "q" * MAX_ATTRIBUTE_CHARS + TRUNCATION_MARKER


SECRET_PROMPT = {
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": (
        "I am jane.doe@example.com, my key is sk-proj-AbCdEf0123456789XyZaBcDeF and my card 4111 1111 1111 1111."
    ),
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Noted, jane.doe@example.com. Never share sk-ant-api03-abcdefghijklmnop1234.",
    "input.value": "raw input for ops@example.org",
    "llm.input_messages.0.message.content": "hello there",
}


def test_prompt_text_is_not_stored_by_default(client: Client, store: ModuleType, project: Any,
                                              project_key: str) -> None:
    assert not project.store_prompts
    post_otlp(client, make_request([one_call(**SECRET_PROMPT)]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "prompt_text, completion_text, attributes, input_tokens")
    assert (row["prompt_text"], row["completion_text"]) == ("", "")
    keys = set(dict(row["attributes"]))
    assert not keys & set(SECRET_PROMPT)
    assert "example.com" not in json.dumps(row["attributes"])
    assert row["input_tokens"] == 1200  # token counts only


def test_prompt_text_is_stored_redacted_when_the_project_asks(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    project.store_prompts = True
    project.save(update_fields=["store_prompts"])
    post_otlp(client, make_request([one_call(**SECRET_PROMPT)]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "prompt_text, completion_text, attributes")
    text = row["prompt_text"] + "\n" + row["completion_text"]
    assert "hello there" in row["prompt_text"] and "Noted" in row["completion_text"]
    for secret in ("jane.doe@example.com", "ops@example.org", "sk-proj-AbCdEf0123456789XyZaBcDeF",
                   "sk-ant-api03-abcdefghijklmnop1234", "4111 1111 1111 1111", "4111"):
        assert secret not in text, secret
    assert "[email]" in text and "[api-key]" in text and "[card]" in text
    assert not set(dict(row["attributes"])) & set(SECRET_PROMPT)  # text lives in the text columns only


@pytest.mark.parametrize(
    ("secret", "marker"),
    [
        ("first.last+tag@sub.example.co.uk", "[email]"),
        ("sk-proj-" + "A1b2" * 12, "[api-key]"),
        ("sk-ant-api03-" + "x9" * 20, "[api-key]"),
        ("AKIAIOSFODNN7EXAMPLE", "[api-key]"),
        ("AIzaSyA" + "b" * 32, "[api-key]"),
        ("ghp_" + "c" * 36, "[api-key]"),
        ("tm_" + "D" * 43, "[api-key]"),
        ("Bearer abcdefghijklmnopqrstuvwxyz0123", "Bearer [token]"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0", "[token]"),
        ("4111 1111 1111 1111", "[card]"),
        ("5500-0000-0000-0004", "[card]"),
        ("378282246310005", "[card]"),
    ],
)
def test_redaction_of_secrets_in_stored_text(secret: str, marker: str) -> None:
    from ingest.redact import redact

    redacted = redact(f"before {secret} after")
    assert secret not in redacted
    assert redacted == f"before {marker} after"


def test_redaction_leaves_ordinary_text_alone() -> None:
    from ingest.redact import redact

    text = "Order 12345 shipped on 2025-06-01; call me at noon. Skip task-force planning."
    assert redact(text) == text


# --- catalog: inferred provider, unpriced models ----------------------------------------


def test_provider_is_inferred_from_the_catalog(client: Client, store: ModuleType, project: Any,
                                               project_key: str) -> None:
    item = span_dict(attributes={"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.input_tokens": 1000,
                                 "gen_ai.usage.output_tokens": 200})
    post_otlp(client, make_request([item]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "provider, model, priced, tier, cost_total")
    assert (row["provider"], row["model"], row["priced"], row["tier"]) == ("anthropic", "claude-sonnet-4-5", True, 2)
    assert row["cost_total"] == Decimal("0.006")  # 1000 × $3/M + 200 × $15/M


def test_unknown_model_is_unpriced_never_silently_free(client: Client, store: ModuleType, project: Any,
                                                       project_key: str) -> None:
    item = span_dict(attributes={"gen_ai.system": "acme-labs", "gen_ai.request.model": "acme-reasoner-9000",
                                 "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.output_tokens": 4000,
                                 "gen_ai.usage.reasoning_tokens": 3000})
    post_otlp(client, make_request([item]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "provider, priced, price_id, cost_total, counted, output_tokens")
    assert row["priced"] is False and row["price_id"] == 0
    assert row["cost_total"] == 0
    assert (row["provider"], row["counted"], row["output_tokens"]) == ("acme-labs", 1, 4000)
    hourly = store.execute(
        "SELECT sum(unpriced) AS unpriced, sum(requests) AS requests FROM usage_hourly "
        "WHERE project_id IN {project_ids:Array(UInt32)}", tag="tests.unpriced", projects=project.pk,
    )[0]
    assert (hourly["unpriced"], hourly["requests"]) == (1, 1)


def test_spans_without_usage_are_stored_but_not_counted_or_unpriced(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    item = span_dict("agent step", attributes={"http.route": "/run"})
    post_otlp(client, make_request([item]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "counted, has_usage, priced")
    assert (row["counted"], row["has_usage"], row["priced"]) == (0, False, True)


# --- hand-written payloads: Vercel AI SDK, Logfire ----------------------------------------


def ai_sdk_trace() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """ai.generateText (totals of two steps) above two ai.generateText.doGenerate calls and a tool call."""
    trace_id, root_id = new_trace_id(), new_span_id()
    metadata = {"ai.telemetry.functionId": "answer-question", "ai.telemetry.metadata.userId": "user-9",
                "ai.telemetry.metadata.task_type": "qa"}
    steps = []
    for index, (prompt, completion, reasoning, cached) in enumerate([(1200, 300, 200, 1024), (1600, 500, 320, 1024)]):
        steps.append(span_dict(
            "ai.generateText.doGenerate", trace_id=trace_id, parent_span_id=root_id,
            attributes={
                "operation.name": "ai.generateText.doGenerate answer-question",
                "ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": "openai.responses",
                "ai.model.id": "o4-mini", "ai.response.model": "o4-mini-2025-04-16",
                "ai.response.id": f"resp_{new_span_id()}{index}", "ai.response.msToFirstChunk": 420.5,
                "ai.usage.inputTokens": prompt, "ai.usage.outputTokens": completion,
                "ai.usage.reasoningTokens": reasoning, "ai.usage.cachedInputTokens": cached,
                "gen_ai.system": "openai.responses", "gen_ai.request.model": "o4-mini",
                "gen_ai.response.model": "o4-mini-2025-04-16", "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": completion, "ai.prompt.messages": "[{\"role\":\"user\"}]",
                **metadata,
            },
        ))
    tool = span_dict("ai.toolCall", trace_id=trace_id, parent_span_id=root_id,
                     attributes={"ai.operationId": "ai.toolCall", "ai.toolCall.name": "search",
                                 "ai.toolCall.id": "call_1"})
    root = span_dict(
        "ai.generateText", trace_id=trace_id, span_id=root_id, duration_ms=4000,
        attributes={
            "operation.name": "ai.generateText answer-question", "ai.operationId": "ai.generateText",
            "ai.model.provider": "openai.responses", "ai.model.id": "o4-mini",
            "ai.usage.inputTokens": 2800, "ai.usage.outputTokens": 800, "ai.usage.reasoningTokens": 520,
            "ai.usage.cachedInputTokens": 2048, "ai.response.text": "final answer", **metadata,
        },
    )
    return root, steps, tool


def ai_sdk_expected(steps: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "input_tokens": sum(s["attributes"]["ai.usage.inputTokens"] for s in steps),
        "output_tokens": sum(s["attributes"]["ai.usage.outputTokens"] for s in steps),
        "reasoning_tokens": sum(s["attributes"]["ai.usage.reasoningTokens"] for s in steps),
        "cache_read_tokens": sum(s["attributes"]["ai.usage.cachedInputTokens"] for s in steps),
    }


def test_vercel_ai_sdk_parent_totals_are_not_added_to_their_calls(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    root, steps, tool = ai_sdk_trace()
    # Exporters send children first (they end first) or all in one batch: here one batch, parent first.
    post_otlp(client, make_request([root, *steps, tool], {"service.name": "next-app"}).SerializeToString(),
              project_key)
    rows = {r["span_id"]: r for r in stored_spans(project.pk)}
    assert len(rows) == 4  # every span is kept for the trace view
    assert rows[root["span_id"]]["counted"] == 0
    assert rows[tool["span_id"]]["counted"] == 0
    for step in steps:
        row = rows[step["span_id"]]
        assert row["counted"] == 1
        assert (row["provider"], row["model"], row["operation"]) == (
            "openai", "o4-mini-2025-04-16", "ai.generatetext.dogenerate")
        assert (row["user_id"], row["task_type"], row["ttft_ms"]) == ("user-9", "qa", pytest.approx(420.5))
    expected = ai_sdk_expected(steps)
    for sums in (counted_sums(project.pk), rollup_sums(project.pk), rollup_sums(project.pk, "usage_daily_users")):
        assert sums["requests"] == 2
        assert {k: sums[k] for k in expected} == expected


def test_vercel_ai_sdk_parent_arriving_after_its_calls_is_not_counted(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    root, steps, tool = ai_sdk_trace()
    post_otlp(client, make_request([*steps, tool]).SerializeToString(), project_key)
    post_otlp(client, make_request([root]).SerializeToString(), project_key)
    rows = {r["span_id"]: r["counted"] for r in stored_spans(project.pk, "span_id, counted")}
    assert rows[root["span_id"]] == 0 and all(rows[s["span_id"]] == 1 for s in steps)
    sums = rollup_sums(project.pk)
    assert {k: sums[k] for k in ai_sdk_expected(steps)} == ai_sdk_expected(steps)


def test_vercel_ai_sdk_calls_arriving_after_their_counted_parent_add_nothing(
    client: Client, store: ModuleType, project: Any, project_key: str
) -> None:
    root, steps, tool = ai_sdk_trace()
    post_otlp(client, make_request([root]).SerializeToString(), project_key)
    post_otlp(client, make_request([*steps, tool]).SerializeToString(), project_key)
    assert len(stored_spans(project.pk, "span_id")) == 4
    sums = rollup_sums(project.pk)
    expected = ai_sdk_expected(steps)
    assert {k: sums[k] for k in expected} == expected  # the totals once, never twice


def test_logfire_pydantic_ai_spans_through_the_receiver(client: Client, store: ModuleType, project: Any,
                                                        project_key: str) -> None:
    trace_id, agent_id = new_trace_id(), new_span_id()
    agent = span_dict("agent run", trace_id=trace_id, span_id=agent_id, attributes={
        "logfire.msg": "support_agent run", "logfire.span_type": "span", "agent_name": "support_agent",
        "model_name": "o4-mini", "gen_ai.aggregated_usage.input_tokens": 1500,
        "gen_ai.aggregated_usage.output_tokens": 800,
    })
    chat = span_dict("chat o4-mini", trace_id=trace_id, parent_span_id=agent_id, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "o4-mini",
        "gen_ai.response.model": "o4-mini-2025-04-16", "gen_ai.response.id": f"resp_{new_span_id()}",
        "server.address": "api.openai.com", "gen_ai.usage.input_tokens": 1500, "gen_ai.usage.output_tokens": 800,
        "gen_ai.usage.details.reasoning_tokens": 512, "gen_ai.usage.cache_read.input_tokens": 1024,
        "operation.cost": 0.004521, "logfire.msg": "chat o4-mini", "logfire.span_type": "span",
        "logfire.json_schema": '{"type":"object","properties":{"events":{"type":"array"}}}',
        "events": '[{"role":"user","content":"where is my order?"}]',
    })
    post_otlp(client, make_request([agent, chat], {"service.name": "support"}, scope="pydantic-ai")
              .SerializeToString(), project_key)
    rows = {r["span_id"]: r for r in stored_spans(project.pk)}
    row = rows[chat["span_id"]]
    assert (row["provider"], row["model"], row["counted"], row["priced"]) == (
        "openai", "o4-mini-2025-04-16", 1, True)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1500, 1024, 800, 512)
    assert row["reported_cost"] == Decimal("0.004521")
    assert row["cost_total"] != row["reported_cost"]  # ours is computed, theirs kept beside it
    assert rows[agent_id]["counted"] == 0
    assert dict(row["attributes"])["logfire.span_type"] == "span"
