"""Fixtures of the fault tests: a file test database that worker processes can open too.

Named at import time, before pytest-django creates the test database; see
:func:`tests.support.databases.use_file_test_database`. A file database also lets
concurrent requests wait for each other's writes, as the served application's does,
instead of failing at once as SQLite's in-memory shared-cache database makes them.
"""

from __future__ import annotations

from tests.support.databases import use_file_test_database

use_file_test_database()
