"""p95 statistics per task class for the runaway rules, read from the hourly rollup and cached.

:func:`load` reads ``usage_hourly`` over a trailing window: per (task type, tier) and
per task type over all tiers, the number of calls and the merged t-digest quantiles
(p50, p90, p95, p99) of reasoning tokens and cost. The rollup holds one row per hour
and dimension combination, so this reads a few thousand rows however many calls there
were. The window is counted in whole hours (the rollup's grain).

:data:`cache` keeps each (project, window) for at most :data:`MAX_AGE` seconds (DESIGN.md
§5: refreshed at least every 60 s, computed on first need); with ``REDIS_URL`` the web
replicas share what any of them computed (:mod:`thinkmeter.shared`). The span writer's
hook never calls :func:`load` — it reads snapshots kept fresh by :mod:`alerts.runtime`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from alerts.runaway import ClassStat, Stats
from thinkmeter import clickhouse, shared
from thinkmeter.clickhouse import PROJECT_PARAM

MAX_AGE = 60.0
SHARED_TTL = 600.0  # seconds another replica's statistics stay in Redis (each use checks max_age)
QUANTILES = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)"

STATS_SQL = f"""
SELECT task_type, toInt16(tier) AS tier, sum(requests) AS samples,
    {QUANTILES}(reasoning_q) AS reasoning, {QUANTILES}(cost_q) AS cost
FROM usage_hourly
WHERE project_id IN {PROJECT_PARAM} AND hour >= {{start:DateTime64(6, 'UTC')}}
GROUP BY task_type, tier
UNION ALL
SELECT task_type, toInt16(-1) AS tier, sum(requests) AS samples,
    {QUANTILES}(reasoning_q) AS reasoning, {QUANTILES}(cost_q) AS cost
FROM usage_hourly
WHERE project_id IN {PROJECT_PARAM} AND hour >= {{start:DateTime64(6, 'UTC')}}
GROUP BY task_type
"""


def _quads(values: list[float] | None) -> tuple[float, float, float, float]:
    got = [float(v) if v == v else 0.0 for v in (values or [])]  # NaN (no data) → 0
    got += [0.0] * (4 - len(got))
    return got[0], got[1], got[2], got[3]


def load(project_id: int, window_seconds: int, now: datetime | None = None) -> Stats:
    """Read the statistics of one project over the trailing window (one ClickHouse query)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    start = (moment - timedelta(seconds=window_seconds)).replace(minute=0, second=0, microsecond=0)
    rows = clickhouse.execute(STATS_SQL, {"start": start}, tag="alerts.stats",
                              projects=project_id)
    classes: dict[tuple[str, int], ClassStat] = {}
    task_types: dict[str, ClassStat] = {}
    for row in rows:
        stat = ClassStat(samples=int(row["samples"]), reasoning=_quads(row["reasoning"]), cost=_quads(row["cost"]))
        if int(row["tier"]) < 0:
            task_types[str(row["task_type"])] = stat
        else:
            classes[(str(row["task_type"]), int(row["tier"]))] = stat
    return Stats(window_seconds=window_seconds, classes=classes, task_types=task_types, computed_at=time.time())


class StatsCache:
    """Statistics per (project, window), read again when older than ``max_age`` seconds."""

    def __init__(self, max_age: float = MAX_AGE) -> None:
        self.max_age = max_age
        self._entries: dict[tuple[int, int], Stats] = {}
        self._lock = threading.Lock()

    def peek(self, project_id: int, window_seconds: int) -> Stats | None:
        """The cached statistics, however old (never reads ClickHouse)."""
        return self._entries.get((project_id, window_seconds))

    def get(self, project_id: int, window_seconds: int, *, max_age: float | None = None) -> Stats:
        """Fresh statistics: cached (here, or by another replica) if younger than ``max_age``, else read now."""
        limit = self.max_age if max_age is None else max_age
        found = self._entries.get((project_id, window_seconds))
        if found is not None and time.time() - found.computed_at < limit:
            return found
        found = shared.get(f"alert-stats:{project_id}:{window_seconds}")
        if found is not None and time.time() - found.computed_at < limit:
            stats = found
        else:
            stats = load(project_id, window_seconds)
            shared.put(f"alert-stats:{project_id}:{window_seconds}", stats, SHARED_TTL)
        with self._lock:
            self._entries[(project_id, window_seconds)] = stats
        return stats

    def invalidate(self, project_id: int | None = None) -> None:
        with self._lock:
            if project_id is None:
                keys = list(self._entries)
            else:
                keys = [k for k in self._entries if k[0] == project_id]
            for key in keys:
                del self._entries[key]
        shared.forget(f"alert-stats:{p}:{w}" for p, w in keys)


cache = StatsCache()
