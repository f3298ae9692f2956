"""The OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Same pipeline as ``POST /v1/traces`` (:mod:`ingest.otlp_http`): the project key comes in
the ``authorization`` metadata (``Bearer <key>``) and is checked by
:func:`ingest.receiver.check_key`; the serialized request goes to
:func:`ingest.services.ingest_payload` (decoded by :func:`ingest.decode.from_proto`, in a
worker process when those run, and stored through ``record_batch``'s group commit).
Status codes follow the OTLP specification:

- OK with an ExportTraceServiceResponse, ``partial_success`` filled when some spans were
  rejected (a malformed id rejects its span, not the request);
- INVALID_ARGUMENT for an undecodable request or more spans than
  ``settings.OTLP_MAX_SPANS_PER_REQUEST`` (retrying the same request cannot succeed);
- UNAUTHENTICATED for a missing, invalid or revoked key; PERMISSION_DENIED for a key
  without the ingest scope;
- RESOURCE_EXHAUSTED when the key's rate limit is spent, and UNAVAILABLE when storage
  fails: both with a ``google.rpc.RetryInfo``, sent twice in the trailing metadata — as
  a detail of the ``google.rpc.Status`` in ``grpc-status-details-bin`` (the gRPC
  richer-error model) and bare in ``google.rpc.retryinfo-bin``, the key that
  opentelemetry-exporter-otlp-proto-grpc reads its back-off from.

Messages up to 64 MiB (``settings.OTLP_MAX_BODY_BYTES``) are accepted, after
decompression: gRPC core checks the decompressed size, so a gzip bomb is refused as
RESOURCE_EXHAUSTED before it reaches Python. gzip and deflate message compression are
accepted. The request is deserialized here rather than by grpcio, so that garbage bytes
get INVALID_ARGUMENT with a message instead of grpcio's INTERNAL.

:func:`start_grpc_server` starts the server on its own threads (``manage.py serve`` runs
it beside the web server in embedded mode); :func:`serve_forever` is the body of
``manage.py otlp_grpc``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from django.conf import settings
from django.db import close_old_connections
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ingest import decode, services
from ingest.receiver import KeyRejected, check_key
from thinkmeter import metrics
from thinkmeter.auth import bearer_token
from thinkmeter.clickhouse import ClickHouseError

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
STORAGE_RETRY_DELAY_S = 2.0
DEFAULT_WORKERS = 16
# Beyond this many RPCs in flight or queued, grpcio answers RESOURCE_EXHAUSTED itself
# (exporters retry it), rather than queueing without bound.
MAX_CONCURRENT_RPCS = 256
STATUS_DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
PROTOBUF = "application/x-protobuf"

_KEY_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _retry_metadata(code: grpc.StatusCode, message: str, delay_s: float) -> list[tuple[str, bytes]]:
    """Trailing metadata carrying a google.rpc.RetryInfo of ``delay_s`` (see the module docstring)."""
    seconds = int(delay_s)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=seconds, nanos=int(round((delay_s - seconds) * 1e9)))
    )
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return [(STATUS_DETAILS_KEY, status.SerializeToString()), (RETRY_INFO_KEY, retry.SerializeToString())]


def _abort(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, retry_after: float | None = None
) -> NoReturn:
    if retry_after is not None:
        context.set_trailing_metadata(_retry_metadata(code, message, retry_after))
    context.abort(code, message)
    raise AssertionError("grpc.ServicerContext.abort returned")  # abort always raises


def _token(context: grpc.ServicerContext) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name.lower() == "authorization":
            return bearer_token(value if isinstance(value, str) else value.decode("latin-1"))
    return None


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """TraceService implementation: authenticate, decode, store, answer."""

    def Export(  # noqa: N802 - the name is the RPC's
        self, request: bytes | ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        close_old_connections()
        try:
            return self._export(request, context)
        finally:
            close_old_connections()

    def _export(
        self, request: bytes | ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        try:
            key = check_key(_token(context))
        except KeyRejected as exc:
            _abort(context, _KEY_CODES.get(exc.status, grpc.StatusCode.UNAUTHENTICATED), exc.reason, exc.retry_after)
        key.touch()
        body = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            result = services.ingest_payload(key.project, body, PROTOBUF, "identity", "grpc", api_key_id=key.pk)
        except (decode.DecodeError, decode.PayloadTooLarge) as exc:
            metrics.SPANS_REJECTED.labels("undecodable").inc()
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except services.TooManySpans as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"{exc} (e.g. a lower BatchSpanProcessor max_export_batch_size)")
        except (ClickHouseError, TimeoutError) as exc:
            metrics.SPANS_REJECTED.labels("storage_unavailable").inc()
            what = exc.tag if isinstance(exc, ClickHouseError) else "span writer timed out"
            _abort(context, grpc.StatusCode.UNAVAILABLE, f"storage unavailable, retry later ({what})",
                   STORAGE_RETRY_DELAY_S)
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response


def _raw(body: bytes) -> bytes:
    return body


def add_receiver(server: grpc.Server, receiver: TraceReceiver | None = None) -> None:
    """Register TraceService/Export on ``server``; requests reach the servicer as raw bytes."""
    receiver = receiver or TraceReceiver()
    handler = grpc.unary_unary_rpc_method_handler(
        receiver.Export,
        request_deserializer=_raw,
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))


def server_options() -> list[tuple[str, Any]]:
    limit = settings.OTLP_MAX_BODY_BYTES
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ]


@dataclass(frozen=True)
class RunningReceiver:
    server: grpc.Server
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class BindError(RuntimeError):
    """The address could not be listened on (in use, bad host, no permission)."""


def _host(address: str) -> str:
    host, _, _ = address.rpartition(":")
    return host or "0.0.0.0"


def start_receiver(address: str, workers: int = DEFAULT_WORKERS) -> RunningReceiver:
    """Listen on ``address`` (``host:port``; port 0 picks a free one) and start serving."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=server_options(),
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    add_receiver(server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise BindError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
    if not port:  # older grpcio reports a failed bind as port 0
        raise BindError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return RunningReceiver(server, _host(address), port)


_started: list[grpc.Server] = []
_started_lock = threading.Lock()


def start_grpc_server(address: str) -> grpc.Server:
    """Start the receiver on ``address`` on background threads; return the running server.

    grpcio stops a server once nothing references it, so the server is also kept here:
    a caller may drop the returned object and it keeps serving until
    :func:`stop_grpc_servers` (or ``server.stop``).
    """
    server = start_receiver(address).server
    with _started_lock:
        _started.append(server)
    return server


def stop_grpc_servers(grace_s: float | None = None) -> None:
    """Stop every server :func:`start_grpc_server` started, letting in-flight RPCs finish for ``grace_s``."""
    with _started_lock:
        servers, _started[:] = list(_started), []
    for server in servers:
        server.stop(grace_s).wait()


def serve_forever(
    address: str,
    announce: Callable[[str], None] = print,
    grace_s: float = 10.0,
    stop: threading.Event | None = None,
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); then finish in-flight RPCs and flush the writer."""
    receiver = start_receiver(address)
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        announce(f"OTLP/gRPC receiver listening on {receiver.address}")
        while not stop.wait(0.5):
            pass
    finally:
        announce("OTLP/gRPC receiver stopping")
        receiver.server.stop(grace_s).wait()
        from ingest import writer

        writer.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
