"""Helpers shared by the SDK's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
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


# -- a live Thinkmeter ------------------------------------------------------------------

@dataclass(frozen=True)
class Thinkmeter:
    """A live Thinkmeter (pytest-django's live_server) and a key of its project "acme"."""

    url: str
    key: str
    project_id: int

    def get(self, path: str, **query: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def usage(self, group_by: str = "task_type,tier") -> dict[tuple[Any, ...], dict[str, Any]]:
        """``GET /api/v1/usage?group_by=...`` rows by their dimension values."""
        dimensions = group_by.split(",")
        rows = self.get("usage", group_by=group_by)["rows"]
        return {tuple(row[d] for d in dimensions): row for row in rows}


@dataclass(frozen=True)
class Call:
    """What one provider call should add to the usage API (tokens, and its price in USD)."""

    model: str  # the shipped catalog's entry
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int

    def cost(self) -> dict[str, Decimal]:
        """The four parts of DESIGN.md §5, from the catalog's rates (USD per million tokens)."""
        rates = catalog_rates(self.model)
        million = Decimal(1_000_000)
        input_rate, output_rate = rates["input"], rates["output"]
        assert input_rate is not None and output_rate is not None

        def rate(name: str, default: Decimal) -> Decimal:
            value = rates[name]
            return value if value is not None else default

        return {
            "cost_input_usd": (self.input_tokens - self.cache_read_tokens - self.cache_write_tokens)
            * input_rate / million,
            "cost_cache_usd": (self.cache_read_tokens * rate("cache_read", input_rate)
                               + self.cache_write_tokens * rate("cache_write", input_rate)) / million,
            "cost_output_usd": (self.output_tokens - self.reasoning_tokens) * output_rate / million,
            "cost_reasoning_usd": self.reasoning_tokens * rate("reasoning", output_rate) / million,
        }


def catalog_rates(model: str) -> dict[str, Decimal | None]:
    """Today's rates of a model in the shipped catalog file."""
    from ingest import catalog_loader

    entry = next(m for m in catalog_loader.read()["models"] if m["model"] == model)
    today = date.today()
    period = next(p for p in entry["prices"]
                  if date.fromisoformat(p["effective_from"]) <= today
                  and (p["effective_to"] is None or today < date.fromisoformat(p["effective_to"])))
    return {k: None if period[k] in (None, "") else Decimal(str(period[k]))
            for k in ("input", "cache_read", "cache_write", "output", "reasoning")}


def expected_row(calls: list[Call]) -> dict[str, Any]:
    """The usage API row that these calls add up to (money as 9-decimal strings)."""
    row: dict[str, Any] = {"requests": len(calls)}
    for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
        row[name] = sum(getattr(c, name) for c in calls)
    row["visible_output_tokens"] = row["output_tokens"] - row["reasoning_tokens"]
    parts: dict[str, Decimal] = {}
    for call in calls:
        for name, value in call.cost().items():
            parts[name] = parts.get(name, Decimal(0)) + value
    nano = Decimal("0.000000001")
    for name, value in parts.items():
        row[name] = format(value.quantize(nano), "f")
    row["cost_usd"] = format(sum(parts.values(), Decimal(0)).quantize(nano), "f")
    return row


def measures(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
            "reasoning_tokens", "visible_output_tokens", "cost_usd", "cost_input_usd", "cost_cache_usd",
            "cost_output_usd", "cost_reasoning_usd")
    return {k: row[k] for k in keys}
