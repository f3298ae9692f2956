"""Web replicas share state through Redis: any replica can take any request.

Two Django processes ("replicas" A and B) share a SQLite database file and the real
Redis on 127.0.0.1:6379 (db 11, emptied first), as two web containers share PostgreSQL
and Redis. The test drives them over pipes and checks that they share the per-key rate
limit, that a price, a classification rule or a project setting changed through one is
used by the other within seconds (not at the caches' 30 s or 5 min maximum age), and
that the runaway p95 statistics computed by A are read by B from Redis: B's ClickHouse
URL points at a closed port, so B could not have computed them itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/11"
UNREACHABLE_CLICKHOUSE = "clickhouse://default:@127.0.0.1:1/default"
WINDOW = 86_400


# -- what a replica can be asked to do (runs in the replica process) ---------------------------


def _project_id() -> int:
    from thinkmeter.models import Project

    return Project.objects.get(slug="acme").pk


def take(rate: float, key: int) -> float:
    from ingest import ratelimit

    return ratelimit.limiter(rate).take(key)


def price(model: str) -> str | None:
    from ingest.catalog import catalog

    entry = catalog.match(_project_id(), model)
    rates = entry.rates_on(date.today()) if entry else None
    return str(rates.input) if rates else None


def override_price(model: str, input_rate: str) -> None:
    from ingest.models import ModelPrice, PriceRate
    from thinkmeter.models import Project

    project = Project.objects.get(slug="acme")
    mp = ModelPrice.objects.create(project=project, model=f"{model}-override", provider="openai", pattern=f"^{model}$")
    PriceRate.objects.create(model_price=mp, effective_from=date(2020, 1, 1), input=Decimal(input_rate),
                             output=Decimal("1"))


def rules() -> list[str]:
    from ingest import classify

    return [rule.task_type for rule in classify.rule_cache.rules_for(_project_id())]


def add_rule(task_type: str) -> None:
    from ingest.models import ClassificationRule

    ClassificationRule.objects.create(project_id=_project_id(), field="service", pattern="checkout", task_type=task_type)


def store_prompts() -> bool:
    from ingest import parallel

    return bool(parallel._project(_project_id()).store_prompts)  # type: ignore[attr-defined]


def set_store_prompts(value: bool) -> None:
    from thinkmeter.models import Project

    project = Project.objects.get(slug="acme")
    project.store_prompts = value
    project.save()


def ingest_demo(spans: int) -> None:
    from ingest import demo, services
    from thinkmeter.models import Project

    project = Project.objects.get(slug="acme")
    end = datetime.now(UTC).replace(microsecond=0)
    for item in demo.encoded_batches(spans, days=0.5, seed=3, end=end):
        services.ingest_payload(project, item.body, "application/x-protobuf", "gzip", "http", api_key_id=0)


def stats(max_age: float | None = None) -> dict[str, Any]:
    from alerts import stats as alert_stats

    found = alert_stats.cache.get(_project_id(), WINDOW, max_age=max_age)
    return {"classes": {f"{t}/{tier}": s.samples for (t, tier), s in sorted(found.classes.items())},
            "computed_at": found.computed_at}


COMMANDS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    take, price, override_price, rules, add_rule, store_prompts, set_store_prompts, ingest_demo, stats)}


def _serve(conn: Connection, env: dict[str, str]) -> None:
    """A replica: a Django process that runs the commands it is sent until told to stop."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    while True:
        name, args = conn.recv()
        if name == "stop":
            return
        try:
            conn.send(("ok", COMMANDS[name](*args)))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Replica:
    def __init__(self, env: dict[str, str]) -> None:
        self.conn, child = multiprocessing.get_context("spawn").Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=_serve, args=(child, env), daemon=True)
        self.process.start()

    def call(self, name: str, *args: Any) -> Any:
        self.conn.send((name, args))
        if not self.conn.poll(120):
            raise AssertionError(f"replica did not answer {name}")
        status, value = self.conn.recv()
        if status != "ok":
            raise ReplicaError(value)
        return value

    def stop(self) -> None:
        self.conn.send(("stop", ()))
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


class ReplicaError(Exception):
    pass


def _redis() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis on 127.0.0.1:6379 is not reachable ({exc})"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return client


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    _redis().flushdb()  # db 11 belongs to this test module
    tmp = tmp_path_factory.mktemp("replicas")
    base = {k: v for k, v in os.environ.items() if k not in {"CLICKHOUSE_CLUSTER", "CELERY_BROKER_URL"}}
    base.update({"DATABASE_URL": f"sqlite:///{tmp / 'shared.db'}", "REDIS_URL": REDIS_URL,
                 "DJANGO_SETTINGS_MODULE": "thinkmeter.settings", "THINKMETER_LOG_LEVEL": "WARNING"})
    env_a = {**base, "CLICKHOUSE_URL": f"chdb://{tmp / 'clickhouse-a'}"}
    for args in (["migrate", "-v", "0"], ["create_project", "acme"]):
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env_a, check=True, capture_output=True)
    a = Replica(env_a)
    b = Replica({**base, "CLICKHOUSE_URL": UNREACHABLE_CLICKHOUSE})
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def _eventually(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``check()`` held; fails after ``seconds``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not seen within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - started


def test_replicas_share_the_rate_limit(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    rate = 0.5  # a burst of one request, then one every 2 s
    assert a.call("take", rate, 101) == 0.0
    # In-process buckets would let B's first request through: the bucket is shared.
    wait = b.call("take", rate, 101)
    assert 1.0 < wait <= 2.0
    assert a.call("take", rate, 101) > 1.0
    assert b.call("take", rate, 202) == 0.0  # another key has its own bucket


def test_a_price_changed_on_one_replica_prices_on_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    before = b.call("price", "o3")
    assert before is not None and Decimal(before) != Decimal("1.234")
    a.call("override_price", "o3", "1.234")
    assert a.call("price", "o3") == "1.234000"  # the process that saved it: at once
    assert _eventually(lambda: b.call("price", "o3") == "1.234000", 10.0) < 10.0


def test_rules_and_project_settings_reach_the_other_replica_within_seconds(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    assert b.call("rules") == []
    assert b.call("store_prompts") is False
    a.call("add_rule", "checkout")
    a.call("set_store_prompts", True)
    # Both caches keep entries for 30 s; the generation makes B read again within about a second.
    assert _eventually(lambda: b.call("rules") == ["checkout"], 5.0) < 5.0
    assert _eventually(lambda: b.call("store_prompts") is True, 5.0) < 5.0


def test_runaway_statistics_computed_by_one_replica_are_used_by_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    a.call("ingest_demo", 600)
    computed = a.call("stats")
    assert sum(computed["classes"].values()) > 50
    assert b.call("stats") == computed  # from Redis, same computation
    with pytest.raises(ReplicaError, match="ClickHouse"):
        b.call("stats", 0.0)  # B computing them itself would need its (unreachable) ClickHouse


def test_redis_down_lets_requests_through_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from ingest.ratelimit import RedisTokenBucket

    bucket = RedisTokenBucket(1.0, 1.0, "redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="ingest.ratelimit"):
        assert [bucket.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    warnings = [r for r in caplog.records if "Redis cannot be reached" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request
