"""Fixtures for the SDK's tests, which run in the repository's test session.

The root ``tests/conftest.py`` only applies to ``tests/``; this module imports it (which
points ``CLICKHOUSE_URL`` at a temporary embedded store before Django reads its settings)
and re-exports the fixtures the end-to-end tests need: ``clickhouse_schema`` (session,
autouse), ``price_catalog`` (autouse), ``ch``, ``project``, ``project_key``. A live
Thinkmeter is pytest-django's ``live_server`` (same process: chdb is single-process).

The real ``openai`` and ``anthropic`` clients talk to the fake provider of
``tests/ingest/clients/fake_provider.py`` on 127.0.0.1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `pytest sdk/tests` alone: make the repository's `tests` package importable
    sys.path.insert(0, str(REPO))

import tests.conftest as root  # noqa: E402 - must follow the sys.path fix
from tests.ingest.clients.fake_provider import FakeProvider  # noqa: E402

import thinkmeter_sdk  # noqa: E402
from thinkmeter_sdk import _log, _state, budgets  # noqa: E402

from sdk_support import Spans, Thinkmeter  # noqa: E402

clickhouse_schema = root.clickhouse_schema
price_catalog = root.price_catalog
ch = root.ch
project = root.project
project_key = root.project_key


@pytest.fixture(autouse=True)
def sdk_state() -> Iterator[None]:
    """Every test starts and ends with no configuration, no instrumentation and empty caches."""
    yield
    thinkmeter_sdk.uninstrument()
    thinkmeter_sdk.shutdown()
    _state.current.settings = None
    budgets.cache.clear()
    _log.reset()


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorder = Spans()
    yield recorder
    recorder.provider.shutdown()


@pytest.fixture
def instrumented(spans: Spans) -> Spans:
    """openai and anthropic instrumented, our spans going to ``spans`` (content capture off)."""
    outcome = thinkmeter_sdk.instrument(tracer_provider=spans.provider, capture_content=False)
    assert set(outcome.values()) == {"instrumented"}, outcome
    return spans


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeProvider]:
    """The fake provider in its default shape (Anthropic thinking tokens not reported)."""
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="session")
def fake_thinking() -> Iterator[FakeProvider]:
    """The fake provider in the newer Anthropic shape (usage reports thinking tokens).

    Its response ids start far above ``fake``'s, so the two never collide in one project.
    """
    with FakeProvider(anthropic_report_thinking_tokens=True) as provider:
        for _ in range(100_000):
            provider.next_id("messages")
        yield provider


@pytest.fixture
def thinkmeter(live_server: Any, ch: Any, project: Any, project_key: str) -> Thinkmeter:
    """A live Thinkmeter with empty ClickHouse tables and a key of project "acme"."""
    from ingest import catalog

    catalog.invalidate()  # the database was flushed and the catalog reloaded: drop the in-memory snapshot
    return Thinkmeter(live_server.url, project_key, project.pk)
