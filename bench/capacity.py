"""Capacity model: the hardware for a span rate and a retention, from the measured figures.

Reads the JSON that ``bench/storage.py`` printed (bytes per span on disk, ClickHouse CPU
per stored span for insert and merge) and the JSON that ``bench/ingest.py`` printed
(sustained spans/s of one embedded server), and prints, for each ``--rate`` (spans per
second, sustained), the web cores, the ClickHouse shards × replicas with cores, RAM and
disk per node, and the totals. ``--markdown`` prints the tables CAPACITY.md shows.

    .venv/bin/python bench/capacity.py --storage storage.json --ingest ingest.json \\
        --ingest-cores 2 --rate 1000 --rate 10000 --rate 100000 --markdown

The model (every assumption is a flag):

- web: the embedded server of the ingest benchmark spent ``cpu_us_per_span.server_total``
  CPU per span (or, from older outputs, ``ingest_cores / spans_per_s`` core-seconds),
  ClickHouse's share (insert and merge, from the storage benchmark) included; the rest
  is the web side (HTTP, decode, normalize, price, dedup, writer). Web nodes run at most
  ``--web-utilization`` of their cores, at least two replicas.
- ClickHouse CPU per span = insert (views included) + ``--merge-passes`` × the measured
  merge on every replica (each replica merges its own parts), and ingest may use at
  most ``--clickhouse-ingest-share`` of the cores (the rest serves dashboards, alerts,
  replication).
- disk per span = the measured bytes on disk of all tables after merging; a year holds
  ``rate × 86,400 × retention_days`` spans per replica, and disks are filled to at most
  ``--disk-fill`` (merges need free space).
- shards: enough that each node stays within ``--node-cores`` and ``--node-disk-tb``.
- RAM per ClickHouse node: 1 GB per ``--storage-per-ram-gb`` GB of data on the node
  (observability data is mostly cold; ClickHouse's sizing guide starts such workloads
  near 1:100), at least ``--ram-per-core-gb`` per core and ``--min-ram-gb``; cores at
  least RAM / ``--max-ram-per-core-gb`` so that the data a node holds can be scanned.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SECONDS_PER_DAY = 86_400
NODE_SIZES = (4, 8, 16, 32, 48, 64, 96, 128)
RAM_SIZES = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024)


@dataclass(frozen=True)
class Measured:
    """Per-span figures taken from the benchmark outputs."""

    bytes_per_span: float  # all tables, merged, on disk (one replica)
    clickhouse_insert_core_s: float  # CPU seconds per span: insert + views
    clickhouse_merge_core_s: float  # CPU seconds per span: one merge of every table
    web_core_s: float  # CPU seconds per span on the web side
    ingest_spans_per_s: float
    ingest_cores: float

    @classmethod
    def load(cls, storage: dict[str, Any], ingest: dict[str, Any], ingest_cores: float) -> Measured:
        inserted = storage["clickhouse_insert"]
        rows = float(inserted["rows"])
        insert = float(inserted["insert_cpu_seconds"]) / rows
        merge = float(inserted["merge_cpu_seconds"]) / rows
        cpu = ingest.get("cpu_us_per_span", {}).get("server_total")
        # The server's own CPU time per span when the benchmark reports it (a shared machine's
        # wall clock includes waiting for a core), else its cores over its throughput.
        total = float(cpu) / 1e6 if cpu else ingest_cores / float(ingest["spans_per_s"])
        web = total - insert - merge
        if web <= 0:
            raise ValueError("the ingest benchmark is faster than ClickHouse alone: check --ingest-cores")
        return cls(float(storage["all_tables_bytes_per_span_on_disk"]), insert, merge, web,
                   float(ingest["spans_per_s"]), ingest_cores)


@dataclass(frozen=True)
class Plan:
    rate: int
    spans_per_year: float
    web_cores: int
    web_replicas: int
    web_cores_per_replica: int
    clickhouse_shards: int
    clickhouse_replicas: int
    clickhouse_cores_per_node: int
    clickhouse_ram_gb_per_node: int
    clickhouse_disk_tb_per_node: float
    clickhouse_nodes: int
    clickhouse_cores_total: int
    clickhouse_disk_tb_total: float
    data_tb_per_replica: float


def _size(needed: float, sizes: tuple[int, ...], what: str) -> int:
    """The smallest usual size that holds ``needed``."""
    for size in sizes:
        if needed <= size:
            return size
    raise ValueError(f"{needed:.0f} {what} do not fit one node: lower --node-cores or --node-disk-tb")


def node_size(cores: float) -> int:
    return _size(cores, NODE_SIZES, "cores")


def plan(rate: int, m: Measured, args: argparse.Namespace) -> Plan:
    spans_year = rate * SECONDS_PER_DAY * args.retention_days
    # Web: cores for the rate at the target utilization, in at least two replicas.
    web_cores_needed = rate * m.web_core_s / args.web_utilization
    web_replicas = max(2, math.ceil(web_cores_needed / args.web_node_cores))
    web_per_replica = node_size(max(2.0, web_cores_needed / web_replicas))
    # ClickHouse: CPU for inserts (one replica per shard) and merges (every replica).
    replicas = args.replicas
    ingest_cores = rate * (m.clickhouse_insert_core_s + replicas * args.merge_passes * m.clickhouse_merge_core_s)
    cores_needed = ingest_cores / args.clickhouse_ingest_share
    data_tb = spans_year * m.bytes_per_span / 1e12  # one replica's copy
    disk_needed_tb = data_tb / args.disk_fill
    shards = max(1, math.ceil(cores_needed / replicas / args.node_cores),
                 math.ceil(disk_needed_tb / args.node_disk_tb))
    disk_per_node = math.ceil(disk_needed_tb / shards * 10) / 10
    ram_for_data = data_tb / shards * 1000 / args.storage_per_ram_gb
    cores_per_node = node_size(max(args.min_node_cores, cores_needed / (shards * replicas),
                                   ram_for_data / args.max_ram_per_core_gb))
    ram = _size(max(args.min_ram_gb, ram_for_data, args.ram_per_core_gb * cores_per_node), RAM_SIZES, "GB of RAM")
    return Plan(
        rate=rate, spans_per_year=spans_year, web_cores=math.ceil(web_cores_needed), web_replicas=web_replicas,
        web_cores_per_replica=web_per_replica, clickhouse_shards=shards, clickhouse_replicas=replicas,
        clickhouse_cores_per_node=cores_per_node, clickhouse_ram_gb_per_node=ram,
        clickhouse_disk_tb_per_node=disk_per_node, clickhouse_nodes=shards * replicas,
        clickhouse_cores_total=cores_per_node * shards * replicas,
        clickhouse_disk_tb_total=round(disk_per_node * shards * replicas, 1), data_tb_per_replica=round(data_tb, 2),
    )


def markdown(m: Measured, plans: list[Plan], args: argparse.Namespace) -> str:
    lines = [
        "| measured | value |",
        "|---|---|",
        f"| spans/s per web core | {1 / m.web_core_s:,.0f} |",
        f"| spans/s per ClickHouse core (insert + views) | {1 / m.clickhouse_insert_core_s:,.0f} |",
        f"| spans/s per ClickHouse core (insert + views + one merge) | "
        f"{1 / (m.clickhouse_insert_core_s + m.clickhouse_merge_core_s):,.0f} |",
        f"| bytes per span on disk, all tables, one replica | {m.bytes_per_span:,.1f} |",
        "",
        f"Retention {args.retention_days} days, {args.replicas} replicas per shard, ClickHouse nodes of at most "
        f"{args.node_cores} cores and {args.node_disk_tb} TB, disks at most {args.disk_fill:.0%} full.",
        "",
        "| spans/s | spans per year | web | ClickHouse nodes (shards × replicas) | per ClickHouse node | "
        "ClickHouse total | data per replica |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in plans:
        lines.append(
            f"| {p.rate:,} | {p.spans_per_year / 1e9:,.1f} billion | {p.web_replicas} × {p.web_cores_per_replica} cores "
            f"({p.web_cores} needed) | {p.clickhouse_nodes} ({p.clickhouse_shards} × {p.clickhouse_replicas}) | "
            f"{p.clickhouse_cores_per_node} cores, {p.clickhouse_ram_gb_per_node} GB RAM, "
            f"{p.clickhouse_disk_tb_per_node:g} TB disk | {p.clickhouse_cores_total} cores, "
            f"{p.clickhouse_disk_tb_total:g} TB | {p.data_tb_per_replica:g} TB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", type=Path, required=True, help="bench/storage.py output")
    parser.add_argument("--ingest", type=Path, required=True, help="bench/ingest.py output")
    parser.add_argument("--ingest-cores", type=float, default=float(os.cpu_count() or 1),
                        help="cores of the machine that ran bench/ingest.py (default: this machine's)")
    parser.add_argument("--rate", type=int, action="append", help="spans per second (repeatable)")
    parser.add_argument("--retention-days", type=int, default=365)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--merge-passes", type=float, default=3.0, help="times a row is merged over its life")
    parser.add_argument("--clickhouse-ingest-share", type=float, default=0.5)
    parser.add_argument("--web-utilization", type=float, default=0.6)
    parser.add_argument("--web-node-cores", type=int, default=16)
    parser.add_argument("--node-cores", type=int, default=32, help="largest ClickHouse node, cores")
    parser.add_argument("--min-node-cores", type=int, default=4)
    parser.add_argument("--node-disk-tb", type=float, default=16.0, help="largest ClickHouse node, TB of disk")
    parser.add_argument("--disk-fill", type=float, default=0.7)
    parser.add_argument("--storage-per-ram-gb", type=float, default=100.0, help="GB of data per GB of RAM")
    parser.add_argument("--ram-per-core-gb", type=int, default=4)
    parser.add_argument("--max-ram-per-core-gb", type=int, default=8)
    parser.add_argument("--min-ram-gb", type=int, default=16)
    parser.add_argument("--markdown", action="store_true", help="print CAPACITY.md's tables instead of JSON")
    args = parser.parse_args(argv)
    for name in ("clickhouse_ingest_share", "web_utilization", "disk_fill"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in (0, 1]")
    try:
        measured = Measured.load(json.loads(args.storage.read_text()), json.loads(args.ingest.read_text()),
                                 args.ingest_cores)
        plans = [plan(rate, measured, args) for rate in (args.rate or [1_000, 10_000, 100_000])]
    except (OSError, KeyError, ValueError) as exc:
        parser.error(str(exc))
    if args.markdown:
        print(markdown(measured, plans, args))
        return
    json.dump({"measured": asdict(measured), "plans": [asdict(p) for p in plans]}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
