"""configure(): where its processors go, reconfiguring, turning export off."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import thinkmeter_sdk
from thinkmeter_sdk import ConfigurationError


def emit(provider: TracerProvider, name: str) -> None:
    provider.get_tracer("app").start_span(name).end()


def test_adds_to_the_provider_passed_and_leaves_the_global_one_alone() -> None:
    global_before = trace.get_tracer_provider()
    provider = TracerProvider()
    exported = InMemorySpanExporter()
    settings = thinkmeter_sdk.configure(tracer_provider=provider, exporter=exported)
    assert settings.traces_url == "http://127.0.0.1:8000/v1/traces"  # the default base URL (make run)
    with thinkmeter_sdk.context(task_type="qa"):
        emit(provider, "tagged")
    assert thinkmeter_sdk.force_flush()
    [span] = exported.get_finished_spans()
    assert span.attributes is not None and span.attributes["thinkmeter.task_type"] == "qa"
    assert trace.get_tracer_provider() is global_before


def test_configuring_again_replaces_the_previous_processors() -> None:
    provider = TracerProvider()
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    thinkmeter_sdk.configure(tracer_provider=provider, exporter=first)
    emit(provider, "one")
    thinkmeter_sdk.configure(tracer_provider=provider, exporter=second)  # flushes and retires the first
    emit(provider, "two")
    thinkmeter_sdk.force_flush()
    assert [s.name for s in first.get_finished_spans()] == ["one"]
    assert [s.name for s in second.get_finished_spans()] == ["two"]  # each span exported once


def test_shutdown_stops_exporting() -> None:
    provider = TracerProvider()
    exported = InMemorySpanExporter()
    thinkmeter_sdk.configure(tracer_provider=provider, exporter=exported)
    thinkmeter_sdk.shutdown()
    emit(provider, "after shutdown")
    assert exported.get_finished_spans() == ()


def test_sdk_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider = TracerProvider()
    exported = InMemorySpanExporter()
    settings = thinkmeter_sdk.configure(tracer_provider=provider, exporter=exported)
    assert settings.disabled
    emit(provider, "not exported")
    assert exported.get_finished_spans() == ()


def test_missing_key_raises_before_anything_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THINKMETER_API_KEY", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_HEADERS", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", raising=False)
    with pytest.raises(ConfigurationError, match="API key"):
        thinkmeter_sdk.configure(endpoint="http://127.0.0.1:8000", tracer_provider=TracerProvider())
