"""Prometheus metrics of the platform itself, exposed at ``/metrics``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from thinkmeter.process_allocators import allocator_bytes

HTTP_REQUESTS = Counter("thinkmeter_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_SECONDS = Histogram("thinkmeter_http_request_seconds", "HTTP request duration", ["route"])
CLICKHOUSE_QUERY_SECONDS = Histogram("thinkmeter_clickhouse_query_seconds", "ClickHouse statement time", ["tag"])
CLICKHOUSE_ERRORS = Counter("thinkmeter_clickhouse_errors_total", "ClickHouse statements that failed", ["tag"])
SPANS_RECEIVED = Counter("thinkmeter_spans_received_total", "Spans received by the OTLP receivers", ["protocol"])
SPANS_STORED = Counter("thinkmeter_spans_stored_total", "Spans stored in ClickHouse")
SPANS_REJECTED = Counter("thinkmeter_spans_rejected_total", "Spans rejected", ["reason"])
INGEST_STAGE_SECONDS = Counter(
    "thinkmeter_ingest_stage_seconds", "Server time spent per ingest stage", ["stage"]
)
INSERT_SECONDS = Histogram("thinkmeter_insert_seconds", "Time of one span batch insert")
CLICKHOUSE_ALLOCATOR_RESIDENT = Gauge(
    "thinkmeter_clickhouse_allocator_resident_bytes",
    "Resident memory of the embedded ClickHouse engine's allocator (jemalloc), freed-but-kept pages included",
)
CLICKHOUSE_ENGINE = Gauge(
    "thinkmeter_clickhouse_engine",
    "Current metrics of the embedded ClickHouse engine: tracked memory, parts by state, caches' bytes, threads",
    ["metric"],
)
PROCESS_ALLOCATOR = Gauge(
    "thinkmeter_process_allocator_bytes",
    "Memory this process's own allocators hold: glibc malloc (in use, freed but held, mmapped) and Arrow's pool",
    ["allocator", "kind"],
)
# What grows with the store or with time in the engine: parts (merged-away ones wait for the
# table's cleanup), the mark and primary-index caches, its thread pool. A literal, so the
# query-scope check (tests/hardening/test_query_scope.py) can read it.
ENGINE_SQL = (
    "SELECT metric, value FROM system.metrics WHERE metric IN ('MemoryTracking', 'PartsActive', "
    "'PartsOutdated', 'MarkCacheBytes', 'PrimaryIndexCacheBytes', 'IndexMarkCacheBytes', 'GlobalThread', "
    "'GlobalThreadActive')"
)
ALLOCATOR_SQL = "SELECT * FROM system.jemalloc_stats"
RESIDENT = re.compile(r"^Allocated: \d+, active: \d+, metadata: \d+.*?resident: (\d+)", re.M)


class RequestMetricsMiddleware:
    """Counts requests by method, resolved route and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        HTTP_REQUESTS.labels(request.method or "", route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response


def _sample_clickhouse_memory() -> None:
    """In embedded mode, how much memory chdb tracks (queries, merges, caches); skipped on any error."""
    from thinkmeter import clickhouse
    from thinkmeter.clickhouse import client

    if client.config().kind != "chdb":
        return
    try:
        rows = clickhouse.execute(ENGINE_SQL, tag="metrics.memory", system=True)
    except Exception:  # noqa: BLE001 - a scrape never fails because storage is down
        return
    for row in rows:
        CLICKHOUSE_ENGINE.labels(row["metric"]).set(float(row["value"]))
    try:
        stats = clickhouse.execute(ALLOCATOR_SQL, tag="metrics.memory", system=True)
    except Exception:  # noqa: BLE001 - a build without jemalloc statistics
        return
    found = RESIDENT.search(str(next(iter(stats[0].values()), ""))) if stats else None
    if found:
        CLICKHOUSE_ALLOCATOR_RESIDENT.set(float(found.group(1)))


def _sample_process_allocators() -> None:
    for (allocator, kind), value in allocator_bytes().items():
        PROCESS_ALLOCATOR.labels(allocator, kind).set(value)


def metrics_view(request: HttpRequest) -> HttpResponse:
    _sample_clickhouse_memory()
    _sample_process_allocators()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
