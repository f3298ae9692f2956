"""SQL that the ingest path runs against the spans table (dedup look-ups and the insert)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from ingest.dedup import Known
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

KNOWN_SPANS_SQL = f"""
SELECT trace_id, span_id, any(parent_span_id) AS parent_span_id, max(has_usage) AS has_usage,
       max(counted) AS counted
FROM spans
WHERE project_id IN {PROJECT_PARAM}
  AND toDate(start_time) BETWEEN {{day_from:Date}} AND {{day_to:Date}}
  AND trace_id IN {{trace_ids:Array(String)}}
GROUP BY trace_id, span_id
"""

COUNTED_RESPONSES_SQL = f"""
SELECT DISTINCT provider, response_id
FROM spans
WHERE project_id IN {PROJECT_PARAM}
  AND toDate(start_time) BETWEEN {{day_from:Date}} AND {{day_to:Date}}
  AND response_id IN {{response_ids:Array(String)}}
  AND counted = 1
"""

# Spans of one trace or one provider response normally arrive within hours of each other;
# look-ups cover the batch's days plus this margin on each side.
LOOKUP_MARGIN = timedelta(days=1)


def _days(start_ns_min: int, start_ns_max: int) -> dict[str, str]:
    low = datetime.fromtimestamp(start_ns_min / 1e9, UTC) - LOOKUP_MARGIN
    high = datetime.fromtimestamp(start_ns_max / 1e9, UTC) + LOOKUP_MARGIN
    return {"day_from": low.date().isoformat(), "day_to": high.date().isoformat()}


def known_spans(project_id: int, trace_ids: list[str], start_ns_min: int, start_ns_max: int) -> list[Known]:
    """Spans already stored in the given traces (for identity and parent/child dedup)."""
    result = clickhouse.query_arrow(
        KNOWN_SPANS_SQL, {**_days(start_ns_min, start_ns_max), "trace_ids": sorted(set(trace_ids))},
        tag="ingest.dedup.spans", projects=project_id,
    )
    return [
        Known(r["trace_id"], r["span_id"], r["parent_span_id"], bool(r["has_usage"]), bool(r["counted"]))
        for r in result.to_pylist()
    ]


def counted_responses(
    project_id: int, response_ids: list[str], start_ns_min: int, start_ns_max: int
) -> set[tuple[str, str]]:
    """(provider, response id) pairs already counted."""
    wanted = sorted({r for r in response_ids if r})
    if not wanted:
        return set()
    result = clickhouse.query_arrow(
        COUNTED_RESPONSES_SQL, {**_days(start_ns_min, start_ns_max), "response_ids": wanted},
        tag="ingest.dedup.responses", projects=project_id,
    )
    return {(r["provider"], r["response_id"]) for r in result.to_pylist()}


# Rows are sorted on insert but not collapsed: ReplacingMergeTree's collapsing within
# the inserted block copies every row once more (Map columns included) and buys nothing,
# because every sum reads ``counted`` (decided by the writer), never the row count.
INSERT_SETTINGS = {"optimize_on_insert": 0}


def insert(project_id: int, table: pa.Table) -> int:
    return clickhouse.insert("spans", table, tag="ingest.insert", project=project_id, settings=INSERT_SETTINGS)


RECENT_SQL = """
SELECT * FROM (
    SELECT project_id, trace_id, span_id, parent_span_id, has_usage, counted, provider, response_id,
           toUnixTimestamp64Nano(start_time) AS start_ns, toUnixTimestamp64Milli(ingested_at) AS ingested_ms
    FROM spans
    WHERE ingested_at > now64(3) - INTERVAL {hours:UInt32} HOUR
    ORDER BY ingested_at DESC
    LIMIT {limit:UInt64}
)
ORDER BY ingested_ms
"""

# When the newest spans filled the index, the older ones of the window are not in it: the
# index vouches only for spans that started after the latest of those.
NOT_LOADED_SQL = """
SELECT toUnixTimestamp64Nano(max(start_time)) AS start_ns
FROM spans
WHERE ingested_at > now64(3) - INTERVAL {hours:UInt32} HOUR
  AND ingested_at <= fromUnixTimestamp64Milli({before_ms:Int64}, 'UTC')
"""


def warm_recent_index(hours: int = 6) -> int:
    """Load recently stored spans of every project into the in-memory dedup index (start-up).

    Spans that started before the window are declared unknown to the index, so a late or
    re-sent one is checked against ClickHouse by the writer.
    """
    from ingest import recent

    recent.index.forget_before(time.time_ns() - hours * 3600 * 1_000_000_000)
    table = clickhouse.query_arrow(
        RECENT_SQL, {"hours": hours, "limit": recent.MAX_SPANS}, tag="ingest.dedup.warm", system=True
    )
    if not table.num_rows:
        return 0
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    if table.num_rows >= recent.MAX_SPANS:
        older = clickhouse.execute(NOT_LOADED_SQL, {"hours": hours, "before_ms": min(columns["ingested_ms"])},
                                   tag="ingest.dedup.warm", system=True)
        if older and older[0]["start_ns"]:
            recent.index.forget_before(int(older[0]["start_ns"]))
    for project_id in set(columns["project_id"]):
        picks = [i for i, p in enumerate(columns["project_id"]) if p == project_id]

        def col(name: str, picks: list[int] = picks) -> list:  # type: ignore[type-arg]
            values = columns[name]
            return [values[i] for i in picks]

        recent.index.add(project_id, col("trace_id"), col("span_id"), col("parent_span_id"), col("has_usage"),
                         col("counted"), list(zip(col("provider"), col("response_id"), strict=True)),
                         col("start_ns"))
    return table.num_rows
