"""``manage.py serve [--host 127.0.0.1] [--port 8000]``: the production-grade server.

Waitress (a multi-threaded WSGI server) in this one process. In embedded mode the same
process also runs the OTLP/gRPC receiver (``THINKMETER_GRPC_PORT``, 0 to disable), the
in-process task worker and the periodic scheduler, because chdb allows one process.
Static files are served by the project (no CDN), through WhiteNoise.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from thinkmeter.process_allocators import glibc

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc mallopt parameters
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 256 * 1024
ENGINE_MALLOC_CONF = "dirty_decay_ms:1000"  # chdb's jemalloc; ClickHouse's own default is 5000


def tune_malloc() -> None:
    """Keep glibc malloc from holding on to freed memory in a long-running, many-threaded server.

    glibc gives busy threads their own arena (up to 8 per core), and memory freed in one
    is rarely returned: two arenas measured 865 MiB instead of 1,101 MiB after two
    minutes of load (bench/load.py). And after a large block is freed, glibc raises its
    mmap threshold (up to 32 MiB), so later large blocks (query results, DataFrames, page
    figures) come from the heap, where fragmentation keeps them resident; a fixed
    threshold keeps blocks above it in their own mappings, returned when freed. A no-op
    off glibc.
    """
    libc = glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        log.debug("mallopt unavailable; malloc not tuned")
        return
    libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def tune_engine_allocator() -> None:
    """Have the embedded ClickHouse engine's jemalloc return freed pages after a second, not five.

    chdb's jemalloc keeps freed ("dirty") pages for ``dirty_decay_ms`` (5,000 ms, as
    ClickHouse ships) before returning them. Inserts and merges free hundreds of MiB a
    second under load, so at 10,500 spans/s with dashboards read its resident memory was
    200–470 MiB for 60–150 MiB in use. At 1,000 ms the quiet moments dropped to 100–170
    MiB and the serving process's median memory by 50–70 MiB a minute, with no loss of
    throughput (bench/load.py --rate 10500: 10,470 spans/s against 10,297). jemalloc
    reads ``JE_MALLOC_CONF`` once, when chdb is loaded, so this runs before anything
    imports it; an operator's own ``JE_MALLOC_CONF`` wins.
    """
    if "chdb" in sys.modules:
        log.warning("chdb was loaded before serve could tune its allocator; JE_MALLOC_CONF not applied")
        return
    os.environ.setdefault("JE_MALLOC_CONF", ENGINE_MALLOC_CONF)


def use_jemalloc_for_arrow() -> None:
    """Allocate Arrow buffers with pyarrow's bundled jemalloc, which returns freed memory to the OS.

    Arrow buffers (span batches from the ingest workers, query results, page data) are
    allocated and freed by dozens of request threads. pyarrow's default, mimalloc, keeps
    a heap per thread: the serving process grew ~100 MiB a minute under sustained ingest
    with dashboards read. glibc malloc (the system pool) fragments instead: its arenas grew
    89 → 235 MiB in five minutes, with the free part inside them growing 28 → 136 MiB.
    jemalloc purges dirty pages after about a second (Arrow's configuration): over five
    minutes at 80 % of capacity (bench/load.py) glibc's arenas then stayed at 65–80 MiB,
    5–10 MiB of it free. Falls back to the system allocator in a pyarrow built without
    jemalloc.
    """
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        log.info("pyarrow has no jemalloc; Arrow buffers come from the system allocator")
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


class Command(BaseCommand):
    help = "Serve Thinkmeter (web, OTLP/HTTP; in embedded mode also OTLP/gRPC, tasks and schedule)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--threads", type=int, default=64,
            help="request threads (default 64). An OTLP request holds its thread until its spans are stored, and "
                 "the writer stores every waiting request in one insert, so more threads mean larger, cheaper "
                 "inserts under load; an idle thread costs almost nothing.",
        )
        parser.add_argument("--grpc-port", type=int, default=None, help="default: THINKMETER_GRPC_PORT")
        parser.add_argument("--ingest-processes", type=int, default=None,
                            help="worker processes for decoding spans (default: THINKMETER_INGEST_PROCESSES)")

    def execute(self, *args: Any, **options: Any) -> str | None:
        tune_engine_allocator()  # before the system checks, which may open the store
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        from waitress import serve

        from thinkmeter import background
        from thinkmeter.clickhouse import client, schema
        from thinkmeter.wsgi import application

        tune_malloc()
        use_jemalloc_for_arrow()
        cfg = client.config()
        embedded = not settings.CELERY_BROKER_URL
        # Open the store now: a second embedded process fails here, with a clear message.
        pending = schema.pending()
        if pending:
            self.stderr.write(f"ClickHouse migrations not applied: {', '.join(pending)}; run `manage.py migrate`.")
            sys.exit(2)
        from ingest import spans_store

        warmed = spans_store.warm_recent_index()
        if warmed:
            self.stdout.write(f"dedup index warmed with {warmed:,} recent spans")
        grpc_port = options["grpc_port"] if options["grpc_port"] is not None else settings.OTLP_GRPC_PORT
        if grpc_port:
            from ingest.grpc_server import BindError, start_grpc_server

            try:
                start_grpc_server(f"{options['host']}:{grpc_port}")
            except BindError as exc:
                raise CommandError(f"{exc} (set THINKMETER_GRPC_PORT=0 or --grpc-port 0 to run without it)") from exc
            self.stdout.write(f"OTLP/gRPC receiver on {options['host']}:{grpc_port}")
        if embedded:
            background.start_scheduler()
        from ingest import parallel

        processes = options["ingest_processes"]
        parallel.start(settings.INGEST_PROCESSES if processes is None else processes)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(
            f"Thinkmeter on http://{options['host']}:{options['port']}  "
            f"({'embedded' if embedded else 'server'} mode, ClickHouse: {cfg.describe()})"
        )
        try:
            serve(
                application,
                host=options["host"],
                port=options["port"],
                threads=options["threads"],
                max_request_body_size=settings.OTLP_MAX_BODY_BYTES + 1024 * 1024,
                channel_timeout=120,
                ident="thinkmeter",
            )
        finally:
            from ingest import writer
            from ingest.grpc_server import stop_grpc_servers

            stop_grpc_servers(5.0)
            parallel.stop()
            writer.shutdown()
