"""score(): a verifier's verdict reaches a live Thinkmeter's /api/v1/scores."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import thinkmeter_sdk

from sdk_support import Thinkmeter, closed_port

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_score_is_stored_and_read_back(thinkmeter: Thinkmeter) -> None:
    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key=thinkmeter.key, tracer_provider=TracerProvider())
    stored = thinkmeter_sdk.score(trace_id=TRACE.upper(), name="quality", value=0.75, comment="unit tests pass")
    assert stored is not None
    assert {k: stored[k] for k in ("project", "trace_id", "span_id", "name", "value", "source", "comment")} == {
        "project": "acme", "trace_id": TRACE, "span_id": "", "name": "quality", "value": 0.75, "source": "sdk",
        "comment": "unit tests pass"}
    thinkmeter_sdk.score(trace_id=int(TRACE, 16), span_id=0x00F067AA0BA902B7, name="latency_ms", value=1234)
    back = thinkmeter.get("scores", trace_id=TRACE)["results"]
    assert sorted((r["name"], r["span_id"], r["value"]) for r in back) == [
        ("latency_ms", "00f067aa0ba902b7", 1234.0), ("quality", "", 0.75)]


def test_trace_id_defaults_to_the_current_span(thinkmeter: Thinkmeter) -> None:
    provider = TracerProvider()
    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key=thinkmeter.key, tracer_provider=provider,
                             exporter=InMemorySpanExporter())
    with thinkmeter_sdk.context(task_type="qa", span_name="answer") as request:
        trace_id = request.trace_id
        stored = thinkmeter_sdk.score(value=1.0)
    assert trace_id is not None
    assert stored is not None and stored["trace_id"] == trace_id


def test_errors_from_thinkmeter(thinkmeter: Thinkmeter, caplog: pytest.LogCaptureFixture) -> None:
    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key="tm_wrong", tracer_provider=TracerProvider())
    with caplog.at_level(logging.WARNING, logger="thinkmeter_sdk"):
        assert thinkmeter_sdk.score(trace_id=TRACE, value=0.5) is None
    assert "HTTP 401" in caplog.text
    with pytest.raises(thinkmeter_sdk.ThinkmeterError) as raised:
        thinkmeter_sdk.score(trace_id=TRACE, value=0.5, raise_errors=True)
    assert raised.value.status == 401


def test_unreachable_thinkmeter() -> None:
    thinkmeter_sdk.configure(endpoint=f"http://127.0.0.1:{closed_port()}", api_key="k",
                             tracer_provider=TracerProvider())
    assert thinkmeter_sdk.score(trace_id=TRACE, value=0.5) is None
    with pytest.raises(thinkmeter_sdk.ThinkmeterError, match=r"127\.0\.0\.1"):
        thinkmeter_sdk.score(trace_id=TRACE, value=0.5, raise_errors=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"trace_id": "xyz", "value": 1}, "trace_id"),
    ({"trace_id": 0, "value": 1}, "trace_id"),
    ({"trace_id": TRACE, "span_id": "123", "value": 1}, "span_id"),
    ({"trace_id": TRACE, "value": 1.5}, "between 0 and 1"),
    ({"trace_id": TRACE, "value": float("nan")}, "finite"),
    ({"trace_id": TRACE, "value": 3, "name": "bad name!"}, "name"),
    ({"value": 1}, "outside a span"),
])
def test_bad_arguments_fail_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thinkmeter_sdk.score(**kwargs)
