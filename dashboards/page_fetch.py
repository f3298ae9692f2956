"""Everything the Finance and Engineering pages show, fetched side by side.

A page's data calls (:mod:`dashboards.page_data`) are mostly independent statements.
:func:`gather` runs them on a small thread pool: chdb releases the GIL while a statement
runs and the transport keeps a pool of connections, so the statements of one page
overlap on the machine's cores instead of queueing. The calls must not touch the Django
database (each thread would open its own connection, which cannot see the caller's
transaction): whatever they need from it, such as project slugs, is passed in.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from dashboards import page_data, server_timing
from dashboards.page_filters import PageFilters

WORKERS = 3  # the transport's chdb pool holds 4 connections; the machine may have 2 cores
RUNAWAY_ROWS = 25

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="page-data")
        return _executor


def gather(calls: Mapping[str, Callable[[], Any] | None]) -> dict[str, Any]:
    """Run the calls side by side; their results by name (None for a call that is None).

    The first failure is raised once every call has finished. Calls must not gather
    themselves (the pool is shared and bounded). Each call's time goes to the page's
    ``Server-Timing`` as ``data.<name>`` (:mod:`dashboards.server_timing`).
    """
    futures: dict[str, Future[tuple[Any, float]]] = {
        name: _pool().submit(contextvars.copy_context().run, _timed, call) for name, call in calls.items() if call}
    results: dict[str, Any] = {name: None for name in calls}
    errors: list[BaseException] = []
    timing = server_timing.current()
    for name, future in futures.items():
        try:
            results[name], seconds = future.result()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others finished
            errors.append(exc)
            continue
        if timing is not None:
            timing.add(f"data.{name}", seconds)
    if errors:
        raise errors[0]
    return results


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    return call(), time.perf_counter() - started


@dataclass(frozen=True)
class FinancePage:
    options: dict[str, list[str]]  # filter select values (page_data.filter_options)
    by: dict[str, pd.DataFrame]  # spend by project, tier, model and task type (page_data.breakdowns)
    month: page_data.MonthSpend
    unpriced: int
    over_time: pd.DataFrame
    top_users: pd.DataFrame | None  # None without users whose drill-down the viewer may see


def finance_page(ids: Sequence[int], pf: PageFilters, now: datetime, *, names: dict[str, str],
                 slugs: Mapping[int, str], user_ids: Sequence[int]) -> FinancePage:
    """The Finance page's data for projects ``ids`` (top users over ``user_ids`` only)."""
    got = gather({
        "options": lambda: page_data.filter_options_and_unpriced(ids, pf),
        "by": lambda: page_data.breakdowns(ids, pf, names, slugs=slugs),
        "month": lambda: page_data.month_spend(ids, pf, now),
        "over_time": lambda: page_data.spend_over_time(ids, pf),
        "top_users": (lambda: page_data.top_users(user_ids, pf)) if user_ids else None,
    })
    options, unpriced = got.pop("options")
    return FinancePage(options=options, unpriced=unpriced, **got)


@dataclass(frozen=True)
class EngineeringPage:
    options: dict[str, list[str]]
    totals: dict[str, float]
    distribution: pd.DataFrame | None  # the per-call statistics: None when the view has no calls
    latency: pd.DataFrame | None
    escalation: pd.DataFrame | None
    quality: pd.DataFrame | None
    budget: pd.DataFrame | None
    runaways: list[dict[str, Any]] | None  # None without projects whose traces the viewer may see


def _per_call(ids: Sequence[int], pf: PageFilters) -> dict[str, Any]:
    """The totals, then (when there are calls) the statistics of one call sample sized by them."""
    totals = page_data.totals(ids, pf)
    if not totals.get("requests"):
        return {"totals": totals}
    with server_timing.measure("data.call_sample"):
        calls = page_data.call_sample(ids, pf, total=int(totals["requests"]))
    with server_timing.measure("data.call_statistics"):
        return {
            "totals": totals,
            "distribution": page_data.reasoning_distribution(ids, pf, calls),
            "latency": page_data.latency_by_tier(ids, pf, calls),
            "escalation": page_data.escalation(ids, pf, calls),
            "quality": page_data.quality_points(ids, pf, calls=calls),
            "budget": page_data.budget_used(ids, pf, calls),
        }


def engineering_page(ids: Sequence[int], pf: PageFilters, *, slugs: Mapping[int, str],
                     trace_ids: Sequence[int]) -> EngineeringPage:
    """The Engineering page's data for projects ``ids`` (runaway traces of ``trace_ids`` only)."""
    got = gather({
        "options": lambda: page_data.filter_options(ids, pf),
        "per_call": lambda: _per_call(ids, pf) if ids else {"totals": {}},
        "runaways": (lambda: page_data.runaway_traces(trace_ids, pf, RUNAWAY_ROWS, slugs=slugs)) if trace_ids
        else None,
    })
    per_call = got["per_call"]
    return EngineeringPage(
        options=got["options"], totals=per_call["totals"], distribution=per_call.get("distribution"),
        latency=per_call.get("latency"), escalation=per_call.get("escalation"), quality=per_call.get("quality"),
        budget=per_call.get("budget"), runaways=got["runaways"],
    )
