"""The OTLP/gRPC receiver (ingest.grpc_server) with the real OTel gRPC exporter as its client.

The server runs in this process on a free port (chdb allows one process), so the tests
use transactional DB access: the server's worker threads have their own connections.
Storage outages are made by detaching the spans table under the running receiver.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from django.core.management import call_command
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ingest.grpc_server import (
    RETRY_INFO_KEY,
    STATUS_DETAILS_KEY,
    BindError,
    RunningReceiver,
    serve_forever,
    start_grpc_server,
    start_receiver,
    stop_grpc_servers,
)
from tests.ingest.otlp_builders import make_request, new_span_id, span_dict

# Transactional: the server's worker threads use their own DB connections. Serialized
# rollback: each test starts from the migrated database (the shipped price catalog is a
# data migration, which a transactional test's closing flush would empty for the next).
pytestmark = pytest.mark.django_db(transaction=True)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MODEL = "grpc-test-reasoner"
USAGE = {
    "gen_ai.provider.name": "openai",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": MODEL,
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.usage.output_tokens": 900,
    "gen_ai.usage.reasoning.output_tokens": 600,
}
# USD per million tokens of the test model (a project override, so the test does not
# depend on the shipped catalog): input 2, cache read 0.5, output 8, reasoning = output.
RATES = {"input": Decimal("2"), "cache_read": Decimal("0.5"), "output": Decimal("8")}
COST_PER_CALL = (
    (1200 - 200) * RATES["input"] + 200 * RATES["cache_read"] + (900 - 600) * RATES["output"] + 600 * RATES["output"]
) / 1_000_000
SPAN_SQL = "FROM spans WHERE project_id IN {project_ids:Array(UInt32)}"


# --- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[RunningReceiver]:
    running = start_receiver("127.0.0.1:0", workers=4)
    yield running
    running.server.stop(0).wait()


@pytest.fixture
def priced_model(project: Any) -> None:
    from ingest.models import ModelPrice, PriceRate

    price = ModelPrice.objects.create(
        project=project, model=MODEL, provider="openai", pattern=f"^{MODEL}$", tier=3, reasoning=True
    )
    PriceRate.objects.create(
        model_price=price, effective_from=date(2020, 1, 1), input=RATES["input"],
        cache_read=RATES["cache_read"], output=RATES["output"],
    )


@pytest.fixture
def spans_table(ch: ModuleType) -> Iterator[dict[str, Callable[[], None]]]:
    """detach()/attach() the spans table to make storage fail; always attached again afterwards."""

    def attached() -> bool:
        rows = ch.execute("EXISTS TABLE spans", tag="tests.grpc.outage", system=True)
        return bool(next(iter(rows[0].values())))

    def detach() -> None:
        ch.execute("DETACH TABLE spans", tag="tests.grpc.outage", system=True)

    def attach() -> None:
        if not attached():
            ch.execute("ATTACH TABLE spans", tag="tests.grpc.outage", system=True)

    yield {"detach": detach, "attach": attach}
    attach()


def llm_spans(count: int, **extra: Any) -> list[ReadableSpan]:
    """Finished SDK spans of ``count`` LLM calls, as an app's tracer produces them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-test-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.grpc")
    for i in range(count):
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT) as span:
            span.set_attributes({**USAGE, "gen_ai.response.id": f"resp-{new_span_id()}-{i}", **extra})
    provider.shutdown()
    return list(memory.get_finished_spans())


def exporter(receiver: RunningReceiver, key: str | None, **options: Any) -> OTLPSpanExporter:
    headers = {"authorization": f"Bearer {key}"} if key is not None else None
    return OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True, headers=headers, **options)


def raw_call(
    receiver: RunningReceiver, request: ExportTraceServiceRequest | bytes, key: str | None
) -> ExportTraceServiceResponse:
    """One Export call without the exporter's retries; bytes are sent as they are."""
    metadata = [("authorization", f"Bearer {key}")] if key is not None else []
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        if isinstance(request, bytes):
            call = channel.unary_unary(
                EXPORT_METHOD, request_serializer=lambda x: x,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            return call(request, metadata=metadata, timeout=10)
        return TraceServiceStub(channel).Export(request, metadata=metadata, timeout=10)


def rpc_error(receiver: RunningReceiver, request: ExportTraceServiceRequest | bytes, key: str | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(receiver, request, key)
    return caught.value


def usage_request(count: int = 1) -> ExportTraceServiceRequest:
    return make_request([span_dict(attributes=dict(USAGE)) for _ in range(count)])


def totals(ch: ModuleType, project_id: int) -> dict[str, Any]:
    rows = ch.execute(
        "SELECT count() AS n_rows, countIf(spans.counted = 1) AS n_counted, "
        "sumIf(spans.input_tokens, spans.counted = 1) AS n_input, "
        "sumIf(spans.output_tokens, spans.counted = 1) AS n_output, "
        "sumIf(spans.reasoning_tokens, spans.counted = 1) AS n_reasoning, "
        "sumIf(spans.cache_read_tokens, spans.counted = 1) AS n_cache_read, "
        "sumIf(spans.cost_total, spans.counted = 1) AS cost, uniqExact(spans.span_id) AS n_spans "
        f"{SPAN_SQL}",
        tag="tests.grpc.totals", projects=project_id,
    )
    return {name.removeprefix("n_"): value for name, value in rows[0].items()}


def rollup(ch: ModuleType, project_id: int) -> dict[str, Any]:
    rows = ch.execute(
        "SELECT sum(requests) AS requests, sum(reasoning_tokens) AS reasoning, sum(cost_total) AS cost "
        "FROM usage_hourly WHERE project_id IN {project_ids:Array(UInt32)}",
        tag="tests.grpc.rollup", projects=project_id,
    )
    return rows[0]


def retry_info(error: grpc.RpcError) -> tuple[error_details_pb2.RetryInfo, error_details_pb2.RetryInfo]:
    """RetryInfo from grpc-status-details-bin and from google.rpc.retryinfo-bin (both must be there)."""
    trailing = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailing[STATUS_DETAILS_KEY])
    assert status.code == error.code().value[0]
    assert status.message == error.details()
    (detail,) = status.details
    from_status = error_details_pb2.RetryInfo()
    assert detail.Unpack(from_status)
    bare = error_details_pb2.RetryInfo.FromString(trailing[RETRY_INFO_KEY])
    return from_status, bare


# --- the real exporter ----------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip], ids=["plain", "gzip"])
def test_exporter_spans_are_stored_priced_and_rolled_up(
    receiver: RunningReceiver, project: Any, project_key: str, priced_model: None, ch: ModuleType,
    compression: grpc.Compression | None,
) -> None:
    spans = llm_spans(5)
    assert exporter(receiver, project_key, compression=compression).export(spans) is SpanExportResult.SUCCESS

    got = totals(ch, project.pk)
    assert got["rows"] == got["counted"] == got["spans"] == 5
    assert (got["input"], got["cache_read"], got["output"], got["reasoning"]) == (6000, 1000, 4500, 3000)
    assert Decimal(got["cost"]) == 5 * COST_PER_CALL == Decimal("0.0465")
    stored = ch.execute(
        f"SELECT service, provider, model, kind, priced, trace_id, span_id {SPAN_SQL} ORDER BY span_id",
        tag="tests.grpc.row", projects=project.pk,
    )
    assert {(r["service"], r["provider"], r["model"], r["kind"], r["priced"]) for r in stored} == {
        ("grpc-test-app", "openai", MODEL, "client", True)
    }
    assert sorted(r["span_id"] for r in stored) == sorted(f"{s.context.span_id:016x}" for s in spans)
    assert rollup(ch, project.pk) == {"requests": 5, "reasoning": 3000, "cost": Decimal("0.0465")}


def test_resending_the_same_spans_counts_them_once(
    receiver: RunningReceiver, project: Any, project_key: str, priced_model: None, ch: ModuleType
) -> None:
    spans = llm_spans(3)
    client = exporter(receiver, project_key)
    for _ in range(3):
        assert client.export(spans) is SpanExportResult.SUCCESS
    got = totals(ch, project.pk)
    assert got["counted"] == 3 and got["reasoning"] == 1800
    assert rollup(ch, project.pk)["requests"] == 3


# --- keys -----------------------------------------------------------------------------


def test_missing_invalid_or_revoked_key_is_refused_and_nothing_is_stored(
    receiver: RunningReceiver, project: Any, ch: ModuleType
) -> None:
    from thinkmeter.models import ApiKey

    revoked, revoked_secret = ApiKey.issue(project, name="revoked")
    revoked.revoke()
    spans = llm_spans(2)
    for key in (None, "tm_not-a-real-key", "not even the prefix", revoked_secret):
        started = time.monotonic()
        assert exporter(receiver, key).export(spans) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 2, "UNAUTHENTICATED must not be retried"
        error = rpc_error(receiver, usage_request(), key)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert ("missing API key" if key is None else "invalid or revoked API key") in error.details()
    assert totals(ch, project.pk)["rows"] == 0


def test_metadata_without_the_bearer_scheme_is_unauthenticated(
    receiver: RunningReceiver, project: Any, project_key: str
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel, pytest.raises(grpc.RpcError) as caught:
        TraceServiceStub(channel).Export(usage_request(), metadata=[("authorization", project_key)], timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_key_without_ingest_scope_is_permission_denied(receiver: RunningReceiver, project: Any, ch: ModuleType) -> None:
    from thinkmeter.models import ApiKey

    _, read_only = ApiKey.issue(project, ("read",), name="read only")
    error = rpc_error(receiver, usage_request(), read_only)
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "ingest scope" in error.details()
    assert exporter(receiver, read_only).export(llm_spans(1)) is SpanExportResult.FAILURE
    assert totals(ch, project.pk)["rows"] == 0


def test_rate_limit_is_resource_exhausted_with_retry_info(
    receiver: RunningReceiver, project: Any, project_key: str, settings: Any, ch: ModuleType
) -> None:
    settings.OTLP_RATE_LIMIT_PER_SECOND = 0.25  # one request, then 4 s until the next token
    assert raw_call(receiver, usage_request(), project_key) == ExportTraceServiceResponse()
    error = rpc_error(receiver, usage_request(), project_key)
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit" in error.details()
    from_status, bare = retry_info(error)
    assert from_status == bare
    assert 3.0 < bare.retry_delay.seconds + bare.retry_delay.nanos / 1e9 <= 4.0
    assert totals(ch, project.pk)["rows"] == 1


# --- storage down ---------------------------------------------------------------------


def test_storage_down_is_unavailable_with_retry_info(
    receiver: RunningReceiver, project: Any, project_key: str, spans_table: dict[str, Callable[[], None]],
    ch: ModuleType,
) -> None:
    spans_table["detach"]()
    error = rpc_error(receiver, usage_request(), project_key)
    spans_table["attach"]()
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "storage unavailable" in error.details()
    from_status, bare = retry_info(error)
    assert from_status == bare
    assert (bare.retry_delay.seconds, bare.retry_delay.nanos) == (2, 0)
    assert totals(ch, project.pk)["rows"] == 0


def test_exporter_retries_deliver_every_span_exactly_once_after_storage_returns(
    receiver: RunningReceiver, project: Any, project_key: str, priced_model: None,
    spans_table: dict[str, Callable[[], None]], ch: ModuleType,
) -> None:
    spans = llm_spans(20)
    spans_table["detach"]()
    back = threading.Timer(2.0, spans_table["attach"])
    back.start()
    try:
        started = time.monotonic()
        result = exporter(receiver, project_key, timeout=30).export(spans)
        elapsed = time.monotonic() - started
    finally:
        back.join()
    assert result is SpanExportResult.SUCCESS
    assert elapsed >= 1.9, "the first attempts must have failed while the table was detached"
    got = totals(ch, project.pk)
    assert got["rows"] == got["counted"] == got["spans"] == 20
    assert (got["input"], got["output"], got["reasoning"]) == (24_000, 18_000, 12_000)
    assert Decimal(got["cost"]) == 20 * COST_PER_CALL
    assert rollup(ch, project.pk) == {"requests": 20, "reasoning": 12_000, "cost": 20 * COST_PER_CALL}


# --- bad data -------------------------------------------------------------------------


def test_malformed_span_id_is_a_partial_success_and_the_good_span_is_stored(
    receiver: RunningReceiver, project: Any, project_key: str, ch: ModuleType
) -> None:
    good = span_dict(name="good", attributes=dict(USAGE))
    bad = span_dict(name="bad", attributes=dict(USAGE), span_id="abcd1234")  # 4 bytes, not 8
    response = raw_call(receiver, make_request([good, bad]), project_key)
    assert response.partial_success.rejected_spans == 1
    assert "span_id must be 8 bytes" in response.partial_success.error_message
    assert "'bad'" in response.partial_success.error_message
    stored = ch.execute(f"SELECT name, span_id {SPAN_SQL}", tag="tests.grpc.partial", projects=project.pk)
    assert stored == [{"name": "good", "span_id": good["span_id"]}]


def test_garbage_bytes_are_invalid_argument(
    receiver: RunningReceiver, project: Any, project_key: str, ch: ModuleType
) -> None:
    for garbage in (b"\xff\xff\xff\xff\xff", b"\x0a\x05abc", os.urandom(64) + b"\x0f"):
        error = rpc_error(receiver, garbage, project_key)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, garbage
        assert "not a valid ExportTraceServiceRequest protobuf" in error.details()
    assert totals(ch, project.pk)["rows"] == 0


def test_too_many_spans_is_invalid_argument_with_the_limit(
    receiver: RunningReceiver, project: Any, project_key: str, settings: Any, ch: ModuleType
) -> None:
    settings.OTLP_MAX_SPANS_PER_REQUEST = 3
    error = rpc_error(receiver, usage_request(4), project_key)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "4 spans in one request exceed the limit of 3" in error.details()
    assert exporter(receiver, project_key).export(llm_spans(4)) is SpanExportResult.FAILURE
    assert exporter(receiver, project_key).export(llm_spans(3)) is SpanExportResult.SUCCESS
    assert totals(ch, project.pk)["rows"] == 3


def padded(request: ExportTraceServiceRequest, size: int) -> bytes:
    """``request`` serialized, plus an unknown length-delimited field of ``size`` zero bytes (cheap to build)."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            low, value = value & 0x7F, value >> 7
            out.append(low | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return request.SerializeToString() + varint(1000 << 3 | 2) + varint(size) + bytes(size)


def test_messages_up_to_64_mib_are_accepted_and_larger_ones_refused_even_when_gzipped(
    receiver: RunningReceiver, project: Any, project_key: str, ch: ModuleType
) -> None:
    mib = 1024 * 1024
    metadata = [("authorization", f"Bearer {project_key}")]
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        export = channel.unary_unary(
            EXPORT_METHOD, request_serializer=lambda x: x, response_deserializer=ExportTraceServiceResponse.FromString
        )
        # 60 MiB (grpcio's default limit is 4 MiB): decoded, the unknown field ignored, the span stored.
        assert export(padded(usage_request(), 60 * mib), metadata=metadata, timeout=30) == ExportTraceServiceResponse()
        for compression in (None, grpc.Compression.Gzip):  # gzipped, 65 MiB of zeros is a ~65 KiB bomb
            with pytest.raises(grpc.RpcError) as caught:
                export(padded(usage_request(), 65 * mib), metadata=metadata, timeout=30, compression=compression)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, compression
            assert "larger than max" in (caught.value.details() or ""), caught.value.details()
    assert totals(ch, project.pk)["rows"] == 1


# --- starting and stopping ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_grpc_server_serves_and_a_taken_port_is_a_clear_error(
    project: Any, project_key: str, ch: ModuleType
) -> None:
    port = free_port()
    start_grpc_server(f"127.0.0.1:{port}")  # `manage.py serve` drops the returned server, too
    gc.collect()  # grpcio stops a server that nothing references
    try:
        with pytest.raises(BindError, match=f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}"):
            start_receiver(f"127.0.0.1:{port}")
        client = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{port}", insecure=True, headers={"authorization": f"Bearer {project_key}"}
        )
        assert client.export(llm_spans(2)) is SpanExportResult.SUCCESS
    finally:
        stop_grpc_servers(0)
    assert totals(ch, project.pk)["rows"] == 2


def test_serve_forever_announces_the_port_and_stops_when_asked(
    project: Any, project_key: str, ch: ModuleType
) -> None:
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve_forever, args=("127.0.0.1:0", lines.append, 1.0, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lines and lines[0].startswith("OTLP/gRPC receiver listening on 127.0.0.1:")
        port = int(lines[0].rsplit(":", 1)[1])
        provider = TracerProvider(resource=Resource.create({"service.name": "grpc-test-app"}))
        provider.add_span_processor(grpc_processor(port, project_key))
        with provider.get_tracer("tests").start_as_current_span("chat") as span:
            span.set_attributes(USAGE)
        provider.shutdown()
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert lines[-1] == "OTLP/gRPC receiver stopping"
    assert totals(ch, project.pk)["rows"] == 1


def grpc_processor(port: int, key: str) -> SimpleSpanProcessor:
    """What an app configures: the SDK's span processor with the real gRPC exporter."""
    return SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, headers={"authorization": f"Bearer {key}"})
    )


class _Lines(io.StringIO):
    """A stdout for call_command that other threads may read while the command runs."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


def test_otlp_grpc_command_prints_its_port_serves_and_stops_on_sigterm(
    project: Any, project_key: str, ch: ModuleType
) -> None:
    """``manage.py otlp_grpc`` in this process (chdb allows one): a helper thread exports, then sends SIGTERM."""
    out = _Lines()
    outcome: dict[str, Any] = {}

    def client() -> None:
        deadline = time.monotonic() + 15
        while "listening on" not in out.text():
            if time.monotonic() > deadline:
                outcome["error"] = "the command never announced its address"
                return  # no signal: the command would then hang, and the test times out below
            time.sleep(0.02)
        port = int(out.text().split("listening on 127.0.0.1:")[1].split()[0])
        outcome["port"] = port
        client = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{port}", insecure=True, headers={"authorization": f"Bearer {project_key}"}
        )
        outcome["result"] = client.export(llm_spans(4))
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=client)
    helper.start()
    before = signal.getsignal(signal.SIGTERM)
    call_command("otlp_grpc", "--port", "0", "--grace", "1", stdout=out)
    helper.join(15)
    assert "error" not in outcome, outcome
    assert outcome["result"] is SpanExportResult.SUCCESS
    assert f"OTLP/gRPC receiver listening on 127.0.0.1:{outcome['port']}" in out.text()
    assert signal.getsignal(signal.SIGTERM) == before, "the command must restore the signal handlers"
    assert totals(ch, project.pk)["rows"] == 4


def test_otlp_grpc_command_help(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "otlp_grpc", "--help"]).execute()
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "usage: manage.py otlp_grpc" in shown and "--port" in shown and "--host" in shown


def test_otlp_grpc_command_in_a_second_embedded_process_exits_with_a_clear_error() -> None:
    from thinkmeter.clickhouse import client

    if client.config().kind != "chdb":
        pytest.skip("only the embedded store is limited to one process")
    client.transport()  # this process holds the store
    second = subprocess.run(
        [sys.executable, "manage.py", "otlp_grpc", "--port", str(free_port())],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
    )
    assert second.returncode == 2, (second.stdout, second.stderr)
    assert "cannot open the embedded ClickHouse store" in second.stderr
    assert "listening" not in second.stdout


# --- the key checks are shared with OTLP/HTTP (ingest.receiver) -------------------------


def test_http_receiver_answers_key_failures_through_the_shared_check(
    client: Any, project: Any, project_key: str, settings: Any
) -> None:
    from thinkmeter.models import ApiKey

    body = usage_request().SerializeToString()

    def post(key: str | None) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return client.post("/v1/traces", body, content_type="application/x-protobuf", headers=headers)

    revoked, revoked_secret = ApiKey.issue(project, name="revoked")
    revoked.revoke()
    _, read_only = ApiKey.issue(project, ("read",), name="read only")
    for key, status, text in ((None, 401, "missing API key"), (revoked_secret, 401, "invalid or revoked"),
                              (read_only, 403, "ingest scope")):
        response = post(key)
        assert response.status_code == status
        assert text in status_pb2.Status.FromString(response.content).message
        assert ("WWW-Authenticate" in response) is (status == 401)
    settings.OTLP_RATE_LIMIT_PER_SECOND = 0.2
    assert post(project_key).status_code == 200
    limited = post(project_key)
    assert limited.status_code == 429 and limited["Retry-After"] == "5"
