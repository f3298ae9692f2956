"""The OTLP receivers fuzzed with Hypothesis, over HTTP (``POST /v1/traces``) and gRPC.

Inputs: random bytes (as protobuf, as JSON, gzip-labelled), valid protobufs truncated
at every kind of offset, valid protobufs with random bytes overwritten, requests whose
fields take any value (ids of any length, any timestamps, kinds and status codes, text
with every Unicode plane, attribute values of every AnyValue type nested in arrays and
key-value lists, tens of thousands of attributes), JSON nested deeper than the
receiver's limit, JSON with wrong types in any field, and JSON strings with bad UTF-8.

Every answer is 200 (with ``partial_success`` when some spans were refused), 400, 413
or 415 — never a 5xx (gRPC: OK or INVALID_ARGUMENT, never UNKNOWN/INTERNAL). After every
request the rows new in the spans table are compared with an oracle written here,
independently of the receiver: each new row must be a span that was valid in the bytes
the server received (ids of the right length and not zero, times in range), with the
start time it was sent with; when the answer was 200 without rejections every such
span must be there. So no garbage row — and no half of a refused request — is stored.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from django.conf import settings as settings_module
from django.test import Client
from google.protobuf.message import DecodeError as ProtobufDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ingest.decode import MAX_JSON_DEPTH
from ingest.grpc_server import RunningReceiver, start_receiver
from tests.ingest.otlp_builders import to_otlp_json

EXAMPLES = int(os.environ.get("THINKMETER_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
HTTP_ALLOWED = {200, 400, 413, 415}
MAX_TIME_NS = 2**63 - 1
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
StoredKey = tuple[str, str, int]  # trace_id, span_id, start_ns


# ---------------------------------------------------------------------- strategies

text = st.text(st.characters(codec="utf-8"), max_size=40)
ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=24))
ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=12))
times = st.one_of(st.integers(1_600_000_000_000_000_000, 1_900_000_000_000_000_000), st.integers(0, 2**64 - 1))


def any_values(max_leaves: int = 12) -> st.SearchStrategy[AnyValue]:
    leaves = st.one_of(
        text.map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=20).map(lambda v: AnyValue(bytes_value=v)),
    )

    def nest(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
        def as_array(values: list[AnyValue]) -> AnyValue:
            value = AnyValue()
            value.array_value.values.extend(values)
            return value

        def as_kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
            value = AnyValue()
            value.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
            return value

        return st.one_of(st.lists(children, max_size=4).map(as_array),
                         st.lists(st.tuples(text, children), max_size=4).map(as_kvlist))

    return st.recursive(leaves, nest, max_leaves=max_leaves)


# Attribute keys the receiver reads (token counts, model, tier, ...) get any value too.
KNOWN_KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.reasoning_tokens",
              "gen_ai.usage.cache_read_input_tokens", "gen_ai.request.model", "gen_ai.response.model",
              "gen_ai.system", "thinkmeter.tier", "thinkmeter.task_type", "user.id", "session.id",
              "gen_ai.prompt.0.content", "gen_ai.response.id", "llm.token_count.prompt", "thinkmeter.quality",
              "gen_ai.request.reasoning_effort", "thinkmeter.thinking_budget", "service.name"]
attribute_lists = st.lists(st.tuples(st.one_of(st.sampled_from(KNOWN_KEYS), text), any_values()), max_size=12)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    span = Span(trace_id=draw(ids16), span_id=draw(ids8), parent_span_id=draw(st.one_of(st.just(b""), ids8)),
                name=draw(text), kind=draw(st.integers(-5, 10)), start_time_unix_nano=draw(times),
                end_time_unix_nano=draw(times))
    span.attributes.extend(KeyValue(key=k, value=v) for k, v in draw(attribute_lists))
    span.status.code = draw(st.integers(-3, 5))
    span.status.message = draw(text)
    for name, at, attrs in draw(st.lists(st.tuples(text, times, attribute_lists), max_size=3)):
        event = span.events.add(name=name, time_unix_nano=at)
        event.attributes.extend(KeyValue(key=k, value=v) for k, v in attrs)
    return span


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(KeyValue(key=k, value=v) for k, v in draw(attribute_lists))
        for _ in range(draw(st.integers(0, 2))):
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = draw(text)
            scope_spans.spans.extend(draw(st.lists(spans(), max_size=4)))
    return request


@st.composite
def valid_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    """Requests whose spans are all valid (the base that truncation and mutation start from)."""
    request = draw(requests())
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.trace_id = draw(st.binary(min_size=16, max_size=16).filter(any))
                span.span_id = draw(st.binary(min_size=8, max_size=8).filter(any))
                span.parent_span_id = b""
                span.start_time_unix_nano = draw(st.integers(1_600_000_000_000_000_000, 1_900_000_000_000_000_000))
                span.end_time_unix_nano = span.start_time_unix_nano + draw(st.integers(0, 10**12))
    if not any(s.spans for r in request.resource_spans for s in r.scope_spans):
        one = request.resource_spans.add().scope_spans.add().spans.add(
            name="x", start_time_unix_nano=1_750_000_000_000_000_000)
        one.trace_id, one.span_id = os.urandom(15) + b"\1", os.urandom(7) + b"\1"
    return request


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)),
    max_leaves=10,
)


# ---------------------------------------------------------------------- the oracle


def valid_spans(request: ExportTraceServiceRequest) -> Counter[StoredKey]:
    """What the server may store from ``request``: spans with well-formed ids and times."""
    found: Counter[StoredKey] = Counter()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or not any(span.trace_id) or len(span.span_id) != 8 \
                        or not any(span.span_id) or (span.parent_span_id and len(span.parent_span_id) != 8):
                    continue
                if max(span.start_time_unix_nano, span.end_time_unix_nano) > MAX_TIME_NS:
                    continue
                if span.end_time_unix_nano and span.end_time_unix_nano < span.start_time_unix_nano:
                    continue
                found[(span.trace_id.hex(), span.span_id.hex(), span.start_time_unix_nano)] += 1
    return found


def oracle_protobuf(body: bytes) -> Counter[StoredKey]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError):
        return Counter()
    return valid_spans(request)


def oracle_json(body: bytes) -> set[tuple[str, str]]:
    """The (trace_id, span_id) pairs written in an OTLP/JSON body as well-formed hex ids."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return set()
    pairs = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            trace, span = node.get("traceId", node.get("trace_id")), node.get("spanId", node.get("span_id"))
            if isinstance(trace, str) and isinstance(span, str) and _hex(trace, 16) and _hex(span, 8):
                pairs.add((trace.lower(), span.lower()))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return pairs


def _hex(value: str, size: int) -> bool:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return False
    return len(raw) == size and any(raw)


class Store:
    """The spans table of one project, as a multiset of (trace_id, span_id, start_ns)."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.seen = self.rows()

    def rows(self) -> Counter[StoredKey]:
        from thinkmeter import clickhouse

        rows = clickhouse.execute(
            "SELECT trace_id, span_id, toUnixTimestamp64Nano(start_time) AS start_ns, count() AS n FROM spans "
            "WHERE project_id IN {project_ids:Array(UInt32)} GROUP BY trace_id, span_id, start_ns",
            tag="tests.fuzz_otlp", projects=self.project_id)
        return Counter({(r["trace_id"], r["span_id"], int(r["start_ns"])): int(r["n"]) for r in rows})

    def new_rows(self) -> Counter[StoredKey]:
        now = self.rows()
        added = now - self.seen
        self.seen = now
        return added


def check_stored(store: Store, status_ok: bool, rejected: int, body: bytes, as_json: bool) -> None:
    added = store.new_rows()
    if not status_ok:
        assert not added, f"a refused request stored {sum(added.values())} rows"
        return
    if as_json:
        allowed_pairs = oracle_json(body)
        garbage = [key for key in added if key[:2] not in allowed_pairs]
        assert not garbage, f"rows of spans that were not valid in the request: {garbage[:3]}"
        return
    expected = oracle_protobuf(body)
    garbage = [key for key in added if key not in expected]
    assert not garbage, f"rows of spans that were not valid in the request: {garbage[:3]}"
    if rejected == 0:
        # ClickHouse's TTL drops spans older than the retention period on insert: those may be missing
        kept_from = (time.time() - settings_module.CLICKHOUSE_RETENTION_DAYS * 86400 + 3600) * 1e9
        missing = [key for key in expected if key not in store.seen and key[2] >= kept_from]
        assert not missing, f"valid spans answered 200 but not stored: {missing[:3]}"


# ---------------------------------------------------------------------- HTTP


@pytest.fixture
def http(ch: Any, project: Any, project_key: str, settings: Any) -> Iterator[tuple[Client, str, Store]]:
    settings.OTLP_RATE_LIMIT_PER_SECOND = 1e9  # the fuzzer sends far faster than an exporter
    yield Client(raise_request_exception=False), project_key, Store(project.pk)


def post(http: tuple[Client, str, Store], body: bytes, content_type: str, encoding: str | None = None) -> None:
    """Send one body; check the status, the response body and what was stored."""
    client, key, store = http
    extra = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    response = client.generic("POST", "/v1/traces", body, content_type=content_type,
                              HTTP_AUTHORIZATION="Bearer " + key, **extra)
    assert response.status_code in HTTP_ALLOWED, (response.status_code, response.content[:500])
    rejected = 0
    if response.status_code == 200:
        if content_type == JSON:
            answer = json.loads(response.content)
            rejected = int(answer.get("partialSuccess", {}).get("rejectedSpans", 0))
        else:
            rejected = ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans
    plain = gzip.decompress(body) if encoding == "gzip" and response.status_code == 200 else body
    check_stored(store, response.status_code == 200, rejected, plain, content_type == JSON)


@FUZZ
@given(body=st.binary(max_size=4096), content_type=st.sampled_from([PROTOBUF, JSON]))
def test_random_bytes(http: Any, body: bytes, content_type: str) -> None:
    post(http, body, content_type)


@FUZZ
@given(body=st.binary(max_size=2048))
def test_random_bytes_labelled_gzip(http: Any, body: bytes) -> None:
    post(http, body, PROTOBUF, encoding="gzip")


@FUZZ
@given(request=valid_requests(), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_protobuf(http: Any, request: ExportTraceServiceRequest, cut: float) -> None:
    body = request.SerializeToString()
    post(http, body[: int(len(body) * cut)], PROTOBUF)


@FUZZ
@given(request=valid_requests(), data=st.data())
def test_mutated_protobuf_bytes(http: Any, request: ExportTraceServiceRequest, data: st.DataObject) -> None:
    body = bytearray(request.SerializeToString())
    for _ in range(data.draw(st.integers(1, 8))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    post(http, bytes(body), PROTOBUF)


@FUZZ
@given(request=requests())
def test_any_field_values_protobuf(http: Any, request: ExportTraceServiceRequest) -> None:
    post(http, request.SerializeToString(), PROTOBUF)


@FUZZ
@given(request=requests())
def test_any_field_values_json(http: Any, request: ExportTraceServiceRequest) -> None:
    document = to_otlp_json(request)
    post(http, json.dumps(document).encode(), JSON)


@settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(count=st.sampled_from([2_000, 20_000, 60_000]), where=st.sampled_from(["span", "resource", "event"]))
def test_huge_attribute_counts(http: Any, count: int, where: str) -> None:
    request = _one_valid_span()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    target = {"span": span.attributes, "resource": request.resource_spans[0].resource.attributes,
              "event": span.events.add(name="e", time_unix_nano=span.start_time_unix_nano).attributes}[where]
    target.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(count))
    post(http, request.SerializeToString(), PROTOBUF)
    post(http, json.dumps(to_otlp_json(request)).encode(), JSON)


def _one_valid_span() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(name="big", kind=Span.SPAN_KIND_CLIENT)
    span.trace_id, span.span_id = os.urandom(15) + b"\1", os.urandom(7) + b"\1"
    span.start_time_unix_nano = 1_750_000_000_000_000_000
    span.end_time_unix_nano = span.start_time_unix_nano + 10**9
    return request


def test_too_many_spans_are_refused_whole(http: Any, settings: Any) -> None:
    settings.OTLP_MAX_SPANS_PER_REQUEST = 50
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for _ in range(51):
        scope.spans.add(name="s", trace_id=os.urandom(15) + b"\1", span_id=os.urandom(7) + b"\1",
                        start_time_unix_nano=1_750_000_000_000_000_000)
    client, key, store = http
    response = client.post("/v1/traces", request.SerializeToString(), content_type=PROTOBUF,
                           HTTP_AUTHORIZATION="Bearer " + key)
    assert response.status_code == 413
    assert not store.new_rows()


@FUZZ
@given(depth=st.integers(1, 3000), where=st.sampled_from(["attribute", "document", "array"]))
def test_deep_json_nesting(http: Any, depth: int, where: str) -> None:
    document = to_otlp_json(_one_valid_span())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    if where == "attribute":
        value: Any = {"stringValue": "leaf"}
        for _ in range(depth):
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
        span["attributes"] = [{"key": "deep", "value": value}]
    elif where == "array":
        value = {"stringValue": "leaf"}
        for _ in range(depth):
            value = {"arrayValue": {"values": [value]}}
        span["attributes"] = [{"key": "deep", "value": value}]
    else:
        nested: Any = 1
        for _ in range(depth):
            nested = [nested]
        document["extra"] = nested
    body = _dumps_deep(document)
    client, key, store = http
    response = client.generic("POST", "/v1/traces", body, content_type=JSON, HTTP_AUTHORIZATION="Bearer " + key)
    assert response.status_code in {200, 400}, (response.status_code, response.content[:300])
    assert (response.status_code == 400) == (json_depth(document) > MAX_JSON_DEPTH), (
        json_depth(document), response.status_code, response.content[:300])
    check_stored(store, response.status_code == 200, 0, body, True)


def json_depth(document: Any) -> int:
    """How deep the deepest value sits (the document itself at 0), counted without recursion."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _dumps_deep(document: Any) -> bytes:
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # json.dumps recurses; the receiver's json.loads must cope
    try:
        return json.dumps(document).encode()
    finally:
        sys.setrecursionlimit(limit)


@FUZZ
@given(request=valid_requests(), data=st.data())
def test_wrong_types_in_json(http: Any, request: ExportTraceServiceRequest, data: st.DataObject) -> None:
    """Any one field of a valid OTLP/JSON document replaced by any JSON value."""
    document = to_otlp_json(request)
    paths = list(_paths(document))
    path = data.draw(st.sampled_from(paths))
    replacement = data.draw(json_values)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = replacement
    post(http, json.dumps(document).encode(), JSON)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


@FUZZ
@given(request=valid_requests(), garbage=st.binary(min_size=1, max_size=6), data=st.data())
def test_bad_utf8_in_json_strings(http: Any, request: ExportTraceServiceRequest, garbage: bytes,
                                  data: st.DataObject) -> None:
    body = json.dumps(to_otlp_json(request)).encode()
    quotes = [i for i, byte in enumerate(body) if byte == ord('"')]
    at = data.draw(st.sampled_from(quotes)) + 1
    bad = garbage if not _decodes(garbage) else b"\xff" + garbage
    post(http, body[:at] + bad + body[at:], JSON)


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@FUZZ
@given(surrogate=st.integers(0xD800, 0xDFFF), request=valid_requests())
def test_lone_surrogates_in_json(http: Any, surrogate: int, request: ExportTraceServiceRequest) -> None:
    """JSON's \\uD800 escapes decode to text that is not Unicode: refused or dropped, never stored as garbage."""
    document = to_otlp_json(request)
    span = next(span for rs in document["resourceSpans"] for ss in rs.get("scopeSpans", [])
                for span in ss.get("spans", []))
    span["name"] = "x" + chr(surrogate)
    span.setdefault("attributes", []).append({"key": "user.id", "value": {"stringValue": chr(surrogate)}})
    post(http, json.dumps(document).encode(), JSON)


# ---------------------------------------------------------------------- gRPC


@pytest.fixture
def grpc_target(transactional_db: Any, ch: Any, project: Any, project_key: str,
                settings: Any) -> Iterator[tuple[Any, str, Store]]:
    """The real receiver on a free local port (its worker threads use their own DB connections)."""
    settings.OTLP_RATE_LIMIT_PER_SECOND = 1e9
    running: RunningReceiver = start_receiver("127.0.0.1:0", workers=2)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    call = channel.unary_unary(EXPORT_METHOD, request_serializer=lambda raw: raw,
                               response_deserializer=ExportTraceServiceResponse.FromString)
    try:
        yield call, project_key, Store(project.pk)
    finally:
        channel.close()
        running.server.stop(0).wait()


def export(target: tuple[Any, str, Store], body: bytes) -> None:
    call, key, store = target
    try:
        answer = call(body, metadata=[("authorization", f"Bearer {key}")], timeout=30)
    except grpc.RpcError as error:
        assert error.code() in {grpc.StatusCode.INVALID_ARGUMENT}, (error.code(), error.details())
        check_stored(store, False, 0, body, False)
        return
    check_stored(store, True, answer.partial_success.rejected_spans, body, False)


@FUZZ
@given(body=st.one_of(st.binary(max_size=2048), requests().map(lambda r: r.SerializeToString()),
                      st.tuples(valid_requests(), st.floats(0, 1, exclude_max=True)).map(
                          lambda rc: rc[0].SerializeToString()[: int(len(rc[0].SerializeToString()) * rc[1])])))
def test_grpc_export_of_any_bytes(grpc_target: Any, body: bytes) -> None:
    export(grpc_target, body)


def test_grpc_huge_attribute_count(grpc_target: Any) -> None:
    request = _one_valid_span()
    request.resource_spans[0].scope_spans[0].spans[0].attributes.extend(
        KeyValue(key=f"k{i}", value=AnyValue(string_value="v" * 10)) for i in range(50_000))
    export(grpc_target, request.SerializeToString())
