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

import logging
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from ingest import writer
from ingest.grpc_server import RunningReceiver, start_receiver
from tests.ingest.otlp_builders import counted_sums, reattach, rollup_sums, stored_spans

pytestmark = pytest.mark.django_db(transaction=True)

APPS_PER_PROTOCOL = 2
SPANS_PER_APP = 40
SPAN_INTERVAL_S = 0.25  # each app emits for ~10 s, longer than the outages take
OUTAGES = 3
DOWN_S, UP_S = 1.5, 1.0
HTTP_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
GRPC_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


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
        self.events: list = []
        self.down = False
        self.since = time.monotonic()

    def before_insert(self, project_id: int, table: pa.Table) -> pa.Table:
        now = time.monotonic()
        if self.down and now - self.since >= DOWN_S:
            reattach(self.ch, self.table)
            self.down, self.since = False, now
            self.events.append(("up", time.time()))
        elif not self.down and self.outages < OUTAGES and now - self.since >= UP_S:
            self.ch.execute(f"DETACH TABLE {self.table}", tag="tests.faults.storage", system=True)
            self.down, self.since = True, now
            self.outages += 1
            self.events.append(("down", time.time()))
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


def app(name: str, exporter: SpanExporter, first_value: int, results: dict[str, bool]) -> threading.Thread:
    """An instrumented app: SPANS_PER_APP LLM spans over a few seconds, then force_flush."""

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
        results[name] = provider.force_flush(timeout_millis=120_000)
        provider.shutdown()

    return threading.Thread(target=run, name=name, daemon=True)


@pytest.mark.parametrize("flapping", ["spans", "usage_hourly"], indirect=True)
def test_concurrent_http_and_grpc_exporters_store_every_span_once_through_flapping_storage(
    live_server: Any, grpc_receiver: RunningReceiver, ch: ModuleType, project: Any, project_key: str,
    caplog: pytest.LogCaptureFixture, flapping: Flapping,
) -> None:
    results: dict[str, bool] = {}
    apps = []
    values: list[int] = []
    for n in range(APPS_PER_PROTOCOL * 2):
        protocol = "http" if n % 2 == 0 else "grpc"
        exporter: SpanExporter
        if protocol == "http":
            exporter = HttpExporter(endpoint=live_server.url + "/v1/traces", timeout=60, compression=Compression.Gzip,
                                    headers={"Authorization": f"Bearer {project_key}"})
        else:
            exporter = GrpcExporter(endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=60,
                                    headers={"authorization": f"Bearer {project_key}"})
        first = n * 1000
        values.extend(range(first, first + SPANS_PER_APP))
        apps.append(app(f"{protocol}-app-{n}", exporter, first, results))

    with caplog.at_level(logging.WARNING):
        for thread in apps:
            thread.start()
        for thread in apps:
            thread.join(timeout=180)
    for r in caplog.records:
        print("DBG", r.created, r.name, r.getMessage()[:90])
    print("DBG events", flapping.events)
    assert flapping.outages == OUTAGES and not flapping.down
    assert all(not thread.is_alive() for thread in apps)
    assert results == {thread.name: True for thread in apps}, "an exporter gave up"

    # Both protocols met the outages and retried (the receivers answered 503 / UNAVAILABLE).
    from prometheus_client import REGISTRY
    print("DBG received", {p: REGISTRY.get_sample_value("thinkmeter_spans_received_total", {"protocol": p}) for p in ("http", "grpc")})
    have = {r["user_id"] for r in ch.execute("SELECT user_id FROM spans WHERE project_id IN {project_ids:Array(UInt32)}", tag="dbg", projects=project.pk)}
    print("DBG missing", [v for v in values if f"u{v}" not in have])

    total = len(values)
    rows = stored_spans(project.pk, "trace_id, span_id, counted")
    assert len(rows) == total, "a span is missing or stored twice"
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
