"""Quality and other scores that arrive after a trace (the ClickHouse ``scores`` table).

A score names a trace (and optionally one of its spans); a later score with the same
(project, trace, span, name) replaces the earlier one, so readers take the latest by
``created_at`` (the table is a ReplacingMergeTree and may hold both until a merge).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

SCHEMA = pa.schema(
    [
        ("project_id", pa.uint32()), ("trace_id", pa.string()), ("span_id", pa.string()), ("name", pa.string()),
        ("value", pa.float64()), ("source", pa.string()), ("comment", pa.string()),
        ("created_at", pa.timestamp("ms", tz="UTC")),
    ]
)

LATEST_SQL = f"""
SELECT project_id, trace_id, span_id, name,
       argMax(value, created_at) AS latest_value, argMax(source, created_at) AS latest_source,
       argMax(comment, created_at) AS latest_comment, max(created_at) AS latest_at
FROM scores
WHERE project_id IN {PROJECT_PARAM} AND trace_id = {{trace_id:String}}
GROUP BY project_id, trace_id, span_id, name
ORDER BY project_id, span_id, name
"""


@dataclass(frozen=True)
class Score:
    project_id: int
    trace_id: str
    span_id: str
    name: str
    value: float
    source: str = "api"
    comment: str = ""
    created_at: datetime | None = None


def record(score: Score) -> Score:
    """Store one score; returns it with its ``created_at`` (millisecond precision, UTC)."""
    now = datetime.now(UTC)
    created = score.created_at or now.replace(microsecond=now.microsecond // 1000 * 1000)
    table = pa.Table.from_pylist(
        [{"project_id": score.project_id, "trace_id": score.trace_id, "span_id": score.span_id, "name": score.name,
          "value": float(score.value), "source": score.source, "comment": score.comment, "created_at": created}],
        schema=SCHEMA,
    )
    clickhouse.insert("scores", table, tag="ingest.scores.insert", project=score.project_id)
    return Score(score.project_id, score.trace_id, score.span_id, score.name, float(score.value), score.source,
                 score.comment, created)


def latest_for_trace(project_ids: list[int], trace_id: str) -> list[dict[str, Any]]:
    """The current score of each (span, name) of a trace, in the given projects only."""
    if not project_ids:
        return []
    rows = clickhouse.execute(LATEST_SQL, {"trace_id": trace_id}, tag="ingest.scores.read", projects=project_ids)
    return [
        {"project_id": r["project_id"], "trace_id": r["trace_id"], "span_id": r["span_id"], "name": r["name"],
         "value": r["latest_value"], "source": r["latest_source"], "comment": r["latest_comment"],
         "created_at": r["latest_at"]}
        for r in rows
    ]
