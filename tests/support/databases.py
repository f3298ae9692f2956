"""A test database that processes the tests start (Celery workers) can open too.

SQLite's default test database lives in memory (shared cache), which another process
cannot open, and in which concurrent writers fail at once with "database table is
locked" instead of waiting. :func:`use_file_test_database`, called by a package's
conftest at import time (before pytest-django creates the test database), names a file
for it instead, written without fsync (``PRAGMA synchronous=OFF``: a throwaway file).
PostgreSQL test databases are reachable as they are. :func:`database_url` is the test
database as ``DATABASE_URL`` for such a process.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import quote


def use_file_test_database() -> None:
    """Make the SQLite test database a file (no-op for other engines or an explicit file name)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return
    test = db.setdefault("TEST", {})
    if not test.get("NAME") or str(test["NAME"]).startswith(":memory:") or "mode=memory" in str(test["NAME"]):
        test["NAME"] = os.path.join(tempfile.gettempdir(), f"thinkmeter-test-{os.getpid()}.sqlite3")
        # a throwaway file: no fsync per commit (as fast as the in-memory default for the rest of the suite)
        db.setdefault("OPTIONS", {}).setdefault("init_command", "PRAGMA synchronous=OFF")


def database_url() -> str:
    """The test database the current connection uses, as DATABASE_URL for another process."""
    import pytest
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        assert os.path.isabs(name) and "mode=memory" not in name, f"the test database must be a file, not {name}"
        return f"sqlite:///{name}"
    if db["ENGINE"].endswith(("postgresql", "postgis")):
        auth = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
        host = f"{auth}@" if auth else ""
        return f"postgres://{host}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    pytest.fail(f"no DATABASE_URL form for {db['ENGINE']}")
