"""Worker processes for the CPU-bound part of ingest (decode, normalize, price, Arrow).

Python runs one thread at a time, so on a multi-core machine one process cannot keep up
with OTLP traffic. ``manage.py serve`` starts a pool of worker processes; a request
hands its raw body to a worker and gets back an Arrow table (IPC bytes), which the
group-commit writer of the serving process stores. Workers never open ClickHouse, so
embedded mode stays single-process for chdb. They read projects, prices and rules from
the Django database (each with its own short-lived cache).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

_pool: ProcessPoolExecutor | None = None
PROJECT_CACHE_S = 30.0


@dataclass(frozen=True)
class Prepared:
    table: pa.Table
    rejected: int
    errors: list[str]
    stages: dict[str, float]


def start(processes: int) -> None:
    """Start ``processes`` workers (0 keeps everything in-process)."""
    global _pool
    if processes <= 0 or _pool is not None:
        return
    _pool = ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
    )
    # Warm every worker now, so the first requests don't pay for Django start-up.
    list(_pool.map(_ping, range(processes * 2)))


def stop() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def running() -> bool:
    return _pool is not None


def prepare(project_id: int, body: bytes, content_type: str, encoding: str, api_key_id: int) -> Prepared:
    """Prepare one request body in a worker; its rows record ``api_key_id`` (the sending key)."""
    assert _pool is not None
    ipc, rejected, errors, stages = _pool.submit(
        _prepare, project_id, body, content_type, encoding, api_key_id
    ).result()
    table = pa.ipc.open_stream(ipc).read_all()
    return Prepared(table, rejected, errors, stages)


# --- worker side -------------------------------------------------------------------------

_projects: dict[int, tuple[float, str | None, object]] = {}  # (read at, generation, project)


def _init_worker() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
    import django

    django.setup()


def _ping(_: int) -> int:
    return os.getpid()


def _project(project_id: int) -> object:
    """The project, read again after PROJECT_CACHE_S or when any process saved a project."""
    from thinkmeter import generations
    from thinkmeter.models import Project

    now = time.monotonic()
    generation = generations.projects.current()
    cached = _projects.get(project_id)
    if cached is None or now - cached[0] > PROJECT_CACHE_S or cached[1] != generation:
        cached = (now, generation, Project.objects.get(pk=project_id))
        _projects[project_id] = cached
    return cached[2]


def _prepare(
    project_id: int, body: bytes, content_type: str, encoding: str, api_key_id: int
) -> tuple[bytes, int, list[str], dict[str, float]]:
    from ingest import services

    batch = services.decode_payload(body, content_type, encoding)
    table = services.prepare(_project(project_id), batch, api_key_id)  # type: ignore[arg-type]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    stages = dict(services.STAGES)
    services.STAGES.clear()
    return sink.getvalue().to_pybytes(), batch.rejected, batch.errors, stages
