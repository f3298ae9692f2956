"""The spans table: one row per span, typed columns for every dimension (DESIGN.md §4).

Span identity (project_id, trace_id, span_id) is the ReplacingMergeTree key (with the
span's start date, which a re-sent span repeats), so re-sent spans collapse on merge.
Sums must not wait for merges: ``counted`` = 1 only on the one row that carries a
provider call's usage (decided at write time), and every aggregate filters on it.

In cluster mode the rows are sharded by (project_id, trace_id): a trace, and every
re-sent copy of its spans, lands on one shard, where the replacing merge collapses them.
"""

from __future__ import annotations

from thinkmeter.clickhouse.ddl import SchemaContext

TOKEN = "UInt64 CODEC(T64, ZSTD(1))"
MONEY = "Decimal(18, 9) CODEC(ZSTD(1))"
SHARD_BY = "cityHash64(project_id, trace_id)"

COLUMNS = [
    "project_id UInt32",
    "trace_id String CODEC(ZSTD(1))",
    "span_id String CODEC(ZSTD(1))",
    "parent_span_id String CODEC(ZSTD(1))",
    "name LowCardinality(String)",
    "kind LowCardinality(String)",
    "start_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1))",
    "duration_ns UInt64 CODEC(T64, ZSTD(1))",
    "status LowCardinality(String)",
    "status_message String CODEC(ZSTD(1))",
    "service LowCardinality(String)",
    "environment LowCardinality(String)",
    "instrumentation LowCardinality(String)",
    "provider LowCardinality(String)",
    "model LowCardinality(String)",
    "request_model LowCardinality(String)",
    "operation LowCardinality(String)",
    "task_type LowCardinality(String)",
    "tier UInt8",
    "user_id String CODEC(ZSTD(1))",
    "session_id String CODEC(ZSTD(1))",
    "request_id String CODEC(ZSTD(1))",
    "response_id String CODEC(ZSTD(1))",
    "thinking_budget UInt32 CODEC(T64, ZSTD(1))",
    "reasoning_effort LowCardinality(String)",
    "ttft_ms Float32 CODEC(ZSTD(1))",
    f"input_tokens {TOKEN}",
    f"cache_read_tokens {TOKEN}",
    f"cache_write_tokens {TOKEN}",
    f"output_tokens {TOKEN}",
    f"reasoning_tokens {TOKEN}",
    "reasoning_estimated Bool",
    "has_usage Bool",
    "counted UInt8",
    f"cost_input {MONEY}",
    f"cost_cache_read {MONEY}",
    f"cost_cache_write {MONEY}",
    f"cost_output_visible {MONEY}",
    f"cost_reasoning {MONEY}",
    f"cost_total {MONEY}",
    "reported_cost Nullable(Decimal(18, 9))",
    "price_id UInt32",
    "priced Bool",
    "quality Nullable(Float32)",
    "runaway UInt8",
    "prompt_text String CODEC(ZSTD(3))",
    "completion_text String CODEC(ZSTD(3))",
    "attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))",
    "resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1))",
    "ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))",
]
INDEXES = [
    "INDEX idx_response_id response_id TYPE bloom_filter(0.01) GRANULARITY 4",
    "INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 4",
    "INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1",
]


def statements(ctx: SchemaContext) -> list[str]:
    return ctx.create_table(
        "spans",
        COLUMNS,
        indexes=INDEXES,
        engine="ReplacingMergeTree(counted)",
        partition_by="toYYYYMM(start_time)",
        order_by="(project_id, toDate(start_time), trace_id, span_id)",
        ttl=f"toDateTime(start_time) + INTERVAL {int(ctx.retention_days)} DAY",
        settings="index_granularity = 8192",
        shard_by=SHARD_BY,
    )
