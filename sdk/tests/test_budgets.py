"""budget_for(): recommendations from a live Thinkmeter's /api/v1/budgets, cached, with a default.

The data is made the way an application makes it: instrumented Anthropic calls with
different thinking budgets, one trace per request (``context(span_name=...)``), each
rated afterwards with ``score()``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from tests.ingest.clients.fake_provider import FakeProvider

import thinkmeter_sdk
from thinkmeter_sdk import budgets
from thinkmeter_sdk.budgets import BudgetCache

from sdk_support import Thinkmeter, anthropic_client, closed_port

pytestmark = pytest.mark.filterwarnings(
    "ignore:The model 'claude-sonnet-4-5' is deprecated", "ignore:Using Claude with claude-sonnet-4-5")

# budget → quality of each of its calls: 4096 is best (0.91); 2048 is within the default
# tolerance (0.02) of it; 1024 is not. The recommendation is therefore 2048.
QUALITY = {1024: 0.70, 2048: 0.90, 4096: 0.91}
CALLS_PER_BUDGET = 5  # the API's default min_samples


def record_traffic(thinkmeter: Thinkmeter, fake: FakeProvider) -> None:
    thinkmeter_sdk.configure(endpoint=thinkmeter.url, api_key=thinkmeter.key, tracer_provider=TracerProvider())
    thinkmeter_sdk.instrument()
    claude = anthropic_client(fake)
    for budget, quality in QUALITY.items():
        for _ in range(CALLS_PER_BUDGET):
            with thinkmeter_sdk.context(task_type="proofs", tier=2, span_name="prove") as request:
                claude.messages.create(model="claude-sonnet-4-5", max_tokens=8192,
                                       thinking={"type": "enabled", "budget_tokens": budget},
                                       messages=[{"role": "user", "content": "Prove that 37 is prime."}])
                trace_id = request.trace_id
            stored = thinkmeter_sdk.score(trace_id=trace_id, value=quality, comment="verifier")
            assert stored is not None and stored["trace_id"] == trace_id and stored["value"] == quality
    assert thinkmeter_sdk.force_flush()


def test_budget_for_returns_the_recommendation_cached(thinkmeter: Thinkmeter, fake: FakeProvider) -> None:
    record_traffic(thinkmeter, fake)
    classes = thinkmeter.get("budgets", window="7d")["classes"]
    assert {(c["task_type"], c["tier"]): c["recommended_thinking_budget"] for c in classes} == {
        ("proofs", None): 2048, ("proofs", 2): 2048}

    assert thinkmeter_sdk.budget_for("proofs", tier=2, default=999) == 2048
    assert thinkmeter_sdk.budget_for("proofs", default=999) == 2048  # the task type over every tier
    assert thinkmeter_sdk.budget_for("proofs", tier=3, default=999) == 2048  # no tier-3 row: the task type's
    assert thinkmeter_sdk.budget_for("summaries", default=999) == 999  # unknown class: the default
    with thinkmeter_sdk.context(task_type="proofs", tier=2):
        assert thinkmeter_sdk.budget_for(default=999) == 2048  # task type and tier from the context
    assert budgets.cache.fetches == 1  # one request for all of the above (TTL 300 s)

    check_ttl_and_failures()


def check_ttl_and_failures() -> None:
    """A cache with a clock of its own: refreshed after the TTL; a failure keeps the last table."""
    from thinkmeter.models import ApiKey

    now = [1000.0]
    cache = BudgetCache(ttl=60, failure_ttl=10, clock=lambda: now[0])
    assert cache.table("7d") == {("proofs", None): 2048, ("proofs", 2): 2048}
    now[0] += 59
    cache.table("7d")
    assert cache.fetches == 1
    now[0] += 2  # expired: fetched again
    assert cache.table("7d") is not None and cache.fetches == 2

    for key in ApiKey.objects.all():  # Thinkmeter now answers 401 (revoke() announces it to the key cache)
        key.revoke()
    now[0] += 61
    assert cache.table("7d") == {("proofs", None): 2048, ("proofs", 2): 2048}  # the last good table is kept
    assert cache.fetches == 3
    now[0] += 5
    cache.table("7d")
    assert cache.fetches == 3  # the failure is remembered for failure_ttl, not retried on every call
    now[0] += 6
    cache.table("7d")
    assert cache.fetches == 4


def test_unreachable_thinkmeter_gives_the_default() -> None:
    thinkmeter_sdk.configure(endpoint=f"http://127.0.0.1:{closed_port()}", api_key="tm_x",
                             tracer_provider=TracerProvider())
    assert thinkmeter_sdk.budget_for("proofs", default=4096) == 4096
    started = time.perf_counter()
    assert thinkmeter_sdk.budget_for("proofs", default=4096) == 4096
    assert time.perf_counter() - started < 0.01  # the failure is remembered: no second attempt
    assert budgets.cache.fetches == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"default": 1}, "task_type"), ({"task_type": "x", "default": -1}, "default"),
    ({"task_type": "x", "default": True}, "default"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thinkmeter_sdk.budget_for(**kwargs)


def test_parse_rejects_an_unexpected_answer() -> None:
    from thinkmeter_sdk.api_client import ThinkmeterError

    with pytest.raises(ThinkmeterError, match="classes"):
        budgets.parse_budgets({"rows": []})
