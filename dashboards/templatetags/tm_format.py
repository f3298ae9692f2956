"""Number formatting for the dashboard templates: money, counts, shares and durations.

``{% load tm_format %}`` then ``{{ value|usd }}`` ($1,234.56; $0.0123 below a dollar),
``{{ value|usd_fixed:6 }}`` (always 6 decimals), ``{{ value|num }}`` (1,234,567),
``{{ value|pct }}`` (0.123 → 12.3%), ``{{ value|ms }}`` (1234 → 1.23 s).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from dashboards.figures import money

register = template.Library()


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return None if math.isnan(number) else number


@register.filter
def usd(value: Any) -> str:
    """Dollars with thousands separators: 2 decimals from $1 up, 4 below (so small costs don't read $0.00)."""
    number = _number(value)
    if number is None:
        return "—"
    if 0 < abs(number) < 0.0001:
        return "<$0.0001" if number > 0 else "-<$0.0001"
    return money(number)


@register.filter
def usd_fixed(value: Any, places: int = 4) -> str:
    """Dollars with a fixed number of decimals (``{{ cost|usd_fixed:6 }}`` for one call's cost)."""
    number = _number(value)
    return "—" if number is None else f"${number:,.{int(places)}f}"


@register.filter
def num(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—"
    return f"{number:,.0f}" if float(number).is_integer() or abs(number) >= 100 else f"{number:,.1f}"


@register.filter
def pct(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:.1%}"


@register.filter
def ms(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—"
    if number >= 10_000:
        return f"{number / 1000:,.1f} s"
    if number >= 1000:
        return f"{number / 1000:,.2f} s"
    return f"{number:,.0f} ms"


@register.filter
def rate(value: Any) -> str:
    """A price per million tokens: at least 2 decimals, up to 4, no trailing zeros beyond 2 ($0.15, $0.075)."""
    number = _number(value)
    if number is None:
        return "—"
    text = f"{number:,.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"
