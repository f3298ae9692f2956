"""Shared REST plumbing: the exception handler that turns ClickHouse outages into 503."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from thinkmeter.clickhouse import ClickHouseError, ClickHouseUnavailable


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ClickHouseUnavailable):
        return Response({"detail": "analytics storage is unavailable; retry shortly"}, status=503,
                        headers={"Retry-After": "5"})
    if isinstance(exc, ClickHouseError):
        return Response({"detail": f"query failed ({exc.tag})"}, status=500)
    return drf_exception_handler(exc, context)
