"""Rows of the spans table as built at ingest, and their conversion to one Arrow table.

Rows are tuples in :data:`COLUMNS` order (cheap to build); columns are made once per
flush by transposing. Money travels as integer nano-dollars and becomes Decimal(18, 9)
in Arrow without a Python Decimal per value; attribute maps become one MapArray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import Any

import numpy as np
import pyarrow as pa

MONEY = pa.decimal128(18, 9)
STRMAP = pa.map_(pa.string(), pa.string())

SCHEMA = pa.schema(
    [
        ("project_id", pa.uint32()), ("api_key_id", pa.uint32()), ("trace_id", pa.string()), ("span_id", pa.string()),
        ("parent_span_id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
        ("start_time", pa.timestamp("ns", tz="UTC")), ("duration_ns", pa.uint64()),
        ("status", pa.string()), ("status_message", pa.string()), ("service", pa.string()),
        ("environment", pa.string()), ("instrumentation", pa.string()), ("provider", pa.string()),
        ("model", pa.string()), ("request_model", pa.string()), ("operation", pa.string()),
        ("task_type", pa.string()), ("tier", pa.uint8()), ("user_id", pa.string()), ("session_id", pa.string()),
        ("request_id", pa.string()), ("response_id", pa.string()), ("thinking_budget", pa.uint32()),
        ("reasoning_effort", pa.string()), ("ttft_ms", pa.float32()),
        ("input_tokens", pa.uint64()), ("cache_read_tokens", pa.uint64()), ("cache_write_tokens", pa.uint64()),
        ("output_tokens", pa.uint64()), ("reasoning_tokens", pa.uint64()), ("reasoning_estimated", pa.bool_()),
        ("has_usage", pa.bool_()), ("counted", pa.uint8()),
        ("cost_input", MONEY), ("cost_cache_read", MONEY), ("cost_cache_write", MONEY),
        ("cost_output_visible", MONEY), ("cost_reasoning", MONEY), ("cost_total", MONEY),
        ("reported_cost", MONEY), ("price_id", pa.uint32()), ("priced", pa.bool_()), ("quality", pa.float32()),
        ("runaway", pa.uint8()), ("prompt_text", pa.string()), ("completion_text", pa.string()),
        ("attributes", STRMAP), ("resource_attributes", STRMAP),
    ]
)
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
POSITION = {name: i for i, name in enumerate(COLUMNS)}
NANO_COLUMNS = frozenset(
    {"cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total"}
)


def nanos_to_decimal_array(nanos: Sequence[int]) -> pa.Array:
    """Integer nano-dollars → Decimal(18, 9) Arrow array, without per-value Decimal objects."""
    low = np.asarray(nanos, dtype=np.int64)
    words = np.empty((len(low), 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = np.where(low < 0, -1, 0)
    return pa.Array.from_buffers(MONEY, len(low), [None, pa.py_buffer(words.tobytes())])


def map_array(maps: Sequence[dict[str, str]]) -> pa.Array:
    """Dicts → one MapArray (the flattening runs in C: no Python loop per entry)."""
    offsets = list(accumulate(map(len, maps), initial=0))
    keys = list(chain.from_iterable(maps))
    values = list(chain.from_iterable(map(dict.values, maps)))
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, pa.string()),
                                   pa.array(values, pa.string()))


@dataclass
class SpanRows:
    """One project's rows (tuples in COLUMNS order); ``columns`` transposes them once."""

    project_id: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    _columns: dict[str, Sequence[Any]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self._columns = None

    def extend(self, other: SpanRows) -> None:
        self.rows.extend(other.rows)
        self._columns = None

    @property
    def columns(self) -> dict[str, Sequence[Any]]:
        if self._columns is None:
            transposed = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in COLUMNS]
            self._columns = dict(zip(COLUMNS, transposed, strict=True))
        return self._columns

    def to_arrow(self) -> pa.Table:
        columns = self.columns
        arrays = []
        for name, kind in zip(COLUMNS, SCHEMA.types, strict=True):
            values = columns[name]
            if name in NANO_COLUMNS:
                arrays.append(nanos_to_decimal_array(values))
            elif name in ("attributes", "resource_attributes"):
                arrays.append(map_array(values))
            else:
                arrays.append(pa.array(values, kind))
        return pa.Table.from_arrays(arrays, schema=SCHEMA)
