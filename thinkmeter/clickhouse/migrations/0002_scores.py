"""Quality scores that arrive after the fact (a verifier's result, a user's rating).

One row per (project, trace, span, name); a later score with the same key replaces
the earlier one (ReplacingMergeTree on ``created_at``; readers use argMax). In cluster
mode scores are sharded like spans, by (project_id, trace_id), so a trace's scores sit
on the shard that holds its spans.
"""

from __future__ import annotations

from thinkmeter.clickhouse.ddl import SchemaContext

COLUMNS = [
    "project_id UInt32",
    "trace_id String",
    "span_id String",
    "name LowCardinality(String)",
    "value Float64",
    "source LowCardinality(String)",
    "comment String CODEC(ZSTD(1))",
    "created_at DateTime64(3, 'UTC') DEFAULT now64(3)",
]


def statements(ctx: SchemaContext) -> list[str]:
    return ctx.create_table(
        "scores",
        COLUMNS,
        engine="ReplacingMergeTree(created_at)",
        partition_by="toYYYYMM(created_at)",
        order_by="(project_id, trace_id, span_id, name)",
        ttl=f"toDateTime(created_at) + INTERVAL {int(ctx.retention_days)} DAY",
        shard_by="cityHash64(project_id, trace_id)",
    )
