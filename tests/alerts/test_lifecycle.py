"""Event lifecycle and delivery bookkeeping: dedup, cooldown, grouping, states, snooze, idempotent delivery.

Deliveries go to a real HTTP receiver on 127.0.0.1; the in-process task worker
(embedded mode, no broker) runs the delivery tasks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from alerts import messages, services
from alerts.findings import CRITICAL, WARNING, Finding
from alerts.models import AlertEvent, Channel, Delivery, DeliveryAttempt, Notification
from tests.alerts.helpers import make_rule, wait_background
from tests.alerts.receiver import Answer, Receiver

# Tests whose deliveries or grouped messages run on the in-process task worker need committed data
# (transactional); the others drive everything on the test's thread and roll back.
background = pytest.mark.django_db(transaction=True)
inline = pytest.mark.django_db


def finding(key: str, value: float = 5000.0, severity: str = CRITICAL) -> Finding:
    return Finding(key=key, severity=severity, title=f"Runaway call {key}", value=value, threshold=2000.0,
                   evidence={"trace_id": key, "trace_url": f"https://tm.example/traces/{key}/", "value": value,
                             "threshold": 2000.0, "p95": 1000.0, "samples": 80, "metric": "reasoning_tokens"})


@pytest.fixture
def slack(project: Any, receiver: Receiver, allow_local: Any) -> Channel:
    receiver.validate_slack = True
    return Channel.objects.create(project=project, kind="slack", name="#alerts", url=receiver.url + "/services/T/B/X")


@background
def test_same_fingerprint_updates_one_event(project: Any, slack: Channel, receiver: Receiver) -> None:
    rule = make_rule(project, "runaway", channels=[slack])
    now = timezone.now()
    first = services.fire(rule, finding("t1"), now)
    again = services.fire(rule, finding("t1", 7000.0), now + timedelta(seconds=5))
    assert first.pk == again.pk and again.count == 2 and again.value == 7000.0
    assert AlertEvent.objects.count() == 1
    wait_background()
    assert Notification.objects.count() == 1  # the repeat within the cooldown did not notify again
    assert receiver.wait_for(1) and receiver.problems == []


@background
def test_a_burst_is_grouped_into_one_notification_with_a_count(
        project: Any, slack: Channel, receiver: Receiver) -> None:
    rule = make_rule(project, "runaway", channels=[slack], group_seconds=2)
    for i in range(6):
        services.fire(rule, finding(f"t{i}"))
    assert AlertEvent.objects.count() == 6
    assert Notification.objects.count() == 1  # the first went out at once, the other five wait for the window
    assert AlertEvent.objects.filter(notify_pending=True).count() == 5
    rule.refresh_from_db()
    assert rule.flush_due_at is not None
    wait_background()  # the flush task queued for the end of the 2 s window sends the rest as one message
    grouped = Notification.objects.order_by("-id").first()
    assert grouped is not None and grouped.events.count() == 5 and grouped.message["count"] == 5
    assert grouped.message["title"].startswith("5 alerts")
    assert AlertEvent.objects.filter(notify_pending=True).count() == 0
    assert receiver.wait_for(2)
    assert receiver.problems == []
    assert receiver.requests[1].json()["blocks"][0]["text"]["text"].startswith("5 alerts")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


@inline
def test_cooldown_reopens_instead_of_opening_anew(project: Any) -> None:
    rule = make_rule(project, "runaway", cooldown_minutes=30)
    now = timezone.now()
    event = services.fire(rule, finding("t1"), now)
    services.resolve(event, "alice", now + timedelta(minutes=1))
    reopened = services.fire(rule, finding("t1"), now + timedelta(minutes=10))
    assert reopened.pk == event.pk and reopened.state == "firing" and reopened.count == 2
    services.resolve(reopened, "alice", now + timedelta(minutes=11))
    fresh = services.fire(rule, finding("t1"), now + timedelta(minutes=50))
    assert fresh.pk != event.pk and fresh.count == 1


@inline
def test_acknowledge_resolve_snooze_and_reminders(project: Any, slack: Channel, receiver: Receiver) -> None:
    rule = make_rule(project, "runaway", channels=[slack], cooldown_minutes=10, group_seconds=0)
    now = timezone.now()
    event = services.fire(rule, finding("t1"), now)
    services.acknowledge(event, "alice", now)
    assert event.state == "acknowledged" and event.acknowledged_by == "alice"
    with pytest.raises(ValueError):
        services.acknowledge(event, "alice", now)
    # acknowledged: new occurrences are counted but bring no reminder
    services.fire(rule, finding("t1"), now + timedelta(minutes=20))
    assert services.maintenance(now + timedelta(minutes=21))["reminded"] == 0
    services.resolve(AlertEvent.objects.get(pk=event.pk), "alice", now + timedelta(minutes=22))
    assert AlertEvent.objects.get(pk=event.pk).state == "resolved"

    other = services.fire(rule, finding("t2"), now)
    services.snooze(other, now + timedelta(hours=1), "bob", now)
    for minute in (1, 2, 3):
        services.fire(rule, finding("t2"), now + timedelta(minutes=minute))
    assert services.maintenance(now + timedelta(minutes=30))["reminded"] == 0  # snoozed
    result = services.maintenance(now + timedelta(minutes=61))  # the snooze ran out: one reminder, with the count
    assert result["reminded"] == 1
    reminder = Notification.objects.filter(reason="reminder").get()
    assert reminder.message["events"][0]["new_occurrences"] == 3
    with pytest.raises(ValueError):
        services.snooze(other, now - timedelta(minutes=1), "bob", now)


@inline
def test_escalation_notifies_at_once(project: Any) -> None:
    rule = make_rule(project, "quota", limit=100, group_seconds=60)
    rule.channels.set([Channel.objects.create(project=project, kind="webhook", name="w", url="https://example.com/h")])
    now = timezone.now()
    services.fire(rule, Finding("user:u:2025-01-01", WARNING, "near", 80, 80), now)
    services.fire(rule, Finding("user:u:2025-01-01", CRITICAL, "over", 100, 100), now + timedelta(seconds=2))
    assert list(Notification.objects.order_by("id").values_list("reason", flat=True)) == ["firing", "escalated"]
    assert AlertEvent.objects.get().count == 1  # a condition is a state, not a stream of occurrences


def manual_delivery(project: Any, channel: Channel, **fields: Any) -> Delivery:
    """A notification and its delivery, created without queueing a task (the test drives the attempts)."""
    rule = make_rule(project, "runaway")
    event = services.fire(rule, finding("t1"))
    message = messages.build_message(reason="firing", project=project.slug,
                                     rule={"id": rule.pk, "name": rule.name, "kind": rule.kind},
                                     events=[services.event_brief(event)], base_url="https://tm.example",
                                     created_at=timezone.now().isoformat())
    notification = Notification.objects.create(project=project, rule=rule, reason="firing", message=message)
    return Delivery.objects.create(notification=notification, channel=channel, **fields)


@inline
def test_delivery_retries_then_is_never_sent_twice(project: Any, slack: Channel, receiver: Receiver) -> None:
    receiver.script = [Answer(500), Answer(429, {"Retry-After": "1"}), Answer(200)]
    delivery = manual_delivery(project, slack)
    first = services.attempt_delivery(delivery.pk)
    assert first.status == "retrying" and first.retry_in is not None and 1.0 <= first.retry_in <= 1.1  # backoff
    outcome = services.attempt_delivery(delivery.pk)  # early: the backoff has not passed
    assert outcome.status == "early" and outcome.retry_in is not None
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    limited = services.attempt_delivery(delivery.pk)
    assert limited.status == "retrying" and limited.retry_in == 1.0  # Retry-After honoured
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.attempt_delivery(delivery.pk).sent
    # a redelivered task message (a worker died after posting) finds it delivered: nothing is posted
    assert services.attempt_delivery(delivery.pk).status == "delivered"
    assert [r.answered for r in receiver.requests] == [500, 429, 200]
    assert list(DeliveryAttempt.objects.order_by("number").values_list("status_code", flat=True)) == [500, 429, 200]
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert receiver.requests[2].headers["idempotency-key"] == delivery.idempotency_key


@background
def test_a_claimed_delivery_is_left_to_its_worker_until_the_lease_runs_out(
        project: Any, slack: Channel, receiver: Receiver) -> None:
    now = timezone.now()
    # a worker claimed this delivery 5 s ago and is (as far as anyone knows) still posting it
    delivery = manual_delivery(project, slack, status="sending", claimed_at=now - timedelta(seconds=5), attempts=1)
    busy = services.attempt_delivery(delivery.pk, now)
    assert busy.status == "busy" and busy.retry_in == pytest.approx(25, abs=1)
    assert services.maintenance(now)["requeued"] == 0
    assert receiver.requests == []
    # that worker died: once the lease has run out, maintenance queues it again and it is delivered once
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=now - services.LEASE - timedelta(seconds=1))
    assert services.maintenance(now)["requeued"] == 1
    wait_background()
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 2 and len(receiver.requests) == 1


@background
def test_failing_channel_gives_up_after_max_attempts(project: Any, allow_local: Any, receiver: Receiver) -> None:
    receiver.default = Answer(404, body=b"no_service")
    channel = Channel.objects.create(project=project, kind="webhook", name="w", url=receiver.url + "/gone")
    rule = make_rule(project, "runaway", channels=[channel])
    services.fire(rule, finding("t1"))
    wait_background()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1 and delivery.last_status_code == 404


@inline
def test_backoff_doubles_until_the_attempts_run_out(project: Any, slack: Channel, receiver: Receiver) -> None:
    receiver.default = Answer(503, body=b"busy")
    delivery = manual_delivery(project, slack)
    delays = []
    for _ in range(services.MAX_ATTEMPTS - 1):
        outcome = services.attempt_delivery(delivery.pk)
        assert outcome.status == "retrying" and outcome.retry_in is not None
        delays.append(outcome.retry_in)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    for attempt, delay in enumerate(delays, start=1):  # 1, 2, 4, … seconds, with up to 10 % jitter
        expected = services.BACKOFF_BASE * 2 ** (attempt - 1)
        assert expected <= delay <= expected * 1.1, (attempt, delays)
    assert services.attempt_delivery(delivery.pk).status == "failed"  # the last attempt gives up
    assert services.attempt_delivery(delivery.pk).status == "failed"  # and nothing is posted again
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == services.MAX_ATTEMPTS
    assert len(receiver.requests) == services.MAX_ATTEMPTS
