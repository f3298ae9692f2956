"""Alert services: everything that changes alert state.

- :func:`fire` turns a :class:`~alerts.findings.Finding` into an event: one open event per
  fingerprint (``<kind>:<rule>:<key>``); the same condition seen again updates it (a
  runaway counts one more occurrence); a condition that comes back within the rule's
  cooldown after it resolved reopens its event instead of opening a new one.
- Notifications: a new event is announced at once, unless the rule sent one within its
  grouping window (``group_seconds``): then it waits and goes out with the others as one
  message with a count (:func:`flush_group`). An escalation (warning → critical) is sent
  at once; new occurrences of a firing runaway are summed up in a reminder after the
  cooldown (:func:`maintenance`); a condition that clears is resolved automatically and,
  if it had been announced, announced as resolved. Snoozed events stay quiet.
- :func:`evaluate_rule` runs a quota, budget or spike rule; :func:`sweep_project` runs the
  runaway rules over spans ingested since the last sweep (late spans included) and over
  whole traces; :func:`record_runaway` takes what the ingest hook found.
- Deliveries: :func:`attempt_delivery` is one HTTP attempt of one notification to one
  channel, claimed by one conditional UPDATE, so a delivered notification is never
  posted again (the idempotency key is the notification and channel) — see
  :mod:`alerts.tasks`. Every attempt is kept (:class:`~alerts.models.DeliveryAttempt`).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import budget, channels, messages, queries, quota, runaway, spike, stats, subjects
from alerts.findings import SEVERITY_RANK, Finding
from alerts.models import AlertEvent, AlertRule, Channel, Delivery, DeliveryAttempt, Notification, SweepState
from alerts.params import parse_filters, parse_params
from thinkmeter.models import Project

log = logging.getLogger(__name__)
T = TypeVar("T")

OPEN = AlertEvent.OPEN_STATES
Reason = Notification.Reason
MAX_ATTEMPTS = int(getattr(settings, "ALERTS_DELIVERY_MAX_ATTEMPTS", 8))
BACKOFF_BASE = float(getattr(settings, "ALERTS_BACKOFF_BASE_SECONDS", 1.0))
BACKOFF_MAX = 600.0
LEASE = timedelta(seconds=3 * channels.TOTAL_TIMEOUT)
SWEEP_LAG = timedelta(seconds=10)  # rows ingested in the last seconds may still be in flight
SWEEP_FIRST_LOOKBACK = timedelta(minutes=10)
SWEEP_MAX_LOOKBACK = timedelta(days=1)
NO_FLOOR = 1e300


def retry_locked(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` again when SQLite (embedded mode) reports the database locked.

    Two deferred SQLite transactions that read and then write can deadlock; SQLite then
    fails one of them at once instead of waiting. The failed transaction rolled back, so
    running it again is safe. Inside an outer transaction nothing is retried.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        for attempt in range(6):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc) or transaction.get_connection().in_atomic_block or attempt == 5:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    return wrapper


def now_utc() -> datetime:
    return timezone.now().astimezone(UTC)


def base_url() -> str:
    return str(settings.BASE_URL).rstrip("/")


def fingerprint(rule: AlertRule, key: str) -> str:
    return f"{rule.kind}:{rule.pk}:{key}"[:255]


# ---------------------------------------------------------------- events

def _rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 0)


@retry_locked
def fire(rule: AlertRule, finding: Finding, now: datetime | None = None) -> AlertEvent:
    """Record that ``finding`` holds now; open, update or reopen its event and notify as due."""
    now = now or now_utc()
    for _ in range(3):
        try:
            with transaction.atomic():
                return _fire(rule, finding, now)
        except IntegrityError:  # a concurrent firing opened the event first: update that one
            continue
    raise RuntimeError(f"could not record alert {fingerprint(rule, finding.key)}")


def _apply(event: AlertEvent, finding: Finding, now: datetime, *, occurrence: bool) -> None:
    event.title = finding.title[:500]
    event.value = finding.value
    event.threshold = finding.threshold
    event.evidence = finding.evidence
    event.last_seen_at = now
    if _rank(finding.severity) > _rank(event.severity):
        event.severity = finding.severity
    if occurrence:
        event.count += 1


def _fire(rule: AlertRule, finding: Finding, now: datetime) -> AlertEvent:
    fp = fingerprint(rule, finding.key)
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    occurrence = rule.kind == AlertRule.Kind.RUNAWAY  # a runaway is an occurrence; a condition is a state
    event = AlertEvent.objects.select_for_update().filter(rule=rule, fingerprint=fp, state__in=OPEN).first()
    if event is not None:
        escalated = _rank(finding.severity) > _rank(event.severity)
        _apply(event, finding, now, occurrence=occurrence)
        event.save()
        if escalated:
            notify(event, Reason.ESCALATED, now)
        elif (occurrence and event.state == AlertEvent.State.FIRING
              and (event.last_notified_at is None or now - event.last_notified_at >= cooldown)):
            notify(event, Reason.REMINDER, now)
        return event
    recent = (AlertEvent.objects.select_for_update()
              .filter(rule=rule, fingerprint=fp, state=AlertEvent.State.RESOLVED, resolved_at__gte=now - cooldown)
              .order_by("-resolved_at").first())
    if recent is not None:
        escalated = _rank(finding.severity) > _rank(recent.severity)
        _apply(recent, finding, now, occurrence=True)
        recent.state = AlertEvent.State.FIRING
        recent.resolved_at, recent.resolved_by = None, ""
        recent.acknowledged_at, recent.acknowledged_by = None, ""
        recent.save()
        if escalated or recent.last_notified_at is None or now - recent.last_notified_at >= cooldown:
            notify(recent, Reason.ESCALATED if escalated else Reason.FIRING, now)
        return recent
    event = AlertEvent.objects.create(
        project_id=rule.project_id, rule=rule, rule_name=rule.name, kind=rule.kind, fingerprint=fp,
        severity=finding.severity, title=finding.title[:500], value=finding.value, threshold=finding.threshold,
        evidence=finding.evidence, first_seen_at=now, last_seen_at=now,
    )
    notify(event, Reason.FIRING, now)
    return event


def resolve_absent(rule: AlertRule, present: Iterable[str], now: datetime | None = None) -> int:
    """Resolve the rule's open events whose condition (fingerprint) no longer holds."""
    now = now or now_utc()
    keep = {fingerprint(rule, key) for key in present}
    resolved = 0
    for event in AlertEvent.objects.filter(rule=rule, state__in=OPEN).exclude(fingerprint__in=keep):
        _resolve(event, "auto", now, announce=True)
        resolved += 1
    return resolved


@retry_locked
def _resolve(event: AlertEvent, by: str, now: datetime, *, announce: bool) -> None:
    with transaction.atomic():
        updated = AlertEvent.objects.filter(pk=event.pk, state__in=OPEN).update(
            state=AlertEvent.State.RESOLVED, resolved_at=now, resolved_by=by[:150], notify_pending=False)
        if not updated:
            return
        event.refresh_from_db()
        if announce and event.last_notified_at is not None:
            notify(event, Reason.RESOLVED, now)


def acknowledge(event: AlertEvent, by: str, now: datetime | None = None) -> AlertEvent:
    """firing → acknowledged (no reminders; escalations still notify)."""
    if event.state != AlertEvent.State.FIRING:
        raise ValueError(f"only a firing alert can be acknowledged; this one is {event.state}")
    event.state = AlertEvent.State.ACKNOWLEDGED
    event.acknowledged_at = now or now_utc()
    event.acknowledged_by = by[:150]
    event.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    return event


def resolve(event: AlertEvent, by: str, now: datetime | None = None) -> AlertEvent:
    """→ resolved by a person (if the condition still holds, the next evaluation reopens it)."""
    if event.state == AlertEvent.State.RESOLVED:
        raise ValueError("this alert is already resolved")
    _resolve(event, by, now or now_utc(), announce=False)
    event.refresh_from_db()
    return event


def snooze(event: AlertEvent, until: datetime, by: str, now: datetime | None = None) -> AlertEvent:
    """No notifications about this event until ``until`` (occurrences are still counted)."""
    now = now or now_utc()
    if until <= now:
        raise ValueError("snooze until a time in the future")
    if until - now > timedelta(days=30):
        raise ValueError("snooze for at most 30 days")
    event.snoozed_until = until
    event.save(update_fields=["snoozed_until"])
    log.info("alert %s snoozed until %s by %s", event.pk, until.isoformat(), by)
    return event


# ---------------------------------------------------------------- notifications

def event_brief(event: AlertEvent, new_occurrences: int | None = None) -> dict[str, Any]:
    """An event as notifications and the API describe it."""
    return {
        "id": event.pk, "title": event.title, "severity": event.severity, "state": event.state,
        "kind": event.kind, "value": event.value, "threshold": event.threshold, "count": event.count,
        "new_occurrences": event.count - event.notified_count if new_occurrences is None else new_occurrences,
        "first_seen": event.first_seen_at.isoformat(), "last_seen": event.last_seen_at.isoformat(),
        "evidence": event.evidence, "url": f"{base_url()}/alerts/history/?event={event.pk}",
    }


def _snoozed(event: AlertEvent, now: datetime) -> bool:
    return event.snoozed_until is not None and event.snoozed_until > now


def notify(event: AlertEvent, reason: str, now: datetime | None = None) -> Notification | None:
    """Announce ``event`` now, or hold it for its rule's grouped message (see the module docstring)."""
    now = now or now_utc()
    rule = event.rule
    if rule is None or _snoozed(event, now):
        return None
    if reason in (Reason.FIRING, Reason.REMINDER) and rule.group_seconds:
        window = timedelta(seconds=rule.group_seconds)
        last = (Notification.objects.filter(rule=rule, reason__in=[Reason.FIRING, Reason.REMINDER])
                .order_by("-created_at").values_list("created_at", flat=True).first())
        if last is not None and now - last < window:
            AlertEvent.objects.filter(pk=event.pk).update(notify_pending=True)
            event.notify_pending = True
            _schedule_flush(rule, last + window, now)
            return None
    return send(rule, [event], reason, now)


def _schedule_flush(rule: AlertRule, due: datetime, now: datetime) -> None:
    scheduled = AlertRule.objects.filter(pk=rule.pk).filter(Q(flush_due_at__isnull=True) | Q(flush_due_at__lt=now))
    if scheduled.update(flush_due_at=due):
        rule.flush_due_at = due
        delay = max((due - now).total_seconds(), 0.0)

        def enqueue() -> None:
            from alerts import tasks

            tasks.enqueue("alerts.flush_group", [rule.pk], countdown=delay)

        transaction.on_commit(enqueue)


@retry_locked
def flush_group(rule_id: int, now: datetime | None = None) -> Notification | None:
    """Send the events of a rule that waited for its grouping window, as one message."""
    now = now or now_utc()
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            return None
        AlertRule.objects.filter(pk=rule_id).update(flush_due_at=None)
        events = [e for e in AlertEvent.objects.filter(rule=rule, notify_pending=True, state__in=OPEN)
                  .order_by("first_seen_at", "id") if not _snoozed(e, now)]
        if not events:
            return None
        return send(rule, events, Reason.FIRING, now)


def send(rule: AlertRule, events: Sequence[AlertEvent], reason: str, now: datetime | None = None) -> Notification | None:
    """Create the notification for ``events`` and queue its deliveries (when the transaction commits)."""
    now = now or now_utc()
    briefs = []
    for event in events:
        new = event.count - event.notified_count if reason != Reason.RESOLVED else 0
        briefs.append(event_brief(event, max(new, 1) if reason != Reason.RESOLVED else 0))
        AlertEvent.objects.filter(pk=event.pk).update(last_notified_at=now, notified_count=event.count,
                                                      notify_pending=False)
        event.last_notified_at, event.notified_count, event.notify_pending = now, event.count, False
    targets = list(rule.channels.filter(enabled=True))
    if not targets:
        return None
    project = Project.objects.get(pk=rule.project_id)
    message = messages.build_message(
        reason=reason, project=project.slug, rule={"id": rule.pk, "name": rule.name, "kind": rule.kind},
        events=briefs, base_url=base_url(), created_at=now.isoformat())
    notification = Notification.objects.create(project=project, rule=rule, reason=reason, message=message,
                                               created_at=now)
    notification.events.set(events)
    deliveries = [Delivery.objects.create(notification=notification, channel=channel) for channel in targets]
    ids = [d.pk for d in deliveries]

    def enqueue() -> None:
        from alerts import tasks

        for delivery_id in ids:
            tasks.enqueue("alerts.deliver", [delivery_id])

    transaction.on_commit(enqueue)
    return notification


# ---------------------------------------------------------------- deliveries

@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in: float | None = None
    sent: bool = False


def backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: 1, 2, 4, … (× up to 1.1 jitter), at most 10 minutes."""
    return min(BACKOFF_BASE * 2 ** max(attempt - 1, 0), BACKOFF_MAX) * (1 + random.random() * 0.1)


@retry_locked
def _claim(delivery_id: int, now: datetime) -> bool:
    """Take the delivery for one attempt: one conditional UPDATE, so exactly one worker wins."""
    claimable = (
        Q(status=Delivery.Status.PENDING)
        | Q(status=Delivery.Status.RETRYING, next_attempt_at__isnull=True)
        | Q(status=Delivery.Status.RETRYING, next_attempt_at__lte=now + timedelta(seconds=0.2))
        | Q(status=Delivery.Status.SENDING, claimed_at__isnull=True)
        | Q(status=Delivery.Status.SENDING, claimed_at__lt=now - LEASE)
    )
    return bool(Delivery.objects.filter(pk=delivery_id).filter(claimable).update(
        status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1))


def attempt_delivery(delivery_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """One attempt to deliver; safe to call again for the same delivery at any time.

    Claims the delivery first (:func:`_claim`): a delivered or failed one is left alone (so
    a redelivered task message posts nothing twice), one being sent by another worker
    whose lease has not run out is left to it, one whose next attempt is not due yet
    waits. Records the attempt and its outcome.
    """
    now = now or now_utc()
    if not _claim(delivery_id, now):
        current = Delivery.objects.filter(pk=delivery_id).first()
        if current is None:
            return DeliveryOutcome("missing")
        if current.status == Delivery.Status.SENDING and current.claimed_at:
            return DeliveryOutcome("busy", retry_in=max((current.claimed_at + LEASE - now).total_seconds(), 1.0))
        if current.status == Delivery.Status.RETRYING and current.next_attempt_at:
            return DeliveryOutcome("early", retry_in=max((current.next_attempt_at - now).total_seconds(), 0.5))
        log.info("delivery %s already %s; not sent again", current.idempotency_key, current.status)
        return DeliveryOutcome(current.status)
    delivery = Delivery.objects.select_related("channel", "notification").get(pk=delivery_id)
    number = delivery.attempts
    channel = delivery.channel
    if not channel.enabled:
        Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.FAILED,
                                                       last_error="the channel is disabled")
        return DeliveryOutcome(Delivery.Status.FAILED)
    body, headers = channels.render(channel.kind, delivery.notification.message, delivery.idempotency_key,
                                    channel.signing_secret)
    started = time.perf_counter()
    result = channels.post(channel.url, body, headers, allow_hosts=settings.WEBHOOK_ALLOW_HOSTS)
    duration_ms = (time.perf_counter() - started) * 1000
    return _record(delivery, number, now, result, duration_ms)


@retry_locked
def _record(delivery: Delivery, number: int, started_at: datetime, result: channels.SendResult,
            duration_ms: float) -> DeliveryOutcome:
    """Keep the attempt and move the delivery on (one transaction, writes only)."""
    finished = now_utc()
    fields = {"last_status_code": result.status_code, "last_error": result.error[:2000]}
    with transaction.atomic():
        DeliveryAttempt.objects.create(delivery=delivery, number=number, started_at=started_at,
                                       duration_ms=duration_ms, status_code=result.status_code, ok=result.ok,
                                       error=result.error[:2000], retry_after=result.retry_after)
        if result.ok:
            Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED, delivered_at=finished,
                                                           next_attempt_at=None, **fields)
            return DeliveryOutcome(Delivery.Status.DELIVERED, sent=True)
        if result.retryable and number < MAX_ATTEMPTS:
            delay = max(result.retry_after if result.retry_after is not None else backoff(number), 0.5)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.RETRYING, next_attempt_at=finished + timedelta(seconds=delay), **fields)
            log.info("delivery %s attempt %d failed (%s); retrying in %.1f s", delivery.idempotency_key, number,
                     result.error, delay)
            return DeliveryOutcome(Delivery.Status.RETRYING, retry_in=delay)
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None, **fields)
    log.warning("delivery %s failed for good after %d attempts: %s", delivery.idempotency_key, number, result.error)
    return DeliveryOutcome(Delivery.Status.FAILED)


def send_test(channel: Channel) -> channels.SendResult:
    """Send a sample message to ``channel`` now (one attempt, in the caller's thread)."""
    now = now_utc()
    message = messages.sample_message(project=channel.project.slug, channel_name=channel.name,
                                      base_url=base_url(), created_at=now.isoformat())
    body, headers = channels.render(channel.kind, message, f"tm-test-{channel.pk}-{int(now.timestamp())}",
                                    channel.signing_secret)
    return channels.post(channel.url, body, headers, allow_hosts=settings.WEBHOOK_ALLOW_HOSTS)


# ---------------------------------------------------------------- runaway

def compile_runaway(rule: AlertRule) -> runaway.RunawayRule:
    params = parse_params(rule.kind, rule.params)
    return runaway.RunawayRule.from_params(rule.pk, rule.name, params, parse_filters(rule.filters))


def record_runaway(project_id: int, items: Sequence[Sequence[Any]], now: datetime | None = None) -> int:
    """Fire what the ingest hook found: ``items`` are ``[rule id, finding dict]`` pairs."""
    now = now or now_utc()
    by_rule: dict[int, list[Finding]] = defaultdict(list)
    for rule_id, data in items:
        by_rule[int(rule_id)].append(Finding.from_dict(data))
    fired = 0
    for rule in AlertRule.objects.filter(pk__in=list(by_rule), project_id=project_id, enabled=True):
        for finding in by_rule[rule.pk]:
            fire(rule, finding, now)
            fired += 1
    return fired


def sweep_project(project: Project, now: datetime | None = None, *, until: datetime | None = None) -> int:
    """Judge spans ingested since the last sweep (and whole traces that grew) against the runaway rules.

    Reads ``ingested_at``, not ``start_time``: a span that arrives hours late is judged
    when it arrives. Spans the ingest hook already flagged are skipped; the rest are
    judged with fresh statistics (so calls that arrived before the statistics were
    loaded are caught here). Also resolves runaway events quiet for a cooldown.
    """
    now = now or now_utc()
    until = until or now - SWEEP_LAG
    state, _ = SweepState.objects.get_or_create(project=project,
                                                defaults={"swept_until": now - SWEEP_FIRST_LOOKBACK})
    since = max(state.swept_until, now - SWEEP_MAX_LOOKBACK)
    fired = 0
    if until > since:
        rules = AlertRule.objects.filter(project=project, kind=AlertRule.Kind.RUNAWAY, enabled=True)
        for rule in rules:
            try:
                fired += _sweep_rule(project, rule, since, until, now)
            except Exception as exc:
                log.exception("runaway sweep of rule %s failed", rule.pk)
                AlertRule.objects.filter(pk=rule.pk).update(last_error=f"sweep: {exc}"[:2000])
        SweepState.objects.filter(pk=state.pk).update(swept_until=until)
    _resolve_quiet_runaways(project, now)
    return fired


def _sweep_rule(project: Project, rule: AlertRule, since: datetime, until: datetime, now: datetime) -> int:
    compiled = compile_runaway(rule)
    thresholds = runaway.Thresholds(compiled, stats.cache.get(project.pk, compiled.window_seconds))
    if thresholds.minimum is None:
        return 0
    floors = {"min_tokens": NO_FLOOR, "min_cost": NO_FLOOR}
    floors["min_cost" if compiled.metric == "cost" else "min_tokens"] = thresholds.minimum
    read = queries.swept_traces if compiled.scope == "trace" else queries.swept_spans
    rows = read(project.pk, since, until, filters=compiled.filters, **floors)
    for row in rows:
        row["value"] = row["cost"] if compiled.metric == "cost" else row["reasoning_tokens"]
    findings = runaway.evaluate_rows(compiled, thresholds, rows, base_url())
    for finding in findings:
        fire(rule, finding, now)
    if findings:
        traces = [f.evidence["trace_id"] for f in findings]
        spans = None if compiled.scope == "trace" else [f.evidence["span_id"] for f in findings]
        try:
            queries.mark_runaway(project.pk, since - queries.SWEEP_HORIZON, traces, spans)
        except Exception:
            log.exception("flagging %d runaway traces failed (the alerts stand)", len(traces))
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now, last_error="")
    return len(findings)


def _resolve_quiet_runaways(project: Project, now: datetime) -> None:
    """A runaway event with no new occurrence for its rule's cooldown is over."""
    for event in (AlertEvent.objects.filter(project=project, kind=AlertRule.Kind.RUNAWAY, state__in=OPEN)
                  .select_related("rule")):
        cooldown = timedelta(minutes=event.rule.cooldown_minutes if event.rule else 60)
        if now - event.last_seen_at >= cooldown:
            _resolve(event, "auto", now, announce=False)


# ---------------------------------------------------------------- quota, budget, spike

def evaluate_rule(rule: AlertRule, now: datetime | None = None) -> list[Finding]:
    """Evaluate a quota, budget or spike rule now; fire what holds, resolve what cleared."""
    now = now or now_utc()
    params = parse_params(rule.kind, rule.params)
    filters = parse_filters(rule.filters)
    project = rule.project
    if rule.kind == AlertRule.Kind.QUOTA:
        findings = _quota_findings(project, params, filters, now)
    elif rule.kind == AlertRule.Kind.BUDGET:
        findings = _budget_findings(project, params, filters, now)
    elif rule.kind == AlertRule.Kind.SPIKE:
        findings = _spike_findings(project, params, filters, now)
    else:
        raise ValueError(f"{rule.kind} rules are evaluated at ingest and by the sweep")
    for finding in findings:
        fire(rule, finding, now)
    resolve_absent(rule, [f.key for f in findings], now)
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now, last_error="")
    return findings


def _quota_findings(project: Project, params: dict[str, Any], filters: dict[str, list[Any]],
                    now: datetime) -> list[Finding]:
    day = now.date()
    floor = float(params["warn_at"]) * float(params["limit"])
    usage = queries.quota_usage(project.pk, day, params["metric"], params["per"], filters, floor)
    return quota.evaluate(usage, params, day, subjects.describe(project, params["per"], usage, day, base_url()))


def _budget_findings(project: Project, params: dict[str, Any], filters: dict[str, list[Any]],
                     now: datetime) -> list[Finding]:
    cap = float(params["cap_usd"] if params["cap_usd"] is not None else project.monthly_budget_usd)
    if cap <= 0:
        return []
    month = budget.month_start(now)
    today = now.date()
    first_history_day = today - timedelta(days=28)
    start = min(month, datetime(first_history_day.year, first_history_day.month, first_history_day.day, tzinfo=UTC))
    spend = queries.daily_spend(project.pk, start, filters)
    mtd = sum(v for d, v in spend.items() if d >= month.date())
    history: list[float] = []
    if spend:
        day = max(min(spend), first_history_day)
        while day < today:
            history.append(spend.get(day, 0.0))
            day += timedelta(days=1)
    finding = budget.evaluate(mtd, history, cap, now, params, today_so_far=spend.get(today, 0.0))
    return [finding] if finding else []


def _spike_findings(project: Project, params: dict[str, Any], filters: dict[str, list[Any]],
                    now: datetime) -> list[Finding]:
    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(days=int(params["baseline_days"]) + 1)
    series, first_seen = queries.hourly_series(project.pk, start, params["metric"], filters)
    found = spike.evaluate(series, current, params, first_seen, partial=True)
    if found is None:
        found = spike.evaluate(series, current - timedelta(hours=1), params, first_seen)
    return [found] if found else []


# ---------------------------------------------------------------- periodic work

def evaluate_all(now: datetime | None = None) -> dict[str, int]:
    """Every enabled quota, budget and spike rule (a failing rule records its error and is skipped)."""
    now = now or now_utc()
    done = failed = 0
    for rule in AlertRule.objects.filter(enabled=True).exclude(kind=AlertRule.Kind.RUNAWAY).select_related("project"):
        try:
            evaluate_rule(rule, now)
            done += 1
        except Exception as exc:
            failed += 1
            log.exception("evaluating alert rule %s failed", rule.pk)
            AlertRule.objects.filter(pk=rule.pk).update(last_error=str(exc)[:2000], last_evaluated_at=now)
    return {"evaluated": done, "failed": failed}


def sweep_all(now: datetime | None = None) -> int:
    now = now or now_utc()
    fired = 0
    projects = Project.objects.filter(alert_rules__kind=AlertRule.Kind.RUNAWAY, alert_rules__enabled=True).distinct()
    for project in projects:
        fired += sweep_project(project, now)
    return fired


def maintenance(now: datetime | None = None) -> dict[str, int]:
    """Overdue grouped messages, reminders of new runaway occurrences, and stuck deliveries."""
    now = now or now_utc()
    flushed = 0
    for rule_id in AlertRule.objects.filter(flush_due_at__lte=now - timedelta(seconds=5)).values_list("pk", flat=True):
        flushed += flush_group(rule_id, now) is not None
    reminded = 0
    due: dict[int, list[AlertEvent]] = defaultdict(list)
    candidates = (AlertEvent.objects.filter(state=AlertEvent.State.FIRING, count__gt=F("notified_count"),
                                            notify_pending=False, rule__isnull=False)
                  .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now)).select_related("rule"))
    for event in candidates:
        assert event.rule is not None
        cooldown = timedelta(minutes=event.rule.cooldown_minutes)
        if event.last_notified_at is None or now - event.last_notified_at >= cooldown:
            due[event.rule.pk].append(event)
    for events in due.values():
        rule = events[0].rule
        assert rule is not None
        with transaction.atomic():
            reminded += send(rule, events, Reason.REMINDER, now) is not None
    requeued = 0
    stuck = Delivery.objects.filter(
        Q(status=Delivery.Status.PENDING, created_at__lte=now - timedelta(minutes=5))
        | Q(status=Delivery.Status.RETRYING, next_attempt_at__lte=now - timedelta(minutes=5))
        | Q(status=Delivery.Status.SENDING, claimed_at__lte=now - LEASE)
    ).values_list("pk", flat=True)
    ids = list(stuck)

    def enqueue() -> None:
        from alerts import tasks

        for delivery_id in ids:
            tasks.enqueue("alerts.deliver", [delivery_id])

    if ids:
        transaction.on_commit(enqueue)
        requeued = len(ids)
    return {"flushed": flushed, "reminded": reminded, "requeued": requeued}
