"""Pricing a call's tokens (ingest.pricing) and the prices stored at ingest.

The four parts (uncached input, cache reads + writes, visible output, reasoning) add up
to cost_total exactly in Decimal; reasoning is priced at the reasoning rate, which
defaults to the output rate; cache read and write rates default to the input rate.
Checked against an independent Decimal computation (with Hypothesis), and end to end:
catalog entries with empty rates, effective dates, and the stored columns and rollups.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from types import ModuleType
from typing import Any

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.pricing import Rates, price
from tests.ingest.otlp_builders import (
    make_request,
    post_otlp,
    rollup_sums,
    span_dict,
    start_ns_of,
    stored_spans,
)

NANO = Decimal("0.000000001")


def reference(tokens: int, rate: Decimal) -> Decimal:
    """tokens × rate (USD per million tokens), rounded half-even to a nano-dollar."""
    with localcontext() as context:
        context.prec = 60
        return (Decimal(tokens) * rate / Decimal(1_000_000)).quantize(NANO, rounding=ROUND_HALF_EVEN)


def rate(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# --- pure pricing ------------------------------------------------------------------------


def test_a_reasoning_call_priced_part_by_part() -> None:
    """o3-mini list prices: $1.10 input, $0.55 cached input, $4.40 output (reasoning = output)."""
    rates = Rates(price_id=1, input=Decimal("1.10"), output=Decimal("4.40"), cache_read=Decimal("0.55"))
    cost = price(rates, input_tokens=1200, cache_read=1000, cache_write=0, output_tokens=900, reasoning=640)
    assert cost.input == Decimal("0.000220000")  # 200 uncached × 1.10 / 1M
    assert cost.cache_read == Decimal("0.000550000")
    assert cost.cache_write == 0
    assert cost.output_visible == Decimal("0.001144000")  # 260 visible × 4.40 / 1M
    assert cost.reasoning == Decimal("0.002816000")  # 640 × 4.40 / 1M
    assert cost.total == Decimal("0.004730000")


def test_reasoning_is_priced_at_its_own_rate_when_set() -> None:
    rates = Rates(price_id=1, input=Decimal("1"), output=Decimal("4"), reasoning=Decimal("8"))
    cost = price(rates, 0, 0, 0, output_tokens=1000, reasoning=600)
    assert (cost.output_visible, cost.reasoning) == (Decimal("0.0016"), Decimal("0.0048"))


def test_reasoning_rate_defaults_to_the_output_rate() -> None:
    rates = Rates(price_id=1, input=Decimal("1"), output=Decimal("4"))
    cost = price(rates, 0, 0, 0, output_tokens=1000, reasoning=600)
    assert (cost.output_visible, cost.reasoning) == (Decimal("0.0016"), Decimal("0.0024"))


def test_cache_rates_default_to_the_input_rate() -> None:
    rates = Rates(price_id=1, input=Decimal("3"), output=Decimal("15"))
    cost = price(rates, input_tokens=10_000, cache_read=6000, cache_write=3000, output_tokens=0, reasoning=0)
    assert (cost.input, cost.cache_read, cost.cache_write) == (Decimal("0.003"), Decimal("0.018"), Decimal("0.009"))


def test_explicit_cache_rates_are_used() -> None:
    rates = Rates(price_id=1, input=Decimal("3"), output=Decimal("15"), cache_read=Decimal("0.30"),
                  cache_write=Decimal("3.75"))
    cost = price(rates, input_tokens=10_000, cache_read=6000, cache_write=3000, output_tokens=0, reasoning=0)
    assert (cost.input, cost.cache_read, cost.cache_write) == (Decimal("0.003"), Decimal("0.0018"),
                                                               Decimal("0.01125"))


@pytest.mark.parametrize(("tokens", "nanos"), [(1, 0), (2, 1), (3, 2), (5, 2), (7, 4)])
def test_parts_are_rounded_half_even_to_a_nano_dollar(tokens: int, nanos: int) -> None:
    """$0.0005/M: one token is half a nano-dollar."""
    rates = Rates(price_id=1, input=Decimal("0.0005"), output=Decimal("0.0005"))
    assert price(rates, tokens, 0, 0, 0, 0).input == Decimal(nanos) * NANO


def test_inconsistent_counts_never_give_negative_parts() -> None:
    rates = Rates(price_id=1, input=Decimal("1"), output=Decimal("2"))
    cost = price(rates, input_tokens=10, cache_read=50, cache_write=0, output_tokens=5, reasoning=20)
    assert min(cost.input, cost.cache_read, cost.cache_write, cost.output_visible, cost.reasoning) >= 0


def test_no_tokens_cost_nothing() -> None:
    cost = price(Rates(price_id=1, input=Decimal("5"), output=Decimal("15")), 0, 0, 0, 0, 0)
    assert cost.total == 0


RATE_TEXT = st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=6, allow_nan=False,
                        allow_infinity=False).map(str)
TOKENS = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=150, deadline=None)
@given(
    input_rate=RATE_TEXT, output_rate=RATE_TEXT, cache_read_rate=st.none() | RATE_TEXT,
    cache_write_rate=st.none() | RATE_TEXT, reasoning_rate=st.none() | RATE_TEXT,
    cache_read=TOKENS, cache_write=TOKENS, uncached=TOKENS, reasoning=TOKENS, visible=TOKENS,
)
def test_parts_match_decimal_arithmetic_and_add_up_exactly(
    input_rate: str, output_rate: str, cache_read_rate: str | None, cache_write_rate: str | None,
    reasoning_rate: str | None, cache_read: int, cache_write: int, uncached: int, reasoning: int, visible: int,
) -> None:
    rates = Rates(price_id=1, input=Decimal(input_rate), output=Decimal(output_rate), cache_read=rate(cache_read_rate),
                  cache_write=rate(cache_write_rate), reasoning=rate(reasoning_rate))
    cost = price(rates, uncached + cache_read + cache_write, cache_read, cache_write, visible + reasoning, reasoning)
    assert cost.input == reference(uncached, rates.input)
    assert cost.cache_read == reference(cache_read, rates.cache_read if rates.cache_read is not None else rates.input)
    assert cost.cache_write == reference(cache_write,
                                         rates.cache_write if rates.cache_write is not None else rates.input)
    assert cost.output_visible == reference(visible, rates.output)
    assert cost.reasoning == reference(reasoning, rates.reasoning if rates.reasoning is not None else rates.output)
    parts = (cost.input, cost.cache_read, cost.cache_write, cost.output_visible, cost.reasoning)
    assert all(isinstance(p, Decimal) and p == p.quantize(NANO) for p in parts)
    assert sum(parts, Decimal(0)) == cost.total


# --- catalog entries priced at ingest ---------------------------------------------------


@pytest.fixture
def fresh_catalog() -> Iterator[None]:
    """Overrides created here roll back without signals: forget the snapshot around each test."""
    from ingest import catalog

    catalog.invalidate()
    yield
    catalog.invalidate()


def override(project: Any, model: str, periods: list[dict[str, Any]], provider: str = "acme", tier: int = 1) -> Any:
    from ingest.models import ModelPrice, PriceRate

    entry = ModelPrice.objects.create(project=project, model=model, provider=provider, pattern=f"^{model}$",
                                      tier=tier)
    for period in periods:
        PriceRate.objects.create(model_price=entry, **period)
    return entry


def call(model: str, start: datetime | None = None, /, **usage: int) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": usage["input"],
                                  "gen_ai.usage.output_tokens": usage["output"]}
    if usage.get("reasoning"):
        attributes["gen_ai.usage.reasoning_tokens"] = usage["reasoning"]
    if usage.get("cache_read"):
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage["cache_read"]
    if usage.get("cache_write"):
        attributes["gen_ai.usage.cache_write.input_tokens"] = usage["cache_write"]
    return span_dict(attributes=attributes, start_ns=start_ns_of(start) if start else None)


COST_COLUMNS = "cost_input, cost_cache_read, cost_cache_write, cost_output_visible, cost_reasoning, cost_total"


@pytest.mark.django_db
def test_empty_catalog_rates_fall_back_and_stored_parts_add_up(
    client: Client, ch: ModuleType, project: Any, project_key: str, fresh_catalog: None
) -> None:
    entry = override(project, "house-reasoner", [{
        "effective_from": date(2020, 1, 1), "input": Decimal("2.000000"), "output": Decimal("8.000000"),
        "cache_read": None, "cache_write": None, "reasoning": None,
    }])
    usage = {"input": 10_000, "cache_read": 4000, "cache_write": 1000, "output": 3000, "reasoning": 2500}
    post_otlp(client, make_request([call("house-reasoner", **usage)]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, f"provider, tier, priced, price_id, {COST_COLUMNS}")
    assert (row["provider"], row["tier"], row["priced"]) == ("acme", 1, True)  # provider and tier from the catalog
    assert row["price_id"] == entry.rates.get().pk
    assert row["cost_input"] == Decimal("0.010")  # 5000 uncached × $2
    assert row["cost_cache_read"] == Decimal("0.008")  # 4000 × $2 (input rate)
    assert row["cost_cache_write"] == Decimal("0.002")  # 1000 × $2 (input rate)
    assert row["cost_output_visible"] == Decimal("0.004")  # 500 × $8
    assert row["cost_reasoning"] == Decimal("0.020")  # 2500 × $8 (output rate)
    parts = [row[c] for c in COST_COLUMNS.split(", ")[:-1]]
    assert sum(parts) == row["cost_total"] == Decimal("0.044")


@pytest.mark.django_db
def test_a_separate_reasoning_rate_is_used_at_ingest(
    client: Client, ch: ModuleType, project: Any, project_key: str, fresh_catalog: None
) -> None:
    override(project, "house-thinker", [{
        "effective_from": date(2020, 1, 1), "input": Decimal("1"), "output": Decimal("4"),
        "cache_read": Decimal("0.1"), "cache_write": Decimal("1.25"), "reasoning": Decimal("6"),
    }])
    usage = {"input": 2000, "cache_read": 1000, "cache_write": 0, "output": 1000, "reasoning": 900}
    post_otlp(client, make_request([call("house-thinker", **usage)]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, COST_COLUMNS)
    assert row["cost_reasoning"] == Decimal("0.0054")  # 900 × $6
    assert row["cost_output_visible"] == Decimal("0.0004")  # 100 × $4
    assert row["cost_cache_read"] == Decimal("0.0001")
    assert row["cost_total"] == Decimal("0.0069")


@pytest.mark.django_db
def test_prices_are_effective_dated_by_the_span_start(
    client: Client, ch: ModuleType, project: Any, project_key: str, fresh_catalog: None
) -> None:
    today = datetime.now(UTC).date()
    change = today - timedelta(days=10)
    override(project, "house-dated", [
        {"effective_from": today - timedelta(days=100), "effective_to": change, "input": Decimal("1"),
         "output": Decimal("2")},
        {"effective_from": change, "input": Decimal("3"), "output": Decimal("6")},
    ])
    before = datetime.now(UTC) - timedelta(days=30)
    spans = [call("house-dated", before, input=1_000_000, output=0), call("house-dated", input=1_000_000, output=0)]
    post_otlp(client, make_request(spans).SerializeToString(), project_key)
    costs = [r["cost_total"] for r in stored_spans(project.pk, "cost_total")]  # ordered by start time
    assert costs == [Decimal("1"), Decimal("3")]


@pytest.mark.django_db
def test_a_span_before_any_price_is_unpriced(
    client: Client, ch: ModuleType, project: Any, project_key: str, fresh_catalog: None
) -> None:
    override(project, "house-new", [{"effective_from": datetime.now(UTC).date() + timedelta(days=5),
                                     "input": Decimal("1"), "output": Decimal("2")}])
    post_otlp(client, make_request([call("house-new", input=100, output=10)]).SerializeToString(), project_key)
    (row,) = stored_spans(project.pk, "priced, cost_total, provider")
    assert (row["priced"], row["cost_total"], row["provider"]) == (False, 0, "acme")


@pytest.mark.django_db
def test_rollup_costs_are_the_exact_sum_of_stored_parts(
    client: Client, ch: ModuleType, project: Any, project_key: str
) -> None:
    """Default catalog, several models and shapes: per-span parts and the rollup agree to the nano-dollar."""
    spans = [
        call("o3-mini", input=12_345, cache_read=4096, output=7777, reasoning=5555),
        call("claude-sonnet-4-5", input=33_333, cache_read=20_000, cache_write=3333, output=999),
        call("gpt-4o-mini", input=17, output=3),
        call("gemini-2.5-pro", input=1001, output=2003, reasoning=1500),
    ]
    post_otlp(client, make_request(spans).SerializeToString(), project_key)
    rows = stored_spans(project.pk, f"priced, {COST_COLUMNS}")
    assert all(r["priced"] for r in rows)
    for row in rows:
        assert sum(row[c] for c in COST_COLUMNS.split(", ")[:-1]) == row["cost_total"]
    hourly = rollup_sums(project.pk)
    for column in COST_COLUMNS.split(", "):
        assert hourly[column] == sum(r[column] for r in rows), column
