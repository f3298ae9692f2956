"""Price a call's tokens (pure; exact integer arithmetic, USD).

input     = (input − cache_read − cache_write) × input rate
cache     = cache_read × cache-read rate + cache_write × cache-write rate
output    = (output − reasoning) × output rate
reasoning = reasoning × reasoning rate (defaults to the output rate)
Rates are USD per million tokens with at most 6 decimals. Each part is rounded half-even
to 1e-9 USD (a nano-dollar) and the total is the sum of the rounded parts, so parts always
add up to the total. Internally everything is an integer: a rate of R USD/M tokens is
R·10⁶ pico-dollars per token, so tokens × that is exact; :func:`price_nanos` is the fast
path used at ingest and :func:`price` gives the same numbers as Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

NANO = Decimal("0.000000001")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Rates:
    price_id: int
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None

    @cached_property
    def micro(self) -> tuple[int, int, int, int, int]:
        """(input, cache_read, cache_write, output, reasoning) in micro-dollars per million tokens."""
        def m(rate: Decimal | None, default: Decimal) -> int:
            return int((rate if rate is not None else default) * 1_000_000)

        return (m(self.input, self.input), m(self.cache_read, self.input), m(self.cache_write, self.input),
                m(self.output, self.output), m(self.reasoning, self.output))


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


def _nanos(tokens: int, micro_rate: int) -> int:
    """tokens × rate, from pico-dollars to nano-dollars, rounded half to even."""
    quotient, remainder = divmod(tokens * micro_rate, 1000)
    if remainder > 500 or (remainder == 500 and quotient % 2):
        quotient += 1
    return quotient


def price_nanos(
    micro: tuple[int, int, int, int, int], input_tokens: int, cache_read: int, cache_write: int,
    output_tokens: int, reasoning: int,
) -> tuple[int, int, int, int, int]:
    """Cost parts in nano-dollars: (input, cache_read, cache_write, output_visible, reasoning)."""
    return (
        _nanos(max(input_tokens - cache_read - cache_write, 0), micro[0]),
        _nanos(cache_read, micro[1]),
        _nanos(cache_write, micro[2]),
        _nanos(max(output_tokens - reasoning, 0), micro[3]),
        _nanos(reasoning, micro[4]),
    )


def price(rates: Rates, input_tokens: int, cache_read: int, cache_write: int, output_tokens: int, reasoning: int) -> Cost:
    parts = price_nanos(rates.micro, input_tokens, cache_read, cache_write, output_tokens, reasoning)
    return Cost(*(Decimal(p) * NANO for p in parts))
