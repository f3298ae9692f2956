"""What ``configure()`` set up, shared by the other modules (one per process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

from thinkmeter_sdk.settings import Settings

VERSION = "0.1.0"
SCOPE = "thinkmeter_sdk"


@dataclass
class State:
    settings: Settings | None = None
    provider: trace.TracerProvider | None = None
    processors: list[SpanProcessor] = field(default_factory=list)
    created_provider: bool = False


current = State()


def provider() -> trace.TracerProvider:
    """The provider ``configure()`` used, else the global one."""
    return current.provider or trace.get_tracer_provider()


_tracers: dict[int, tuple[trace.TracerProvider, trace.Tracer]] = {}


def tracer(tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """Our tracer on ``tracer_provider`` (default: :func:`provider`), made once per provider."""
    chosen = tracer_provider or provider()
    cached = _tracers.get(id(chosen))
    if cached is None or cached[0] is not chosen:
        cached = (chosen, chosen.get_tracer(SCOPE, VERSION))
        _tracers[id(chosen)] = cached
    return cached[1]
