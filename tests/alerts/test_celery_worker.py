"""End to end with a real Celery worker on the machine's Redis.

A runaway call goes through the real ``/v1/traces``; the writer hook finds it and queues
``alerts.fire_runaway`` on Redis; a ``celery -A thinkmeter worker -P solo`` subprocess
(same code, same test database) records the alert and delivers it to a Slack-like
receiver on 127.0.0.1 that checks the Block Kit payload and answers 500, then 429 with
Retry-After: 1, then 200. Exactly one delivery is recorded; a redelivered task message
(what a worker that died after posting leaves behind) posts nothing.

The queue name is unique per run, so concurrent test runs on one Redis do not meet.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from alerts import tasks
from alerts.models import AlertEvent, Channel, Delivery, DeliveryAttempt
from alerts.runtime import runtime
from tests.alerts.helpers import baseline, call, make_rule, send
from tests.alerts.receiver import Answer, Receiver

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 13
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
BASE_URL = "https://thinkmeter.example.com"
START_TIMEOUT = 40.0
DELIVERY_TIMEOUT = 30.0


def redis_running() -> None:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1).close()
    except OSError:
        message = f"Redis is not running on {REDIS_HOST}:{REDIS_PORT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


def database_url() -> str:
    """The test database, as DATABASE_URL for the worker process."""
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


@dataclass
class Worker:
    process: subprocess.Popen[str]
    queue: str
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines[-200:])

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """``celery -A thinkmeter worker -P solo`` on a queue of its own, pointed at the test database."""
    redis_running()
    queue = f"thinkmeter-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "thinkmeter.settings",
        "CELERY_BROKER_URL": REDIS_URL,
        "DATABASE_URL": database_url(),
        "CLICKHOUSE_URL": "chdb://" + str(tmp_path / "worker-chdb"),  # never opened by these tasks
        "THINKMETER_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "THINKMETER_BASE_URL": BASE_URL,
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "celery", "-A", "thinkmeter", "worker", "-P", "solo", "-Q", queue,
               "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--loglevel", "INFO"]
    process = subprocess.Popen(command, cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    found = Worker(process, queue)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            found.lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield found
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        reader.join(timeout=5)
        _forget_queue(queue)


def _forget_queue(queue: str) -> None:
    """Remove the run's queue and kombu's bookkeeping of it from Redis (keys and set members)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    name = queue.encode()
    try:
        for key in list(client.scan_iter("*")):
            if name in key:
                client.delete(key)
            elif key.startswith(b"_kombu.binding"):
                kind = client.type(key)
                if kind == b"set":
                    for member in client.smembers(key):
                        if name in member:
                            client.srem(key, member)
                elif kind == b"zset":
                    for member in client.zrange(key, 0, -1):
                        if name in member:
                            client.zrem(key, member)
    finally:
        client.close()


@contextmanager
def through_redis(settings: Any, queue: str) -> Iterator[None]:
    """This process queues tasks on Redis (server mode), to ``queue``, for the duration."""
    from thinkmeter.celery import app

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.ALERTS_TASK_QUEUE = queue
    reset_pools()
    app.conf.broker_url = REDIS_URL
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url = previous


def wait_until(predicate: Any, timeout: float, worker: Worker, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the Celery worker exited while waiting for {what}:\n{worker.output()}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker output:\n{worker.output()}")


def test_worker_fires_and_delivers_exactly_once_through_500_and_429(
        ch: Any, project: Any, project_key: str, settings: Any, worker: Worker) -> None:
    started = time.monotonic()
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.BASE_URL = BASE_URL
    receiver = Receiver([Answer(500, body=b"oops"), Answer(429, {"Retry-After": "1"}, b"rate_limited"),
                         Answer(200, body=b"ok")], validate_slack=True)
    receiver.start()
    try:
        # the class's history, sent before the rule exists (nothing fires), while the worker starts
        values = baseline(project_key, 60)
        p95 = sorted(values)[int(0.95 * 59)]
        slack = Channel.objects.create(project=project, kind="slack", name="#alerts",
                                       url=receiver.url + "/services/T000/B000/XXXX")
        rule = make_rule(project, "runaway", channels=[slack], group_seconds=0)
        runtime.refresh(project.pk, stats_max_age=0)
        assert worker.wait_for_line("ready.", START_TIMEOUT), f"the worker did not start:\n{worker.output()}"

        wild, calm = call(3 * p95), call(int(1.5 * p95))
        with through_redis(settings, worker.queue):
            send(project_key, [calm, wild])  # the hook queues alerts.fire_runaway on Redis
            wait_until(lambda: Delivery.objects.filter(status="delivered").exists(), DELIVERY_TIMEOUT, worker,
                       "the delivery")

            (event,) = AlertEvent.objects.all()
            assert event.rule_id == rule.pk and event.evidence["trace_id"] == wild["trace_id"]
            (delivery,) = Delivery.objects.all()
            assert delivery.channel_id == slack.pk and delivery.attempts == 3
            attempts = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
            assert [(a.status_code, a.ok) for a in attempts] == [(500, False), (429, False), (200, True)]
            assert attempts[1].retry_after == 1.0
            assert [r.answered for r in receiver.requests] == [500, 429, 200]
            assert receiver.problems == []  # every body was valid Block Kit
            # backoff after the 500, and the 429's Retry-After honoured before the third attempt
            gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
            assert gaps[0] >= 0.9 and gaps[1] >= 0.95, gaps
            payload = receiver.requests[-1].json()
            trace_url = f"{BASE_URL}/traces/{wild['trace_id']}/"
            assert trace_url in payload["text"]
            buttons = [e for block in payload["blocks"] if block["type"] == "actions" for e in block["elements"]]
            assert buttons[0]["url"] == trace_url
            assert {r.headers["idempotency-key"] for r in receiver.requests} == {delivery.idempotency_key}

            # the same task message again (a worker died after posting, the broker redelivers): no second post
            tasks.enqueue("alerts.deliver", [delivery.pk])
            assert worker.wait_for_line(f"delivery {delivery.idempotency_key} already delivered", 15), worker.output()
        assert len(receiver.requests) == 3
        log = worker.output()
        assert "Task alerts.fire_runaway[" in log and "Task alerts.deliver[" in log  # the worker did the work
        assert "Retry in" in log  # Celery retries (with countdown), not a loop inside one task
        assert Delivery.objects.count() == 1 and DeliveryAttempt.objects.count() == 3
    finally:
        receiver.stop()
    assert time.monotonic() - started < 60
