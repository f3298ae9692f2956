"""``budget_for()``: the thinking budget Thinkmeter recommends for a task class.

Reads ``GET /api/v1/budgets?window=7d`` (one row per task type × tier and per task type
alone, ``tier`` null, each with ``recommended_thinking_budget``: the smallest budget whose
mean quality is within tolerance of the best, or null without enough scored calls) and
keeps the answer for ``ttl`` seconds (default 300). When Thinkmeter cannot be reached or
answers with an error, ``default`` is returned and the failure is remembered for
``failure_ttl`` seconds (default 30) so that a dead server costs one timeout per
period, not one per call; a table fetched earlier keeps being used meanwhile.

Lookup: the (task type, tier) row's recommendation, else the task type's over all tiers,
else ``default``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thinkmeter_sdk._log import log_once
from thinkmeter_sdk.api_client import ThinkmeterError, request_json, settings
from thinkmeter_sdk.tagging import TASK_TYPE, TIER, current_attributes

Table = dict[tuple[str, int | None], int]


def parse_budgets(body: Any) -> Table:
    """The recommendations of a ``/api/v1/budgets`` answer, by (task type, tier or None)."""
    if not isinstance(body, dict) or not isinstance(body.get("classes"), list):
        raise ThinkmeterError("unexpected /api/v1/budgets answer: no 'classes' list")
    table: Table = {}
    for row in body["classes"]:
        if not isinstance(row, dict):
            continue
        task_type, tier, budget = row.get("task_type"), row.get("tier"), row.get("recommended_thinking_budget")
        if isinstance(task_type, str) and isinstance(budget, int) and (tier is None or isinstance(tier, int)):
            table[(task_type, tier)] = budget
    return table


@dataclass
class _Entry:
    table: Table | None  # None: never fetched successfully
    fresh_until: float


class BudgetCache:
    """Recommendations per (base URL, key, window), refreshed after ``ttl`` seconds."""

    def __init__(self, ttl: float = 300.0, failure_ttl: float = 30.0, timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()

    def table(self, window: str) -> Table | None:
        config = settings()
        key = (config.api_url, config.api_key, window)
        entry = self._entries.get(key)
        if entry is not None and self.clock() < entry.fresh_until:
            return entry.table
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self.clock() < entry.fresh_until:
                return entry.table
            self.fetches += 1
            try:
                table = parse_budgets(request_json("GET", "budgets", query={"window": window},
                                                   timeout=self.timeout, config=config))
            except ThinkmeterError as exc:
                log_once(f"budgets:{exc.status}", "thinkmeter_sdk: budget_for() uses defaults: %s", exc,
                         exc_info=False)
                previous = entry.table if entry is not None else None
                self._entries[key] = _Entry(previous, self.clock() + self.failure_ttl)
                return previous
            self._entries[key] = _Entry(table, self.clock() + self.ttl)
            return table

    def clear(self) -> None:
        """Forget every table (and the fetch count)."""
        with self._lock:
            self._entries.clear()
            self.fetches = 0


cache = BudgetCache()


def budget_for(task_type: str | None = None, *, default: int, tier: int | None = None, window: str = "7d") -> int:
    """The recommended thinking budget (tokens) for ``task_type`` at ``tier``, else ``default``.

    ``task_type`` and ``tier`` default to those of the enclosing ``thinkmeter_sdk.context``.
    """
    tags = current_attributes()
    if task_type is None:
        tagged = tags.get(TASK_TYPE)
        task_type = tagged if isinstance(tagged, str) else None
    if not task_type:
        raise ValueError("budget_for() needs a task_type (or an enclosing thinkmeter_sdk.context(task_type=...))")
    if tier is None:
        tagged_tier = tags.get(TIER)
        tier = tagged_tier if isinstance(tagged_tier, int) else None
    if isinstance(default, bool) or not isinstance(default, int) or default < 0:
        raise ValueError(f"default must be a non-negative number of tokens, not {default!r}")
    table = cache.table(window)
    if not table:
        return default
    if tier is not None and (task_type, tier) in table:
        return table[(task_type, tier)]
    return table.get((task_type, None), default)
