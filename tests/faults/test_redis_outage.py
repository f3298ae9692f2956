"""Redis (the Celery broker) down while alerts are pending: deliveries resume when it returns, none lost, none doubled.

A redis-server of the test's own (persistence on, as deployed) and a real Celery worker
on it; this process ingests through the real ``/v1/traces`` in server mode (alert tasks
queued on that Redis). Three runaway alerts fire and their first delivery attempts get
503 with Retry-After: 3 from the Slack-like receiver, so their retries are waiting in
the broker when Redis is stopped. While it is down, ingest keeps answering 200 and three
more runaway calls arrive (their alerts cannot be queued yet). Redis comes back: the
worker reconnects, the waiting retries are delivered again (short visibility timeout),
the ingest side queues what it held, and each of the six alerts reaches the receiver
exactly once (one 2xx per idempotency key), with nothing left in the broker afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from alerts.models import AlertEvent, Delivery
from tests.alerts.receiver import Answer, Receiver
from tests.faults.alerting import answered_ok, arm_runaway_rule, runaway_calls
from tests.ingest.otlp_builders import post_spans
from tests.support.celery_worker import BASE_URL, broker_idle, start_worker, through_redis, wait_until
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, DURING = 3, 3  # alerts fired before the outage (retries pending) and during it
RETRY_AFTER_S = 3
OUTAGE_S = 4.0
# Messages a worker took but could not acknowledge go back to the queue after this long.
TRANSPORT = {"visibility_timeout": 6, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


def test_alert_deliveries_resume_after_redis_returns_none_lost_none_doubled(
    ch: Any, project: Any, project_key: str, settings: Any, redis: RedisServer, tmp_path: Path,
) -> None:
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.BASE_URL = BASE_URL
    receiver = Receiver([Answer(503, {"Retry-After": str(RETRY_AFTER_S)}, b"busy")] * BEFORE)
    receiver.start()
    url = redis.url()
    try:
        with start_worker(url, tmp_path / "worker-chdb", transport_options=TRANSPORT) as worker:
            p95 = arm_runaway_rule(project, project_key, receiver.url)
            assert worker.wait_for_line("ready.", 40), f"the worker did not start:\n{worker.output()}"
            with through_redis(settings, worker.queue, url):
                post_spans(Client(), project_key, runaway_calls(p95, BEFORE))
                wait_until(lambda: Delivery.objects.filter(status="retrying").count() == BEFORE, 30, worker,
                           "the first attempts (answered 503)")
                assert [r.answered for r in receiver.requests] == [503] * BEFORE

                redis.stop()  # the retries wait in the broker
                stopped = time.monotonic()
                client = Client()
                for span in runaway_calls(p95, DURING):
                    post_spans(client, project_key, [span])  # ingest answers 200 without Redis
                time.sleep(max(OUTAGE_S - (time.monotonic() - stopped), 0))
                redis.start()

                wait_until(lambda: Delivery.objects.filter(status="delivered").count() == BEFORE + DURING, 90,
                           worker, "every delivery after Redis returned")
                wait_until(lambda: broker_idle(url, worker.queue), 30, worker, "an idle broker")
            assert worker.process.poll() is None, "the worker did not survive the outage"
    finally:
        receiver.stop()

    events = AlertEvent.objects.filter(project=project)
    assert events.count() == BEFORE + DURING
    deliveries = list(Delivery.objects.all())
    assert len(deliveries) == BEFORE + DURING and {d.status for d in deliveries} == {"delivered"}
    keys = {d.idempotency_key for d in deliveries}
    assert answered_ok(receiver) == {key: 1 for key in keys}  # none lost, none doubled
    assert sorted(r.answered for r in receiver.requests) == [200] * (BEFORE + DURING) + [503] * BEFORE
