"""Models seen in spans with usage but without a price (``GET /api/v1/prices/unpriced``).

Ingest never prices tokens at $0 silently: a model the catalog does not match is stored
with ``priced = false``. This lists those models per project with how much traffic they
carried, so someone can add a price and then run ``manage.py reprice`` over the range.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

UNPRICED_SQL = f"""
SELECT project_id, model, max(provider) AS provider,
       uniqExact(trace_id, span_id) AS spans,
       countIf(counted = 1) AS requests,
       sumIf(input_tokens, counted = 1) AS input_tokens,
       sumIf(output_tokens, counted = 1) AS output_tokens,
       sumIf(reasoning_tokens, counted = 1) AS reasoning_tokens,
       min(start_time) AS first_seen, max(start_time) AS last_seen
FROM spans
WHERE project_id IN {PROJECT_PARAM}
  AND start_time >= {{start:DateTime64(6, 'UTC')}} AND start_time < {{end:DateTime64(6, 'UTC')}}
  AND has_usage AND NOT priced
GROUP BY project_id, model
ORDER BY spans DESC, project_id, model
"""


def unpriced_models(project_ids: list[int], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One row per (project, model) with unpriced usage in [start, end)."""
    if not project_ids:
        return []
    return clickhouse.execute(UNPRICED_SQL, {"start": start, "end": end}, tag="ingest.prices.unpriced",
                              projects=project_ids)
