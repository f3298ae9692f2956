"""Quality scores that arrive after the fact (a verifier's result, a user's rating).

One row per (project, trace, span, name); a later score with the same key replaces
the earlier one (ReplacingMergeTree on ``created_at``; readers use argMax).
"""

from __future__ import annotations

from typing import Any


def statements(ctx: Any) -> list[str]:
    return [
        f"""
CREATE TABLE IF NOT EXISTS scores (
    project_id UInt32,
    trace_id String,
    span_id String,
    name LowCardinality(String),
    value Float64,
    source LowCardinality(String),
    comment String CODEC(ZSTD(1)),
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(created_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (project_id, trace_id, span_id, name)
TTL toDateTime(created_at) + INTERVAL {int(ctx.retention_days)} DAY
""",
    ]
