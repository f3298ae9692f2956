"""A webhook receiver that hangs never slows ingest; its delivery times out after the channel timeout.

Embedded mode (no broker: deliveries run on the in-process task worker of the serving
process, the case where ingest and a hanging delivery share a process). A runaway rule's
Slack channel points at a receiver on 127.0.0.1. Two phases of ingest requests through
the real ``/v1/traces`` over HTTP, each request carrying ordinary calls and a runaway
call that triggers the rule: first while the receiver answers at once (the baseline),
then while it holds a delivery for 30 s. The hanging phase's median request latency
stays within a generous ratio of the baseline's (no absolute timings are asserted), the
hanging delivery is still open when the phase ends (the phases really overlapped), and
the delivery attempt gives up after the channel timeout (10 s), is recorded as timed
out, and is retried and delivered once the receiver answers again.
"""

from __future__ import annotations

import http.client
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from alerts import channels
from alerts.models import AlertEvent, Delivery, DeliveryAttempt
from tests.alerts.helpers import call
from tests.alerts.receiver import Answer, Receiver
from tests.faults.alerting import answered_ok, arm_runaway_rule, runaway_calls
from tests.ingest.otlp_builders import make_request, new_trace_id
from tests.support.celery_worker import BASE_URL
from thinkmeter import background

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 10  # measured per phase (all within the 10 s the hanging attempt lasts)
ORDINARY_CALLS = 20  # per request, besides the runaway call
HANG_S = 30.0
RATIO = 3.0  # generous: a delivery on the request's path would cost the channel timeout, 10 s


class Ingest:
    """POST /v1/traces over one keep-alive HTTP connection to the live server; keeps each request's latency."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self.key = key

    def send(self, spans: list[dict[str, Any]]) -> float:
        body = make_request(spans).SerializeToString()
        started = time.perf_counter()
        self.connection.request("POST", "/v1/traces", body=body, headers={
            "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {self.key}"})
        response = self.connection.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 200, (response.status, content[:300])
        return elapsed

    def phase(self, p95: float, trace_id: str) -> list[float]:
        """REQUESTS requests, each with ordinary calls and one more runaway occurrence in ``trace_id``."""
        return [self.send([*(call(int(p95 / 2)) for _ in range(ORDINARY_CALLS)), *runaway_calls(p95, 1, trace_id)])
                for _ in range(REQUESTS)]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_hanging_webhook_receiver_never_slows_ingest_and_the_delivery_times_out(
    live_server: Any, ch: Any, project: Any, project_key: str, settings: Any,
) -> None:
    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    settings.BASE_URL = BASE_URL
    receiver = Receiver()
    receiver.start()
    try:
        p95 = arm_runaway_rule(project, project_key, receiver.url)
        ingest = Ingest(live_server.url, project_key)
        for _ in range(3):  # warm-up
            ingest.send([call(int(p95 / 2)) for _ in range(ORDINARY_CALLS)])

        # Baseline: the alert is delivered at once.
        calm_trace = new_trace_id()
        ingest.send(runaway_calls(p95, 1, calm_trace))
        wait_for(lambda: answered_ok(receiver), 30, "the baseline delivery")
        baseline = ingest.phase(p95, calm_trace)
        assert background.drain(30)

        # The receiver now holds every answer for 30 s.
        receiver.default = Answer(200, delay=HANG_S)
        hanging_trace = new_trace_id()
        ingest.send(runaway_calls(p95, 1, hanging_trace))
        wait_for(lambda: len(receiver.requests) == 2, 30, "the delivery to reach the hanging receiver")
        hung_at = time.monotonic()
        during = ingest.phase(p95, hanging_trace)
        hang = receiver.requests[1]
        assert not hang.aborted and hang.answered == 0, "the phase did not overlap the hanging delivery"
        assert time.monotonic() - hung_at < channels.TOTAL_TIMEOUT

        # The attempt gives up after the channel timeout; the retry reaches a receiver that answers again.
        receiver.default = Answer(200)
        wait_for(lambda: hang.aborted, channels.TOTAL_TIMEOUT + 10, "the delivery to time out")
        wait_for(lambda: Delivery.objects.filter(status="delivered").count() == 2, 60, "the retried delivery")
        assert background.drain(30)
    finally:
        receiver.stop()

    assert statistics.median(during) <= RATIO * statistics.median(baseline), (baseline, during)
    assert AlertEvent.objects.count() == 2
    assert AlertEvent.objects.get(fingerprint__endswith=hanging_trace).count == 1 + REQUESTS
    slow = Delivery.objects.get(notification__events__fingerprint__endswith=hanging_trace)
    first, second = DeliveryAttempt.objects.filter(delivery=slow).order_by("number")
    assert not first.ok and first.status_code is None and first.error == f"timed out after {channels.TOTAL_TIMEOUT:g} s"
    assert channels.TOTAL_TIMEOUT * 1000 * 0.95 <= first.duration_ms < (channels.TOTAL_TIMEOUT + 5) * 1000
    assert second.ok and second.status_code == 200
    assert answered_ok(receiver) == {d.idempotency_key: 1 for d in Delivery.objects.all()}
