"""Threads the embedded engine keeps after removing merged-away parts, with and without 0006's settings.

Migration 0006 sets ``concurrent_part_removal_threshold`` and ``max_cleanup_delay_period``
on every MergeTree table. This shows why, on chdb alone (no server): for each variant, in
a fresh process with its own store, it inserts ``--parts`` single-row parts into a
MergeTree table (each insert is a part; merges leave the replaced ones outdated), waits
for the table's cleanup thread to remove them, and prints the engine's threads
(``GlobalThread``) and outdated parts before and after, as one JSON object.

    .venv/bin/python bench/part_cleanup.py            # about 80 s
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from thinkmeter.clickhouse.transport_chdb import ChdbTransport  # noqa: E402

VARIANTS = {"clickhouse_defaults": "", "with_0006": "SETTINGS {settings}"}
METRICS_SQL = "SELECT metric, value FROM system.metrics WHERE metric IN ('GlobalThread', 'PartsOutdated', 'PartsActive')"
TAG = "bench.part_cleanup"


def metrics(store: ChdbTransport) -> dict[str, int]:
    table = store.query_arrow(METRICS_SQL, {}, {}, TAG)
    return {row["metric"]: int(row["value"]) for row in table.to_pylist()}


def run_variant(name: str, parts: int, wait_s: float) -> dict[str, object]:
    """In this process: one store, one table, ``parts`` inserts, then wait for the cleanup."""
    cleanup = importlib.import_module("thinkmeter.clickhouse.migrations.0006_part_cleanup")
    store = ChdbTransport(Path(tempfile.mkdtemp(prefix="thinkmeter-parts-")))
    settings = VARIANTS[name].format(settings=cleanup.PART_CLEANUP_SETTINGS)
    store.command(f"CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n {settings}", {}, {}, TAG)
    for number in range(parts):
        store.command("INSERT INTO t SELECT {n:UInt64}", {"n": number}, {}, TAG)
    before = metrics(store)
    started = time.monotonic()
    while time.monotonic() - started < wait_s and metrics(store)["PartsOutdated"] > 0:
        time.sleep(1)
    return {"before_cleanup": before, "after_cleanup": metrics(store),
            "seconds_waited": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=300)
    parser.add_argument("--wait-seconds", type=float, default=60.0, help="for the cleanup, at most")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.parts, args.wait_seconds)))
        return
    report: dict[str, object] = {"bench": "part_cleanup_threads", "parts": args.parts}
    for name in VARIANTS:
        print(f"{name}: {args.parts} parts, then waiting for the cleanup", file=sys.stderr)
        child = subprocess.run([sys.executable, __file__, "--variant", name, "--parts", str(args.parts),
                                "--wait-seconds", str(args.wait_seconds)],
                               cwd=ROOT, check=True, capture_output=True, text=True)
        report[name] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
