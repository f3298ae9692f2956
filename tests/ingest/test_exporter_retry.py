"""The real OTel SDK exporter's retries deliver every span exactly once after storage returns.

opentelemetry-exporter-otlp-proto-http's OTLPSpanExporter behind a BatchSpanProcessor
sends to ``live_server`` while the spans table is detached (the receiver answers 503 with
Retry-After, which the exporter honours); a timer re-attaches the table after ~2 s. After
force_flush every span is stored once and the counted sums are exactly the spans' usage.
"""

from __future__ import annotations

import logging
import threading
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from tests.ingest.otlp_builders import counted_sums, reattach, rollup_sums, stored_spans

SPANS = 60
OUTAGE_S = 2.0


@pytest.mark.django_db(transaction=True)
def test_exporter_retries_deliver_every_span_exactly_once(
    live_server: Any, ch: ModuleType, project: Any, project_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=live_server.url + "/v1/traces", headers={"Authorization": f"Bearer {project_key}"},
        timeout=30, compression=Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "retry-test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=16, schedule_delay_millis=50))
    tracer = provider.get_tracer("tests.exporter_retry")

    attached = threading.Event()

    def attach() -> None:
        reattach(ch, "spans")
        attached.set()

    ch.execute("DETACH TABLE spans", tag="tests.storage_down", system=True)
    timer = threading.Timer(OUTAGE_S, attach)
    timer.start()
    try:
        with caplog.at_level(logging.WARNING):
            for i in range(SPANS):
                with tracer.start_as_current_span("chat o3-mini", kind=SpanKind.CLIENT) as span:
                    span.set_attributes({
                        "gen_ai.system": "openai", "gen_ai.request.model": "o3-mini",
                        "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 50 + i,
                        "gen_ai.usage.reasoning_tokens": i,
                    })
            assert provider.force_flush(timeout_millis=90_000)
    finally:
        timer.join()
        if not attached.is_set():
            attach()
        provider.shutdown()

    retried = [r for r in caplog.records if "retrying" in r.getMessage().lower()]
    assert retried, "the exporter never saw the outage: nothing was retried"
    rows = stored_spans(project.pk, "trace_id, span_id, counted")
    assert len(rows) == SPANS  # no row twice, none missing
    assert len({(r["trace_id"], r["span_id"]) for r in rows}) == SPANS
    expected = {
        "requests": SPANS,
        "input_tokens": sum(100 + i for i in range(SPANS)),
        "output_tokens": sum(50 + i for i in range(SPANS)),
        "reasoning_tokens": sum(range(SPANS)),
    }
    for sums in (counted_sums(project.pk), rollup_sums(project.pk), rollup_sums(project.pk, "usage_daily_users")):
        assert {k: sums[k] for k in expected} == expected
