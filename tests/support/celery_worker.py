"""Real Celery workers for the tests, and this process queueing its tasks on Redis.

- :func:`start_worker` runs ``celery -A thinkmeter worker -P solo`` (the project's own app
  and tasks) on a queue of its own, pointed at the test database, and reads its output;
  with ``transport_options`` (a short ``visibility_timeout`` and how often unacknowledged
  messages are looked at) it runs the same worker through :mod:`tests.support.celery_main`,
  because the Celery command line cannot set broker transport options.
- :func:`through_redis`: for the duration, this process is in server mode and queues the
  alert tasks on that queue of that Redis.
- :func:`forget_queue` removes a run's queue and kombu's bookkeeping of it from Redis;
  :func:`broker_idle` tells whether anything is still queued or taken but unacknowledged.
- :func:`wait_until` polls a condition and fails with the worker's output.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from tests.support.databases import database_url

BASE_URL = "https://thinkmeter.example.com"


@dataclass
class Worker:
    process: subprocess.Popen[str]
    queue: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def output(self) -> str:
        return "".join(self.lines[-200:])

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the worker's process group if it does not exit within 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=5)

    def kill(self) -> None:
        """SIGKILL the worker's process group now (a worker that dies mid-task)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=5)


def require_redis(url: str) -> None:
    """Skip (fail in CI) when nothing listens at the Redis of ``url``."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1).close()
    except OSError:
        message = f"Redis is not running at {parts.hostname}:{parts.port}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


def new_queue() -> str:
    """A queue name unique to this run, so concurrent test runs on one Redis never meet."""
    return f"thinkmeter-test-{uuid.uuid4().hex[:12]}"


def launch_worker(redis_url: str, queue: str, store: Path, *, name: str = "",
                  transport_options: dict[str, Any] | None = None) -> Worker:
    """Start a worker process on ``queue`` of ``redis_url`` (see the module docstring)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "thinkmeter.settings",
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": database_url(),
        "CLICKHOUSE_URL": "chdb://" + str(store),  # never opened by the alert tasks
        "THINKMETER_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "THINKMETER_BASE_URL": BASE_URL,
        "PYTHONUNBUFFERED": "1",
    }
    options = ["worker", "-P", "solo", "-Q", queue, "-n", f"{name or queue}@%h", "--without-gossip",
               "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
    if transport_options:
        env["THINKMETER_TEST_BROKER_TRANSPORT_OPTIONS"] = json.dumps(transport_options)
        command = [sys.executable, "-m", "tests.support.celery_main", *options]
    else:
        command = [sys.executable, "-m", "celery", "-A", "thinkmeter", *options]
    process = subprocess.Popen(command, cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    worker = Worker(process, queue)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            worker.lines.append(line)

    worker.reader = threading.Thread(target=read, daemon=True)
    worker.reader.start()
    return worker


@contextmanager
def start_worker(redis_url: str, store: Path, *, queue: str | None = None,
                 transport_options: dict[str, Any] | None = None) -> Iterator[Worker]:
    """A worker for the duration; stopped afterwards and its queue removed from Redis."""
    require_redis(redis_url)
    worker = launch_worker(redis_url, queue or new_queue(), store, transport_options=transport_options)
    try:
        yield worker
    finally:
        worker.stop()
        forget_queue(redis_url, worker.queue)


def forget_queue(redis_url: str, queue: str) -> None:
    """Remove the run's queue and kombu's bookkeeping of it from Redis (keys and set members)."""
    import redis

    client = redis.Redis.from_url(redis_url)
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
                    for ranked in client.zrange(key, 0, -1):
                        if isinstance(ranked, bytes) and name in ranked:
                            client.zrem(key, ranked)
    except redis.ConnectionError:
        pass  # the test's own Redis is already gone, and its data with it
    finally:
        client.close()


def broker_idle(redis_url: str, queue: str) -> bool:
    """Nothing queued on ``queue`` and nothing taken but unacknowledged: no task can still run."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return client.llen(queue) == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


@contextmanager
def through_redis(settings: Any, queue: str, redis_url: str) -> Iterator[None]:
    """This process queues tasks on Redis (server mode), to ``queue``, for the duration."""
    from thinkmeter.celery import app

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = redis_url
    settings.ALERTS_TASK_QUEUE = queue
    reset_pools()
    app.conf.broker_url = redis_url
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url = previous


def wait_until(predicate: Callable[[], Any], timeout: float, worker: Worker | None, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; fail after ``timeout`` s (or when the worker exits) with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the Celery worker exited while waiting for {what}:\n{worker.output()}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker output:\n{worker.output() if worker else '(none)'}")
