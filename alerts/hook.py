"""The alert engine's hooks on the span writer (:data:`ingest.writer.hooks`).

:func:`before_insert` runs on the writer thread for every flushed batch, with the
``counted`` flags already decided: it compares the batch's counted calls with the
project's runaway thresholds held in memory (:mod:`alerts.runtime`), vectorized
(:func:`alerts.runaway.scan_table`), sets ``runaway = 1`` on the calls above them and
keeps what it found. :func:`after_insert` hands the findings to a task only once the
batch is stored, so a failed insert fires nothing. No database or ClickHouse access on
this thread; a project without runaway rules costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from alerts import runaway
from alerts.runtime import runtime

_pending = threading.local()


def before_insert(project_id: int, table: pa.Table) -> pa.Table:
    _pending.item = None
    snap = runtime.snapshot(project_id)
    if snap is None or not snap.rules:
        return table
    result = runaway.scan_table(table, snap.rules, snap.base_url)
    if not result.findings:
        return table
    table = runaway.with_runaway_flags(table, result.flagged)
    items: list[Any] = [[rule_id, finding.as_dict()] for rule_id, finding in result.findings]
    _pending.item = (project_id, items)
    return table


def after_insert(project_id: int, table: pa.Table) -> None:
    item = getattr(_pending, "item", None)
    _pending.item = None
    if item is not None and item[0] == project_id:
        runtime.dispatch(project_id, item[1])


def install() -> None:
    """Register the hooks (idempotent)."""
    from ingest.writer import hooks

    if before_insert not in hooks.before_insert:
        hooks.before_insert.append(before_insert)
    if after_insert not in hooks.after_insert:
        hooks.after_insert.append(after_insert)
