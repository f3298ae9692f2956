"""In-memory snapshot of the pricing catalog, for pricing at ingest without a query per span.

``lookup(project_id, model, day)`` returns the matching catalog entry and its rates in
effect that day (per-project overrides first, then the global catalog, each in
``position`` order; the first pattern that matches wins). The snapshot reloads when
a price changes (signals bump a version in the cache, so every process notices within
a few seconds) and at least every five minutes.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.cache import cache

from ingest.pricing import Rates

VERSION_KEY = "thinkmeter:catalog-version"
CHECK_EVERY_S = 5.0
MAX_AGE_S = 300.0


@dataclass(frozen=True, slots=True)
class RatePeriod:
    start: date
    end: date | None
    rates: Rates


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    project_id: int | None
    model: str
    provider: str
    tier: int
    reasoning: bool
    pattern: re.Pattern[str]
    periods: tuple[RatePeriod, ...]

    def rates_on(self, day: date) -> Rates | None:
        for period in self.periods:
            if period.start <= day and (period.end is None or day < period.end):
                return period.rates
        return None


class Catalog:
    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._match_cache: dict[tuple[int, str], Entry | None] = {}
        self._loaded_at = 0.0
        self._checked_at = 0.0
        self._version: object = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        from ingest.models import ModelPrice

        entries = []
        for mp in ModelPrice.objects.prefetch_related("rates").order_by("position", "id"):
            periods = tuple(
                RatePeriod(
                    start=r.effective_from,
                    end=r.effective_to,
                    rates=Rates(
                        price_id=r.pk,
                        input=Decimal(r.input),
                        output=Decimal(r.output),
                        cache_read=r.cache_read,
                        cache_write=r.cache_write,
                        reasoning=r.reasoning,
                    ),
                )
                for r in mp.rates.all()
            )
            try:
                pattern = re.compile(mp.pattern, re.IGNORECASE)
            except re.error:
                continue
            entries.append(Entry(mp.pk, mp.project_id, mp.model, mp.provider, mp.tier, mp.reasoning, pattern, periods))
        self._entries = entries
        self._match_cache = {}
        self._loaded_at = time.monotonic()

    def _fresh(self) -> None:
        now = time.monotonic()
        if self._loaded_at and now - self._checked_at < CHECK_EVERY_S:
            return
        with self._lock:
            if self._loaded_at and now - self._checked_at < CHECK_EVERY_S:
                return
            self._checked_at = now
            version = cache.get(VERSION_KEY)
            if not self._loaded_at or version != self._version or now - self._loaded_at > MAX_AGE_S:
                self._version = version
                self._load()

    def match(self, project_id: int, model: str) -> Entry | None:
        self._fresh()
        key = (project_id, model)
        try:
            return self._match_cache[key]
        except KeyError:
            pass
        name = model.lower()
        found = None
        for wanted in (project_id, None):
            for entry in self._entries:
                if entry.project_id == wanted and entry.pattern.search(name):
                    found = entry
                    break
            if found:
                break
        if len(self._match_cache) > 100_000:
            self._match_cache.clear()
        self._match_cache[key] = found
        return found

    def entries(self) -> list[Entry]:
        self._fresh()
        return list(self._entries)


catalog = Catalog()


def invalidate() -> None:
    """Make every process reload the catalog (called when prices change)."""
    cache.set(VERSION_KEY, time.time(), None)
    catalog._checked_at = 0.0
    catalog._loaded_at = 0.0  # this process reloads on next use, whatever the shared cache says
