"""A Celery worker killed (SIGKILL) in the middle of a delivery: the task is delivered again once, posted once.

A real worker on a Redis of the test's own takes ``alerts.deliver`` and posts to a
Slack-like receiver that holds its answer; while the worker waits for it, the worker's
whole process group is killed. The receiver sees the client vanish and delivers nothing
(``aborted``). The task was acknowledged late (``acks_late``), so its message is still in
Redis's unacknowledged set; a second worker started in its place gets it back once the
visibility timeout (here 35 s, a little over the delivery lease of 3 × the 10 s channel
timeout, so the lease of the killed attempt has run out by then) has passed, claims the
delivery and posts it: one 200 for the idempotency key, one recorded attempt (the
killed one never finished), nothing left in the broker.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from alerts import services
from alerts.models import AlertEvent, Delivery, DeliveryAttempt
from tests.alerts.receiver import Answer, Receiver
from tests.faults.alerting import answered_ok, arm_runaway_rule, runaway_calls
from tests.ingest.otlp_builders import post_spans
from tests.support.celery_worker import (
    BASE_URL,
    broker_idle,
    launch_worker,
    new_queue,
    through_redis,
    wait_until,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY_TIMEOUT = services.LEASE.total_seconds() + 5
TRANSPORT = {"visibility_timeout": VISIBILITY_TIMEOUT, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
HANG_S = 120.0  # the receiver holds its first answer longer than the test runs


def test_a_worker_killed_mid_delivery_leaves_the_task_to_be_redelivered_once_and_posted_once(
    ch: Any, project: Any, project_key: str, settings: Any, redis: RedisServer, tmp_path: Path,
) -> None:
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.BASE_URL = BASE_URL
    receiver = Receiver([Answer(200, delay=HANG_S)])
    receiver.start()
    url, queue = redis.url(), new_queue()
    first = launch_worker(url, queue, tmp_path / "chdb-1", name=f"{queue}-first", transport_options=TRANSPORT)
    second = None
    try:
        p95 = arm_runaway_rule(project, project_key, receiver.url)
        assert first.wait_for_line("ready.", 40), f"the worker did not start:\n{first.output()}"
        with through_redis(settings, queue, url):
            post_spans(Client(), project_key, runaway_calls(p95, 1))
            wait_until(lambda: len(receiver.requests) == 1, 30, first, "the worker to post")
            (delivery,) = Delivery.objects.all()
            assert delivery.status == "sending" and delivery.attempts == 1  # the worker is inside the task
            received = re.findall(r"Task alerts\.deliver\[([0-9a-f-]+)\] received", first.output())
            assert len(received) == 1, first.output()
            task_id = received[0]

            first.kill()
            wait_until(lambda: receiver.requests[0].aborted, 10, None, "the receiver to see the client vanish")

            second = launch_worker(url, queue, tmp_path / "chdb-2", name=f"{queue}-second",
                                   transport_options=TRANSPORT)
            wait_until(lambda: Delivery.objects.filter(status="delivered").exists(), VISIBILITY_TIMEOUT + 40,
                       second, "the redelivered task to post")
            wait_until(lambda: broker_idle(url, queue), 30, second, "an idle broker")
    finally:
        first.kill()
        if second is not None:
            second.stop()
        receiver.stop()

    assert AlertEvent.objects.count() == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 2
    attempts = list(DeliveryAttempt.objects.filter(delivery=delivery))
    assert [(a.number, a.status_code, a.ok) for a in attempts] == [(2, 200, True)]
    assert [(r.aborted, r.answered) for r in receiver.requests] == [(True, 0), (False, 200)]
    assert answered_ok(receiver) == {delivery.idempotency_key: 1}
    # The killed task's message reached the second worker once, and that run posted it.
    log = second.output()
    assert log.count(f"Task alerts.deliver[{task_id}] received") == 1, log
    assert f"Task alerts.deliver[{task_id}] succeeded" in log and "'delivered'" in log, log
