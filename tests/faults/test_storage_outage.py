"""Storage failing under real OTel exporters of both protocols at once: every span stored exactly once.

tests/ingest/test_exporter_retry.py (HTTP) and tests/ingest/test_grpc.py (gRPC) each prove
one exporter's retries through one outage of the spans table. This adds what they leave
out: HTTP and gRPC exporters of several apps exporting at the same time (so a failed
group-commit flush carries requests of both receivers), the store failing three times in
a row while spans keep coming (the outages start and end between two inserts of the
group-commit writer, see :class:`Flapping`), and the failure sitting in a rollup's table
(what a materialized view writes to) instead of in ``spans`` itself. The receivers answer 503 /
UNAVAILABLE with a retry delay; the exporters' own retries then deliver everything, and
the spans table, its counted sums and both rollups hold every span exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from ingest import writer
from ingest.grpc_server import RunningReceiver, start_receiver
from tests.ingest.otlp_builders import counted_sums, reattach, rollup_sums, stored_spans

pytestmark = pytest.mark.django_db(transaction=True)

APPS_PER_PROTOCOL = 2
SPANS_PER_APP = 40
SPAN_INTERVAL_S = 0.25  # each app emits for ~10 s, longer than the outages take
OUTAGES = 3
DOWN_S, UP_S = 1.5, 1.0


@pytest.fixture
def grpc_receiver() -> Iterator[RunningReceiver]:
    running = start_receiver("127.0.0.1:0", workers=8)
    yield running
    running.server.stop(0).wait()


class Flapping:
    """Fails ``table`` OUTAGES times (DETACH for DOWN_S, then ATTACH for UP_S), at flush boundaries.

    Installed as a ``before_insert`` hook of the span writer, it detaches and attaches the
    table on the writer thread, between two inserts. The writer is the only thread that
    inserts, so no insert is ever in flight when the table goes away: detaching a source
    table under a running insert makes ClickHouse itself skip a materialized view's push
    for that block (seen here: a batch in ``spans`` and ``usage_hourly`` but not in
    ``usage_daily_users``), an artefact of the injection that a real failure does not have.
    """

    def __init__(self, ch: ModuleType, table: str) -> None:
        self.ch, self.table = ch, table
        self.outages = 0
        self.down = False
        self.since = time.monotonic()

    def before_insert(self, project_id: int, table: pa.Table) -> pa.Table:
        now = time.monotonic()
        if self.down and now - self.since >= DOWN_S:
            reattach(self.ch, self.table)
            self.down, self.since = False, now
        elif not self.down and self.outages < OUTAGES and now - self.since >= UP_S:
            self.ch.execute(f"DETACH TABLE {self.table}", tag="tests.faults.storage", system=True)
            self.down, self.since = True, now
            self.outages += 1
        return table

    def restore(self) -> None:
        if self.down:
            reattach(self.ch, self.table)
            self.down = False


@pytest.fixture
def flapping(request: pytest.FixtureRequest, ch: ModuleType) -> Iterator[Flapping]:
    """A :class:`Flapping` for the table named by the test's ``failing_table`` parameter."""
    injector = Flapping(ch, request.param)
    writer.hooks.before_insert.insert(0, injector.before_insert)
    try:
        yield injector
    finally:
        writer.hooks.before_insert.remove(injector.before_insert)
        injector.restore()


class Recorded(SpanExporter):
    """The real exporter, with the outcome of every batch it exported kept (after its own retries)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.outcomes: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        outcome = self.exporter.export(spans)
        self.outcomes.append(outcome)
        return outcome

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def app(name: str, exporter: SpanExporter, first_value: int) -> threading.Thread:
    """An instrumented app: SPANS_PER_APP LLM spans over a few seconds, then force_flush and shutdown."""

    def run() -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=8, schedule_delay_millis=100))
        tracer = provider.get_tracer("tests.faults.storage")
        for i in range(SPANS_PER_APP):
            with tracer.start_as_current_span("chat o3-mini", kind=SpanKind.CLIENT) as span:
                value = first_value + i
                span.set_attributes({
                    "gen_ai.system": "openai", "gen_ai.request.model": "o3-mini",
                    "gen_ai.usage.input_tokens": 1000 + value, "gen_ai.usage.output_tokens": 500 + value,
                    "gen_ai.usage.reasoning_tokens": value, "user.id": f"u{value}",
                })
            time.sleep(SPAN_INTERVAL_S)
        provider.force_flush(timeout_millis=120_000)
        provider.shutdown()

    return threading.Thread(target=run, name=name, daemon=True)


def received(protocol: str) -> float:
    """Spans the receiver of ``protocol`` has taken in so far (retries included), from /metrics."""
    return REGISTRY.get_sample_value("thinkmeter_spans_received_total", {"protocol": protocol}) or 0.0


@pytest.mark.parametrize("flapping", ["spans", "usage_hourly"], indirect=True)
def test_concurrent_http_and_grpc_exporters_store_every_span_once_through_flapping_storage(
    live_server: Any, grpc_receiver: RunningReceiver, ch: ModuleType, project: Any, project_key: str,
    flapping: Flapping,
) -> None:
    exporters: dict[str, Recorded] = {}
    apps = []
    values: list[int] = []
    for n in range(APPS_PER_PROTOCOL * 2):
        protocol = "http" if n % 2 == 0 else "grpc"
        if protocol == "http":
            real: SpanExporter = HttpExporter(
                endpoint=live_server.url + "/v1/traces", timeout=60, compression=Compression.Gzip,
                headers={"Authorization": f"Bearer {project_key}"})
        else:
            real = GrpcExporter(endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=60,
                                headers={"authorization": f"Bearer {project_key}"})
        name = f"{protocol}-app-{n}"
        exporters[name] = Recorded(real)
        first = n * 1000
        values.extend(range(first, first + SPANS_PER_APP))
        apps.append(app(name, exporters[name], first))

    before = {protocol: received(protocol) for protocol in ("http", "grpc")}
    for thread in apps:
        thread.start()
    for thread in apps:
        thread.join(timeout=180)
    assert all(not thread.is_alive() for thread in apps)
    assert flapping.outages == OUTAGES and not flapping.down

    # Every batch was exported in the end, by the exporters' own retries ...
    for name, recorded in exporters.items():
        assert recorded.outcomes and set(recorded.outcomes) == {SpanExportResult.SUCCESS}, (name, recorded.outcomes)
    # ... and both receivers answered some attempts 503 / UNAVAILABLE: they took in more spans than were sent.
    per_protocol = APPS_PER_PROTOCOL * SPANS_PER_APP
    for protocol in ("http", "grpc"):
        assert received(protocol) - before[protocol] > per_protocol, f"no {protocol} export met an outage"

    total = len(values)
    rows = stored_spans(project.pk, "trace_id, span_id, user_id, counted")
    assert sorted(int(r["user_id"][1:]) for r in rows) == sorted(values), "a span is missing or stored twice"
    assert len({(r["trace_id"], r["span_id"]) for r in rows}) == total
    assert all(r["counted"] == 1 for r in rows)
    expected = {
        "requests": total,
        "input_tokens": sum(1000 + v for v in values),
        "output_tokens": sum(500 + v for v in values),
        "reasoning_tokens": sum(values),
    }
    for sums in (counted_sums(project.pk), rollup_sums(project.pk), rollup_sums(project.pk, "usage_daily_users")):
        assert {k: sums[k] for k in expected} == expected
