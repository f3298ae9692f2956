"""SQL that the ingest path runs against the spans table (dedup look-ups and the insert)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM
from ingest.dedup import Known
from ingest.rows import SpanRows

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


def _days(rows: SpanRows) -> dict[str, str]:
    starts = rows.columns["start_time"]
    low = datetime.fromtimestamp(min(starts) / 1e9, UTC) - LOOKUP_MARGIN
    high = datetime.fromtimestamp(max(starts) / 1e9, UTC) + LOOKUP_MARGIN
    return {"day_from": low.date().isoformat(), "day_to": high.date().isoformat()}


def known_spans(rows: SpanRows) -> list[Known]:
    trace_ids = sorted(set(rows.columns["trace_id"]))
    result = clickhouse.query_arrow(
        KNOWN_SPANS_SQL, {**_days(rows), "trace_ids": trace_ids}, tag="ingest.dedup.spans", projects=rows.project_id
    )
    return [
        Known(r["trace_id"], r["span_id"], r["parent_span_id"], bool(r["has_usage"]), bool(r["counted"]))
        for r in result.to_pylist()
    ]


def counted_responses(rows: SpanRows) -> set[tuple[str, str]]:
    response_ids = sorted({r for r in rows.columns["response_id"] if r})
    if not response_ids:
        return set()
    result = clickhouse.query_arrow(
        COUNTED_RESPONSES_SQL, {**_days(rows), "response_ids": response_ids},
        tag="ingest.dedup.responses", projects=rows.project_id,
    )
    return {(r["provider"], r["response_id"]) for r in result.to_pylist()}


def insert(rows: SpanRows) -> int:
    return clickhouse.insert("spans", rows.to_arrow(), tag="ingest.insert", project=rows.project_id)
