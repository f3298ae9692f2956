"""Helpers shared by the SDK's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk


class Spans:
    """A TracerProvider of the test's own (never the global one), recording finished spans."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(thinkmeter_sdk.ContextSpanProcessor())
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def finished(self, scope: str | None = "thinkmeter_sdk") -> list[Any]:
        spans = self.exporter.get_finished_spans()
        if scope is None:
            return list(spans)
        return [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == scope]

    def one(self, scope: str | None = "thinkmeter_sdk") -> Any:
        spans = self.finished(scope)
        assert len(spans) == 1, [(s.name, s.instrumentation_scope.name) for s in self.finished(None)]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


def openai_client(provider: FakeProvider, asynchronous: bool = False) -> Any:
    import openai

    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=provider.base_url + "/v1", api_key="sk-test", max_retries=0)


def anthropic_client(provider: FakeProvider, asynchronous: bool = False, tracer_provider: Any = None) -> Any:
    """An Anthropic client; its own spans go to ``tracer_provider`` (default: none at all)."""
    import anthropic

    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    telemetry: Any = {"tracer_provider": tracer_provider} if tracer_provider is not None else False
    return cls(base_url=provider.base_url, api_key="sk-ant-test", max_retries=0, open_telemetry=telemetry)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
