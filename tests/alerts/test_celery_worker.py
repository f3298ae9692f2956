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

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts import tasks
from alerts.models import AlertEvent, Channel, Delivery, DeliveryAttempt
from alerts.runtime import runtime
from tests.alerts.helpers import baseline, call, make_rule, send
from tests.alerts.receiver import Answer, Receiver
from tests.support.celery_worker import BASE_URL, Worker, start_worker, through_redis, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/13"
START_TIMEOUT = 40.0
DELIVERY_TIMEOUT = 30.0


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """``celery -A thinkmeter worker -P solo`` on a queue of its own, pointed at the test database."""
    with start_worker(REDIS_URL, tmp_path / "worker-chdb") as started:
        yield started


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
        with through_redis(settings, worker.queue, REDIS_URL):
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
