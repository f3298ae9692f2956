"""Liveness (``/healthz``) and readiness (``/readyz``) probes, answering JSON."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

from thinkmeter.clickhouse import ClickHouseError, schema


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
        checks["database"] = "ok" if not unapplied else f"{len(unapplied)} migrations not applied"
    except Exception as exc:  # any database failure makes us not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        missing = schema.pending()
        checks["clickhouse"] = "ok" if not missing else f"migrations not applied: {', '.join(missing)}"
    except ClickHouseError as exc:
        checks["clickhouse"] = f"error: {exc.message[:200]}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
