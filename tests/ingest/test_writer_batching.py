"""The ingest fast paths keep their promises: group commit with a linger window, and
batch-shared catalog look-ups that price exactly like a per-span look-up.

The writer runs for real (its own thread, the embedded chdb store); an ``after_insert``
hook records what each insert stored.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from django.test import override_settings

from ingest import writer
from ingest.catalog import Entry, RatePeriod
from ingest.pricing import Rates
from ingest.rows import SCHEMA
from ingest.services import Pricer
from tests.ingest.otlp_builders import new_span_id, new_trace_id

pytestmark = pytest.mark.django_db(transaction=True)


def spans_table(project_id: int, rows: int) -> pa.Table:
    """``rows`` root spans without usage, in the spans schema."""
    now = time.time_ns()
    values: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for i in range(rows):
        row = {"project_id": project_id, "trace_id": new_trace_id(), "span_id": new_span_id(), "name": "root",
               "kind": "server", "start_time": now - i * 1_000_000, "status": "unset"}
        for field in SCHEMA:
            default: Any = [] if pa.types.is_map(field.type) else (
                "" if pa.types.is_string(field.type) else (False if pa.types.is_boolean(field.type) else 0))
            if field.name in ("reported_cost", "quality"):
                default = None
            values[field.name].append(row.get(field.name, default))
    values = {k: [Decimal(0) if isinstance(v, int) and k.startswith("cost_") else v for v in column]
              for k, column in values.items()}
    return pa.table(values, schema=SCHEMA)


@pytest.fixture
def inserts() -> Any:
    """Row counts of every insert the writer makes while the test runs."""
    seen: list[int] = []

    def record(project_id: int, table: pa.Table) -> None:
        seen.append(table.num_rows)

    writer.hooks.after_insert.append(record)
    yield seen
    writer.hooks.after_insert.remove(record)


def test_requests_within_the_linger_window_share_one_insert(ch: ModuleType, project: Any,
                                                            inserts: list[int]) -> None:
    results: list[int] = []
    with override_settings(INGEST_LINGER_MS=400):
        threads = [threading.Thread(target=lambda n=n: results.append(writer.write(project.pk,
                                                                                   spans_table(project.pk, n))))
                   for n in (3, 5, 7)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(30)
    assert sorted(results) == [0, 0, 0]  # no usage, nothing counted, but every request answered
    assert inserts == [15], f"expected one insert of all 15 rows, got {inserts}"
    stored = ch.execute("SELECT count() AS n FROM spans WHERE project_id IN {project_ids:Array(UInt32)}",
                        tag="tests.count", projects=project.pk)
    assert stored[0]["n"] == 15


def test_without_linger_a_lone_request_is_stored_at_once(ch: ModuleType, project: Any,
                                                         inserts: list[int]) -> None:
    with override_settings(INGEST_LINGER_MS=0):
        started = time.monotonic()
        writer.write(project.pk, spans_table(project.pk, 4))
        elapsed = time.monotonic() - started
    assert inserts == [4]
    assert elapsed < 30


def _rates(price_id: int, output: str) -> Rates:
    return Rates(price_id=price_id, input=Decimal("1"), output=Decimal(output))


def test_pricer_uses_the_rates_of_each_spans_local_day_at_a_price_change() -> None:
    change = date(2025, 3, 10)
    entry = Entry(id=1, project_id=None, model="m", provider="p", tier=1, reasoning=False, pattern=None,  # type: ignore[arg-type]
                  periods=(RatePeriod(date(2024, 1, 1), change, _rates(1, "2")),
                           RatePeriod(change, None, _rates(2, "3"))))
    pricer = Pricer(project_id=1)
    midnight = datetime(change.year, change.month, change.day)  # local time, as date.fromtimestamp uses
    for offset in (timedelta(seconds=-1), timedelta(0), timedelta(minutes=7), timedelta(hours=-23)):
        at = midnight + offset
        start_ns = int(at.timestamp()) * 1_000_000_000 + 123
        expected = entry.rates_on(date.fromtimestamp(start_ns // 1_000_000_000))
        got = pricer.rates(entry, start_ns)
        assert got is expected, f"{at}: {got} != {expected}"
    # the same quarter hour again comes from the memo, still right
    assert pricer.rates(entry, int((midnight - timedelta(seconds=1)).timestamp()) * 10**9).price_id == 1  # type: ignore[union-attr]
    assert pricer.rates(entry, int(midnight.timestamp()) * 10**9).price_id == 2  # type: ignore[union-attr]
