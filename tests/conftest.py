"""Shared fixtures for the whole suite.

At import time, before Django reads its settings, ``CLICKHOUSE_URL`` points at a fresh
embedded store in a temporary directory (unless the caller set it), so tests never
touch ``var/clickhouse``. The schema migrations are applied once per session.

Fixtures other test modules rely on (keep the names):

- ``ch``: the :mod:`thinkmeter.clickhouse` module, with every MergeTree table except
  ``thinkmeter_migrations`` truncated first;
- ``project`` / ``project_key``: organization and project "acme" and the secret of a new
  key with every scope; ``other_project`` / ``other_project_key``: the same for "globex";
- ``clickhouse_server_url``: the URL of the Debian clickhouse-server that
  ``tests/run_tests.sh`` starts (skips outside CI when it is not running; fails in CI).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

_OWN_STORE: str | None = None
if not os.environ.get("CLICKHOUSE_URL"):
    _OWN_STORE = tempfile.mkdtemp(prefix="thinkmeter-test-chdb-")
    os.environ["CLICKHOUSE_URL"] = "chdb://" + os.path.abspath(_OWN_STORE)


def _sync_settings() -> None:
    """pytest-django may have loaded the settings before this module ran: keep them in step."""
    from django.conf import settings

    if settings.configured and settings.CLICKHOUSE_URL != os.environ["CLICKHOUSE_URL"]:
        settings.CLICKHOUSE_URL = os.environ["CLICKHOUSE_URL"]


@pytest.fixture(scope="session", autouse=True)
def clickhouse_schema() -> Iterator[None]:
    """Apply the ClickHouse schema migrations once for the session."""
    _sync_settings()
    from thinkmeter.clickhouse import client, schema

    client.reset_transport()
    schema.migrate(schema.context_from_settings())
    yield
    client.reset_transport()
    if _OWN_STORE is not None:
        shutil.rmtree(_OWN_STORE, ignore_errors=True)


def clickhouse_tables() -> list[str]:
    """MergeTree-family tables of the current database, except the migrations record."""
    from thinkmeter import clickhouse

    rows = clickhouse.execute(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != 'thinkmeter_migrations' ORDER BY name",
        tag="tests.truncate",
        system=True,
    )
    return [row["name"] for row in rows]


def drop_query_condition_cache() -> None:
    """``SYSTEM DROP QUERY CONDITION CACHE`` (a SYSTEM statement takes no SETTINGS clause,
    so it bypasses execute(), which always appends log_comment)."""
    from thinkmeter import clickhouse

    transport: Any = clickhouse.transport()
    if transport.kind == "chdb":
        with transport._connection() as conn:
            conn.query("SYSTEM DROP QUERY CONDITION CACHE", "Null")


@pytest.fixture
def ch() -> ModuleType:
    """The ClickHouse module, with every data table emptied."""
    from ingest import recent
    from thinkmeter import clickhouse

    for table in clickhouse_tables():
        clickhouse.execute(f"TRUNCATE TABLE {table}", tag="tests.truncate", system=True)
    recent.index.clear()  # the in-memory dedup index must forget what the truncate removed
    # Part names are reused after TRUNCATE / DETACH+ATTACH, and ClickHouse's query condition
    # cache keys on (table, part name, condition): stale entries silently drop matching rows
    # (ClickHouse issue #116202). Forget them with the data.
    drop_query_condition_cache()
    return clickhouse


def _project(org_slug: str, project_slug: str) -> Any:
    from thinkmeter.models import Organization, Project

    org, _ = Organization.objects.get_or_create(slug=org_slug, defaults={"name": org_slug.title()})
    project, _ = Project.objects.get_or_create(
        slug=project_slug, defaults={"organization": org, "name": project_slug.title()}
    )
    return project


@pytest.fixture
def project(db: None) -> Any:
    """Organization "acme" with project "acme"."""
    return _project("acme", "acme")


def _key(project: Any) -> str:
    """The secret of a new key for ``project`` with every scope (ingest, read and write)."""
    from thinkmeter.models import SCOPES, ApiKey

    _, secret = ApiKey.issue(project, SCOPES, name="test key")
    return secret


@pytest.fixture
def project_key(project: Any) -> str:
    """The secret of a new key for ``project`` with scopes ingest, read and write."""
    return _key(project)


@pytest.fixture
def other_project(db: None) -> Any:
    """Organization "globex" with project "globex"."""
    return _project("globex", "globex")


@pytest.fixture
def other_project_key(other_project: Any) -> str:
    """The secret of a new key for ``other_project`` with scopes ingest, read and write."""
    return _key(other_project)


@pytest.fixture(scope="session")
def clickhouse_server_url() -> str:
    """URL of the Debian clickhouse-server started by tests/run_tests.sh.

    Missing outside CI: the test is skipped. Missing in CI (CI=true): the test fails,
    because a skipped transport test in CI is a check that cannot fail.
    """
    url = os.environ.get("THINKMETER_TEST_CLICKHOUSE_SERVER")
    if url:
        return url
    message = "THINKMETER_TEST_CLICKHOUSE_SERVER is not set: run the suite with `make test` (tests/run_tests.sh)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def price_catalog(request: pytest.FixtureRequest) -> None:
    """Keep the shipped price catalog loaded for every test that uses the database.

    Transactional tests flush every table when they end, including the catalog that a
    data migration loaded; reload it (and drop the in-memory snapshot) when it is gone.
    """
    uses_db = request.node.get_closest_marker("django_db") is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db", "live_server")
    )
    if not uses_db:
        return
    request.getfixturevalue("transactional_db" if _is_transactional(request) else "db")
    from ingest import catalog, catalog_loader
    from ingest.models import ModelPrice

    if not ModelPrice.objects.filter(project__isnull=True).exists():
        catalog_loader.load(catalog_loader.read())
        catalog.invalidate()


def _is_transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return any(name in request.fixturenames for name in ("transactional_db", "live_server"))
