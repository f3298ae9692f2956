"""Move span data between installations: Parquet files per project and table (``export_spans`` / ``import_spans``).

The usual move is from an embedded installation (chdb under ``var/clickhouse``) to a
ClickHouse server or cluster. :func:`export` writes, for every project with data,
``<dir>/<project slug>/<table>.parquet`` for ``spans`` and ``scores`` plus
``<dir>/manifest.json`` (projects, organizations, row counts, columns). Rows are read
per range of days with ``FINAL``, so each span identity appears once, carrying the
``counted`` flag its installation decided. The rollups are not exported: importing the
spans through the insert path fills them again through the materialized views.

:func:`import_` reads the files in batches and inserts them through
:func:`thinkmeter.clickhouse.insert` into the project with the same slug (created in
its organization when missing; project ids may differ between installations).
Importing twice changes nothing: spans already stored (same trace and span id) are
inserted again with ``counted = 0``, which the ReplacingMergeTree collapses into the
stored row and the rollup views skip; scores collapse on their key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

FORMAT = "thinkmeter-spans-export"
VERSION = 1
MANIFEST = "manifest.json"
TAG_EXPORT = "transfer.export"
TAG_IMPORT = "transfer.import"
CHUNK_ROWS = 100_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableSpec:
    """A table that moves: its day column (for chunking) and the key that identifies a row."""

    name: str
    time_column: str


TABLES = {spec.name: spec for spec in (TableSpec("spans", "start_time"), TableSpec("scores", "created_at"))}

DAYS_SQL = """
SELECT toDate({time}) AS day, count() AS n
FROM {table} FINAL
WHERE project_id IN {projects}
GROUP BY day
ORDER BY day
"""
CHUNK_SQL = """
SELECT *
FROM {table} FINAL
WHERE project_id IN {projects} AND toDate({time}) BETWEEN {{day_from:Date}} AND {{day_to:Date}}
ORDER BY {time}
"""
STORED_SQL = f"""
SELECT trace_id, span_id
FROM spans
WHERE project_id IN {PROJECT_PARAM}
  AND toDate(start_time) BETWEEN {{day_from:Date}} AND {{day_to:Date}}
  AND trace_id IN {{trace_ids:Array(String)}}
GROUP BY trace_id, span_id
"""


class TransferError(Exception):
    """The files or the target cannot be used; the message says why and what to do."""


def _sql(template: str, spec: TableSpec) -> str:
    return template.format(table=spec.name, time=spec.time_column, projects=PROJECT_PARAM)


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns (LowCardinality) decoded, so every chunk has the same schema."""
    columns = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names)


def _day_ranges(days: list[dict[str, Any]], chunk_rows: int) -> Iterator[tuple[date, date, int]]:
    """Consecutive days grouped into ranges of about ``chunk_rows`` rows."""
    start: date | None = None
    end: date | None = None
    rows = 0
    for row in days:
        if start is None:
            start = row["day"]
        end = row["day"]
        rows += int(row["n"])
        if rows >= chunk_rows:
            yield start, end, rows
            start, rows = None, 0
    if start is not None and end is not None:
        yield start, end, rows


def _export_table(project_id: int, spec: TableSpec, path: Path, chunk_rows: int, progress: Progress, label: str) -> int:
    days = clickhouse.execute(_sql(DAYS_SQL, spec), tag=TAG_EXPORT, projects=project_id)
    total = sum(int(row["n"]) for row in days)
    if not total:
        return 0
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for day_from, day_to, _ in _day_ranges(days, chunk_rows):
            chunk = _plain(clickhouse.query_arrow(
                _sql(CHUNK_SQL, spec), {"day_from": day_from, "day_to": day_to}, tag=TAG_EXPORT, projects=project_id
            ))
            if writer is None:
                writer = pq.ParquetWriter(path, chunk.schema, compression="zstd")
            writer.write_table(chunk.cast(writer.schema))
            written += chunk.num_rows
            progress(f"{label} {spec.name}: {written:,}/{total:,} rows ({100 * written // total}%)")
    finally:
        if writer is not None:
            writer.close()
    return written


def export(directory: Path, projects: list[Any], *, chunk_rows: int = CHUNK_ROWS,
           progress: Progress = lambda _: None) -> dict[str, Any]:
    """Write every table of ``projects`` (Project instances) under ``directory``; return the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / MANIFEST).exists():
        raise TransferError(f"{directory} already holds an export ({MANIFEST}); choose an empty directory")
    entries = []
    for project in projects:
        tables: dict[str, dict[str, Any]] = {}
        folder = directory / project.slug
        for spec in TABLES.values():
            folder.mkdir(exist_ok=True)
            path = folder / f"{spec.name}.parquet"
            rows = _export_table(project.pk, spec, path, chunk_rows, progress, project.slug)
            if rows:
                tables[spec.name] = {"file": f"{project.slug}/{spec.name}.parquet", "rows": rows,
                                     "columns": pq.read_schema(path).names}
        if not tables:
            folder.rmdir()
            continue
        entries.append({"slug": project.slug, "organization": project.organization.slug, "name": project.name,
                        "source_id": project.pk, "tables": tables})
    manifest = {"format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
                "source": clickhouse.config().describe(), "projects": entries}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise TransferError(f"{path} is missing: point import_spans at a directory written by export_spans")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TransferError(f"{path} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise TransferError(f"{path} is not a {FORMAT} version {VERSION} manifest")
    return manifest


def _target_project(entry: dict[str, Any], progress: Progress) -> Any:
    from thinkmeter.models import Organization, Project

    project = Project.objects.filter(slug=entry["slug"]).first()
    if project is None:
        org, _ = Organization.objects.get_or_create(slug=entry["organization"],
                                                    defaults={"name": entry["organization"]})
        project = Project.objects.create(slug=entry["slug"], organization=org, name=entry.get("name") or entry["slug"])
        progress(f"{entry['slug']}: project created in organization {org.slug}")
    return project


def _target_columns(table: str) -> set[str]:
    try:
        rows = clickhouse.execute(f"DESCRIBE TABLE {table}", tag=TAG_IMPORT, system=True)
    except clickhouse.ClickHouseError as exc:
        first_line = exc.message.strip().splitlines()[0] if exc.message.strip() else "unknown error"
        raise TransferError(f"{table} cannot be read on the target ({first_line}); "
                            "run `manage.py migrate` there first") from None
    return {row["name"] for row in rows}


def _mark_stored(project_id: int, batch: pa.Table) -> tuple[pa.Table, int]:
    """Set ``counted`` = 0 on rows whose span is already stored (so a re-import adds nothing)."""
    days = pc.min_max(batch.column("start_time"))
    params = {"day_from": days["min"].as_py().date(), "day_to": days["max"].as_py().date(),
              "trace_ids": sorted(set(batch.column("trace_id").to_pylist()))}
    stored = clickhouse.query_arrow(STORED_SQL, params, tag=TAG_IMPORT, projects=project_id)
    if not stored.num_rows:
        return batch, 0
    keys = pc.binary_join_element_wise(batch.column("trace_id"), batch.column("span_id"), "\x00")
    known = pc.binary_join_element_wise(stored.column("trace_id"), stored.column("span_id"), "\x00")
    again = pc.is_in(keys, value_set=known)
    counted = pc.if_else(again, pa.scalar(0, pa.uint8()), batch.column("counted").cast(pa.uint8()))
    index = batch.column_names.index("counted")
    return batch.set_column(index, "counted", counted), int(pc.sum(again).as_py() or 0)


def _import_table(directory: Path, entry: dict[str, Any], table: str, project_id: int, batch_rows: int,
                  progress: Progress) -> tuple[int, int]:
    info = entry["tables"][table]
    path = directory / info["file"]
    if not path.is_file():
        raise TransferError(f"{path} is listed in the manifest but missing")
    parquet = pq.ParquetFile(path)
    missing = set(parquet.schema_arrow.names) - _target_columns(table)
    if missing:
        raise TransferError(f"{table} on the target lacks columns {sorted(missing)}: run `manage.py migrate` there first")
    done = again = 0
    for record_batch in parquet.iter_batches(batch_size=batch_rows):
        batch = pa.Table.from_batches([record_batch])
        ids = pa.array([project_id] * batch.num_rows, pa.uint32())
        batch = batch.set_column(batch.column_names.index("project_id"), "project_id", ids)
        if table == "spans":
            batch, repeated = _mark_stored(project_id, batch)
            again += repeated
        clickhouse.insert(table, batch, tag=TAG_IMPORT, project=project_id)
        done += batch.num_rows
        progress(f"{entry['slug']} {table}: {done:,}/{info['rows']:,} rows ({100 * done // max(info['rows'], 1)}%)")
    return done, again


def import_(directory: Path, *, slugs: list[str] | None = None, tables: list[str] | None = None,
            batch_rows: int = 50_000, progress: Progress = lambda _: None) -> dict[str, dict[str, int]]:
    """Insert the exported files into this installation; return rows per project and table.

    The ``<table>_again`` counts are spans that were already stored (re-imports).
    """
    manifest = read_manifest(directory)
    wanted = tables or list(TABLES)
    unknown = set(wanted) - set(TABLES)
    if unknown:
        raise TransferError(f"unknown tables {sorted(unknown)}; choose from {sorted(TABLES)}")
    entries = manifest["projects"]
    if slugs:
        missing = set(slugs) - {e["slug"] for e in entries}
        if missing:
            raise TransferError(f"the export holds no projects {sorted(missing)}")
        entries = [e for e in entries if e["slug"] in slugs]
    result: dict[str, dict[str, int]] = {}
    for entry in entries:
        project = _target_project(entry, progress)
        counts: dict[str, int] = {}
        for table in wanted:
            if table in entry["tables"]:
                counts[table], counts[f"{table}_again"] = _import_table(
                    directory, entry, table, project.pk, batch_rows, progress
                )
        result[entry["slug"]] = counts
    return result
