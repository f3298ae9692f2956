"""Fixtures of the alert tests: a Slack-like receiver on 127.0.0.1, clean alert caches, helpers.

The Celery-worker test needs the worker process to open the test database. SQLite's
default test database lives in memory, which another process cannot open, so when the
suite runs on SQLite without a test database name this module (imported at collection,
before pytest-django creates the test database) names a file for it, written without
fsync (``PRAGMA synchronous=OFF``: a throwaway file). PostgreSQL test databases are
reachable as they are.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

_db = settings.DATABASES["default"]
if _db["ENGINE"].endswith("sqlite3"):
    _test = _db.setdefault("TEST", {})
    if not _test.get("NAME") or str(_test["NAME"]).startswith(":memory:") or "mode=memory" in str(_test["NAME"]):
        _test["NAME"] = os.path.join(tempfile.gettempdir(), f"thinkmeter-test-{os.getpid()}.sqlite3")
        # a throwaway file: no fsync per commit (as fast as the in-memory default for the rest of the suite)
        _options = _db.setdefault("OPTIONS", {})
        _options.setdefault("init_command", "PRAGMA synchronous=OFF")

from tests.alerts.receiver import Receiver  # noqa: E402


@pytest.fixture(autouse=True)
def clean_alert_state() -> Iterator[None]:
    """Forget in-memory snapshots and statistics around each test (databases are rolled back)."""
    from alerts import stats
    from alerts.runtime import runtime

    runtime.forget()
    stats.cache.invalidate()
    yield
    runtime.drain()
    runtime.forget()
    stats.cache.invalidate()


@pytest.fixture
def allow_local(settings: Any) -> Any:
    """Outgoing webhooks may reach 127.0.0.1 (and only that) in this test."""
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.BASE_URL = "https://thinkmeter.example.com"
    return settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()
