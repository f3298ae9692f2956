"""Build the spans table's columns from normalized spans (the Arrow schema lives here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

MONEY = pa.decimal128(18, 9)
STRMAP = pa.map_(pa.string(), pa.string())

SCHEMA = pa.schema(
    [
        ("project_id", pa.uint32()), ("trace_id", pa.string()), ("span_id", pa.string()),
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
COLUMNS = SCHEMA.names


@dataclass
class SpanRows:
    """Column lists for one project's spans, appended row by row, turned into Arrow once."""

    project_id: int
    columns: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in COLUMNS})

    def __len__(self) -> int:
        return len(self.columns["span_id"])

    def append(self, row: dict[str, Any]) -> None:
        for name, values in self.columns.items():
            values.append(row[name])

    def extend(self, other: SpanRows) -> None:
        for name, values in self.columns.items():
            values.extend(other.columns[name])

    def to_arrow(self) -> pa.Table:
        columns = dict(self.columns)
        for name in ("attributes", "resource_attributes"):
            columns[name] = [list(m.items()) for m in columns[name]]
        return pa.table(columns, schema=SCHEMA)


def decimal_or_none(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None
