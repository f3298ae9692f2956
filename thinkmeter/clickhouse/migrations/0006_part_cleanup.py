"""Remove merged-away parts one at a time, at least every 30 s, on every MergeTree table.

Each insert writes a part to ``spans`` and to each table its materialized views feed;
merges replace them, and the replaced ("outdated") parts wait for the table's cleanup
thread. ClickHouse's defaults suit a server, not an engine inside our serving process:

- ``concurrent_part_removal_threshold`` (default 100): above this many outdated parts a
  cleanup removes them on a pool of up to 128 threads. The embedded engine's global
  thread pool then keeps those threads (it keeps up to 1,000 idle ones), so the first
  big cleanup under load added ~115 threads, and their stacks and allocator caches, to
  the process for good (``bench/load.py``: 120 → 234 threads at 4 minutes). Removing a
  part deletes a small directory on local disk: one thread keeps up.
- ``max_cleanup_delay_period`` (default 300 s): when a cleanup finds little to do the
  thread backs off up to five minutes, and under steady ingest ~1,000 outdated parts,
  with their metadata in memory, piled up before the next one. 30 s keeps a few hundred.

The settings change no data; in cluster mode they go to every node's local tables.
"""

from __future__ import annotations

from thinkmeter.clickhouse.ddl import SchemaContext

PART_CLEANUP_SETTINGS = "concurrent_part_removal_threshold = 1000000, max_cleanup_delay_period = 30"
TABLES = ("spans", "scores", "usage_hourly", "usage_daily_users", "usage_daily", "usage_daily_user_totals",
          "sampled_calls")


def statements(ctx: SchemaContext) -> list[str]:
    return [statement for table in TABLES
            for statement in ctx.alter_table(table, f"MODIFY SETTING {PART_CLEANUP_SETTINGS}")]
