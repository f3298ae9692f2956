"""``configure()``: send this process's spans to Thinkmeter.

It adds two span processors to a TracerProvider: :class:`ContextSpanProcessor` (stamps
the ``context(...)`` tags on every span) and a ``BatchSpanProcessor`` with the OTLP/HTTP
exporter (protobuf, gzip, ``Authorization: Bearer <key>``; batching as the standard
``OTEL_BSP_*`` variables say). The provider is, in this order: the one passed as
``tracer_provider=``; the application's global SDK TracerProvider when it already has
one (kept, not replaced: its other processors go on working); else a new one, made
global, with a resource from ``service_name=`` / ``OTEL_SERVICE_NAME`` /
``OTEL_RESOURCE_ATTRIBUTES``.

Calling ``configure()`` again retires the processors of the previous call (flushing
them) before adding new ones, so nothing is exported twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from thinkmeter_sdk import _state
from thinkmeter_sdk._log import logger
from thinkmeter_sdk.settings import Settings, resolve
from thinkmeter_sdk.tagging import ContextSpanProcessor


class _Retirable(SpanProcessor):
    """A processor that a later ``configure()`` can switch off (providers cannot remove one)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.active = True

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.active:
            self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        if self.active:
            self.active = False
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.active else True


def make_exporter(settings: Settings) -> SpanExporter:
    """The OTLP/HTTP exporter for these settings (gzip unless OTEL_EXPORTER_OTLP_*COMPRESSION says)."""
    import os

    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = None
    if not (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") or os.environ.get("OTEL_EXPORTER_OTLP_COMPRESSION")):
        compression = Compression.Gzip
    return OTLPSpanExporter(endpoint=settings.traces_url, headers=dict(settings.headers), compression=compression)


def configure(
    endpoint: str | None = None,
    api_key: str | None = None,
    service_name: str | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    exporter: SpanExporter | None = None,
) -> Settings:
    """Send spans to Thinkmeter; returns the settings used.

    ``endpoint`` is Thinkmeter's base URL (``http://127.0.0.1:8000``; ``/v1/traces`` is
    added). ``exporter`` replaces the OTLP exporter (tests, or a custom transport).
    Raises :class:`~thinkmeter_sdk.settings.ConfigurationError` for settings that
    cannot work, such as a missing key.
    """
    settings = resolve(endpoint, api_key, service_name, capture_content, require_key=exporter is None)
    shutdown()
    _state.current.settings = settings
    if settings.disabled:
        logger.info("OTEL_SDK_DISABLED is set: thinkmeter_sdk exports nothing")
        return settings

    provider = tracer_provider
    created = False
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            attributes: dict[str, str] = dict(resource_attributes or {})
            if settings.service_name:
                attributes[SERVICE_NAME] = settings.service_name
            provider = TracerProvider(resource=Resource.create(attributes))
            trace.set_tracer_provider(provider)
            created = True
            if trace.get_tracer_provider() is not provider:  # someone else won the race
                provider = trace.get_tracer_provider()  # type: ignore[assignment]
                created = False
    elif settings.service_name or resource_attributes:
        logger.info("thinkmeter_sdk: service_name/resource_attributes are ignored for a provider passed in; "
                    "its own resource is kept")

    processors: list[SpanProcessor] = [
        _Retirable(ContextSpanProcessor()),
        _Retirable(BatchSpanProcessor(exporter or make_exporter(settings))),
    ]
    assert provider is not None
    for processor in processors:
        provider.add_span_processor(processor)
    _state.current.provider = provider
    _state.current.processors = processors
    _state.current.created_provider = created
    logger.debug("thinkmeter_sdk exports to %s (from %s)", settings.traces_url, settings.source)
    return settings


def force_flush(timeout_millis: int = 30000) -> bool:
    """Export every finished span now (before a short-lived process exits)."""
    return all(p.force_flush(timeout_millis) for p in _state.current.processors)


def shutdown() -> None:
    """Flush and retire what ``configure()`` added (the provider itself is left to its owner)."""
    processors, _state.current.processors = _state.current.processors, []
    for processor in processors:
        try:
            processor.shutdown()
        except Exception:  # pragma: no cover - an exporter failing to shut down must not raise here
            logger.warning("thinkmeter_sdk: a span processor failed to shut down", exc_info=True)
    _state.current.provider = None
