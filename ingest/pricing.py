"""Price a call's tokens (pure; Decimal arithmetic, USD).

input   = (input − cache_read − cache_write) × input rate
cache   = cache_read × cache-read rate + cache_write × cache-write rate
output  = (output − reasoning) × output rate
reasoning = reasoning × reasoning rate (defaults to the output rate)
Rates are USD per million tokens; each part is rounded to 1e-9 USD and the total is
the sum of the rounded parts, so parts always add up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

MILLION = Decimal(1_000_000)
NANO = Decimal("0.000000001")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Rates:
    price_id: int
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    input: Decimal = ZERO
    cache_read: Decimal = ZERO
    cache_write: Decimal = ZERO
    output_visible: Decimal = ZERO
    reasoning: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.input + self.cache_read + self.cache_write + self.output_visible + self.reasoning


def _part(tokens: int, rate: Decimal) -> Decimal:
    if not tokens:
        return ZERO
    return (Decimal(tokens) * rate / MILLION).quantize(NANO, rounding=ROUND_HALF_EVEN)


def price(rates: Rates, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int, reasoning: int) -> Cost:
    uncached = max(input_tokens - cache_read - cache_write, 0)
    visible = max(output_tokens - reasoning, 0)
    return Cost(
        input=_part(uncached, rates.input),
        cache_read=_part(cache_read, rates.cache_read if rates.cache_read is not None else rates.input),
        cache_write=_part(cache_write, rates.cache_write if rates.cache_write is not None else rates.input),
        output_visible=_part(visible, rates.output),
        reasoning=_part(reasoning, rates.reasoning if rates.reasoning is not None else rates.output),
    )
