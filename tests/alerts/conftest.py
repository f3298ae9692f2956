"""Fixtures of the alert tests: a Slack-like receiver on 127.0.0.1, clean alert caches, helpers.

The Celery-worker test needs the worker process to open the test database. SQLite's
default test database lives in memory, which another process cannot open, so this
module (imported at collection, before pytest-django creates the test database) names a
file for it: :func:`tests.support.databases.use_file_test_database`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import use_file_test_database

use_file_test_database()

from tests.alerts.receiver import Receiver  # noqa: E402 (after the database is named)


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
