"""Liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import pytest
from django.test import Client


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_when_ready(client: Client, ch: ModuleType) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "clickhouse": "ok"}}


@pytest.mark.django_db
def test_readyz_when_clickhouse_is_unreachable(client: Client, settings: object) -> None:
    from thinkmeter.clickhouse import client as ch_client

    # A server URL where nothing listens (port 1): readiness must fail, not hang or 500.
    settings.CLICKHOUSE_URL = "clickhouse://default:@127.0.0.1:1/default"  # type: ignore[attr-defined]
    ch_client.reset_transport()
    try:
        response = client.get("/readyz")
    finally:
        ch_client.reset_transport()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["clickhouse"].startswith("error:")


@pytest.mark.django_db
def test_metrics(client: Client, ch: ModuleType) -> None:
    client.get("/healthz")
    ch.execute("SELECT 1", tag="tests.metrics", system=True)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "thinkmeter_http_requests_total" in text
    assert 'thinkmeter_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert "thinkmeter_clickhouse_query_seconds" in text
    assert 'thinkmeter_clickhouse_query_seconds_count{tag="tests.metrics"}' in text
    assert "thinkmeter_clickhouse_errors_total" in text
    # The embedded engine's own figures, read from its system.metrics on each scrape.
    for metric in ("MemoryTracking", "PartsActive", "PartsOutdated", "MarkCacheBytes", "GlobalThread"):
        assert re.search(rf'^thinkmeter_clickhouse_engine\{{metric="{metric}"\}} [0-9.e+]+$', text, re.M), metric
    threads = re.search(r'^thinkmeter_clickhouse_engine\{metric="GlobalThread"\} ([0-9.e+]+)$', text, re.M)
    assert threads and float(threads.group(1)) >= 1  # the engine runs at least one thread of its pool
    # This process's own allocators: glibc malloc (Debian's libc) and Arrow's pool, once pyarrow is
    # loaded (ingest loads it; the scrape never imports it itself).
    importlib.import_module("pyarrow")
    text = client.get("/metrics").content.decode()
    held = {(m.group(1), m.group(2)): float(m.group(3)) for m in re.finditer(
        r'^thinkmeter_process_allocator_bytes\{allocator="(\w+)",kind="(\w+)"\} ([0-9.e+]+)$', text, re.M)}
    assert held[("glibc", "in_use")] > 1_000_000 and ("glibc", "free_held") in held and ("glibc", "mmapped") in held
    assert any(allocator.startswith("arrow_") for allocator, _ in held)
