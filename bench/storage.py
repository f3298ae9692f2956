"""Storage benchmark: bytes per span on disk, per column, and ClickHouse CPU per stored span.

Sends ``--spans`` demo spans (:mod:`ingest.demo`: realistic traces, GenAI attributes of
the common instrumentors, ``--days`` of traffic) through the real ingest path
(:func:`ingest.services.ingest_payload`: decode, normalize, price, dedup, group-commit
insert; the rollup views fill) into a fresh embedded store, then merges every table
(``OPTIMIZE ... FINAL``, the steady state a day-old partition reaches) and reads
``system.parts`` and ``system.columns``: compressed and uncompressed bytes of every
column of ``spans``, bytes on disk per span (marks and primary index included) for the
spans, the rollups and all tables together.

Then the ClickHouse side of ingest alone: the stored spans are exported to Parquet
(``thinkmeter.transfer``), the tables emptied, and the same rows inserted again in
batches of ``--insert-batch`` through :func:`thinkmeter.clickhouse.insert` (the views
run as at ingest), measuring this process's CPU time (chdb runs inside it), and the CPU
time of the merge that follows. Prints one JSON object; ``bench/capacity.py`` reads it.

    flock /tmp/bench.lock .venv/bin/python bench/storage.py --spans 1000000 > storage.json

Prompt and completion text are not captured by the demo traffic (the default): a
project that stores them adds their ZSTD(3)-compressed size per span.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TAG = "bench.storage"
PARTS_SQL = """
SELECT table, count() AS parts, sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk,
    sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed,
    sum(marks_bytes) AS marks, sum(primary_key_bytes_in_memory) AS primary_key_in_memory
FROM system.parts
WHERE database = currentDatabase() AND active
GROUP BY table
ORDER BY table
"""
COLUMNS_SQL = """
SELECT name, type, data_compressed_bytes AS compressed, data_uncompressed_bytes AS uncompressed
FROM system.columns
WHERE database = currentDatabase() AND table = 'spans'
ORDER BY data_compressed_bytes DESC
"""
TABLES_SQL = """
SELECT name FROM system.tables
WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND name != 'thinkmeter_migrations'
ORDER BY name
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def setup(workdir: Path) -> Any:
    """Django on a fresh store under ``workdir``; returns the bench project."""
    os.environ["CLICKHOUSE_URL"] = f"chdb://{workdir / 'clickhouse'}"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'django.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
    os.environ.setdefault("THINKMETER_LOG_LEVEL", "WARNING")
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CLICKHOUSE_CLUSTER"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=sys.stderr)  # stdout carries the JSON only
    from thinkmeter.models import Organization, Project

    org = Organization.objects.create(slug="bench", name="bench")
    return Project.objects.create(slug="bench", name="bench", organization=org)


def ingest(project: Any, spans: int, days: float, processes: int) -> dict[str, Any]:
    from ingest import demo, parallel, services

    parallel.start(processes)
    started = time.perf_counter()
    sent = 0
    try:
        end = datetime.now(UTC).replace(microsecond=0)
        for item in demo.encoded_batches(spans, days=days, seed=11, end=end):
            services.ingest_payload(project, item.body, "application/x-protobuf", "gzip", "bench", api_key_id=1)
            sent += item.spans
            if sent % 51_200 < item.spans:
                print(f"\ringested {sent:,}/{spans:,} spans", end="", file=sys.stderr)
    finally:
        parallel.stop()
    print(file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"spans_sent": sent, "seconds": round(seconds, 1), "spans_per_s": round(sent / seconds)}


def tables() -> list[str]:
    from thinkmeter import clickhouse

    return [row["name"] for row in clickhouse.execute(TABLES_SQL, tag=TAG, system=True)]


def optimize() -> float:
    """Merge every table to one part per partition; returns the CPU seconds it took."""
    from thinkmeter import clickhouse

    before = cpu_seconds()
    for table in tables():
        clickhouse.execute(f"OPTIMIZE TABLE {table} FINAL", tag=TAG, system=True)
    return cpu_seconds() - before


def measure_storage() -> dict[str, Any]:
    from thinkmeter import clickhouse

    parts = {row["table"]: row for row in clickhouse.execute(PARTS_SQL, tag=TAG, system=True)}
    spans = parts["spans"]
    rows = int(spans["rows"])
    columns = []
    for row in clickhouse.execute(COLUMNS_SQL, tag=TAG, system=True):
        compressed, uncompressed = int(row["compressed"]), int(row["uncompressed"])
        columns.append({"name": row["name"], "type": row["type"], "compressed": compressed,
                        "uncompressed": uncompressed, "ratio": round(uncompressed / compressed, 1) if compressed else None,
                        "bytes_per_span": round(compressed / rows, 2)})
    all_bytes = sum(int(p["bytes_on_disk"]) for p in parts.values())
    return {
        "spans_rows": rows,
        "spans": {
            "parts": int(spans["parts"]), "bytes_on_disk": int(spans["bytes_on_disk"]),
            "compressed": int(spans["compressed"]), "uncompressed": int(spans["uncompressed"]),
            "compression_ratio": round(int(spans["uncompressed"]) / int(spans["compressed"]), 2),
            "bytes_per_span_on_disk": round(int(spans["bytes_on_disk"]) / rows, 1),
            "uncompressed_bytes_per_span": round(int(spans["uncompressed"]) / rows, 1),
            "primary_key_bytes_in_memory_per_million_spans": round(int(spans["primary_key_in_memory"]) / rows * 1e6),
        },
        "other_tables": {name: {"rows": int(p["rows"]), "bytes_on_disk": int(p["bytes_on_disk"]),
                                "bytes_per_span": round(int(p["bytes_on_disk"]) / rows, 2)}
                         for name, p in parts.items() if name not in {"spans", "thinkmeter_migrations"}},
        "all_tables_bytes_per_span_on_disk": round(all_bytes / rows, 1),
        "columns": columns,
    }


def reinsert(project: Any, workdir: Path, batch_rows: int) -> dict[str, Any]:
    """Export, empty, insert the same spans again: CPU of the inserts (views included) and of the merge."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from thinkmeter import clickhouse, transfer

    out = workdir / "export"
    transfer.export(out, [project], chunk_rows=200_000)
    for table in tables():
        clickhouse.execute(f"TRUNCATE TABLE {table}", tag=TAG, system=True)
    parquet = pq.ParquetFile(out / project.slug / "spans.parquet")
    batches = [pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=batch_rows)]  # before timing
    rows = 0
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    for batch in batches:
        clickhouse.insert("spans", batch, tag=TAG, project=project.pk)
        rows += batch.num_rows
    insert_cpu, insert_wall = cpu_seconds() - cpu_before, time.perf_counter() - wall_before
    merge_cpu = optimize()
    return {
        "rows": rows, "batch_rows": batch_rows, "seconds": round(insert_wall, 2),
        "insert_cpu_seconds": round(insert_cpu, 2), "merge_cpu_seconds": round(merge_cpu, 2),
        "spans_per_insert_cpu_second": round(rows / insert_cpu),
        "spans_per_clickhouse_core": round(rows / (insert_cpu + merge_cpu)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--insert-batch", type=int, default=20_000, help="rows per insert when timing ClickHouse")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="ingest worker processes")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the store here (default: a temp dir)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="thinkmeter-storage-"))
    workdir.mkdir(parents=True, exist_ok=True)
    project = setup(workdir)
    from importlib.metadata import version as installed_version  # (only thinkmeter.clickhouse imports chdb)

    ingested = ingest(project, args.spans, args.days, args.processes)
    optimize()
    storage = measure_storage()
    inserted = reinsert(project, workdir, args.insert_batch)
    again = measure_storage()
    assert again["spans_rows"] == storage["spans_rows"], (again["spans_rows"], storage["spans_rows"])
    print(json.dumps({
        "bench": "storage", "chdb": installed_version("chdb"), "spans_requested": args.spans, "days": args.days,
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "ingest_path": ingested, **storage, "clickhouse_insert": inserted,
    }, indent=2))


if __name__ == "__main__":
    main()
