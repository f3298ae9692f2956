"""Fixtures of the fault tests: a file test database that worker processes can open too, a Redis of their own.

Named at import time, before pytest-django creates the test database; see
:func:`tests.support.databases.use_file_test_database`. A file database also lets
concurrent requests wait for each other's writes, as the served application's does,
instead of failing at once as SQLite's in-memory shared-cache database makes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import use_file_test_database
from tests.support.redis_server import RedisServer

use_file_test_database()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (persistent, on a free port); stopped at the end."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
