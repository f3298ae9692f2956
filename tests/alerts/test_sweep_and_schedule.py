"""The periodic side: the runaway sweep (late spans, whole traces) and quota, budget and spike rules.

Spans go through the real /v1/traces into chdb; rules are evaluated by the same service
functions the Celery beat / in-process scheduler tasks call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from alerts import services, tasks
from alerts.models import AlertEvent, Notification, SweepState
from alerts.runtime import runtime
from tests.alerts.helpers import baseline, call, make_rule, send
from tests.ingest.otlp_builders import new_trace_id

# Everything here runs on the test's thread (the sweep and the rule evaluations are called directly),
# so the tests roll back; notifications are recorded but their deliveries are not queued.
pytestmark = pytest.mark.django_db


def soon() -> datetime:
    """The end of a sweep run right now (the scheduled sweep lags 10 s behind the clock)."""
    return timezone.now()


def test_a_late_span_is_caught_by_the_sweep(ch: Any, project: Any, project_key: str, allow_local: Any) -> None:
    values = baseline(project_key, 60)
    p95 = sorted(values)[int(0.95 * 59)]
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    late = call(3 * p95, start=three_hours_ago)
    send(project_key, [late])  # arrives before any rule is loaded in this process: the hook cannot judge it
    rule = make_rule(project, "runaway")
    assert AlertEvent.objects.count() == 0
    services.sweep_project(project, until=soon())
    (event,) = AlertEvent.objects.all()
    assert event.rule_id == rule.pk and event.evidence["trace_id"] == late["trace_id"]
    assert event.evidence["start_time"] < (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    # the statistics are read when the sweep runs: the late call itself is one of the 61 samples
    assert event.evidence["samples"] == 61 and event.evidence["threshold"] == pytest.approx(2 * p95, rel=0.03)
    # the next sweep starts where this one ended: the same span is not judged twice
    assert services.sweep_project(project, until=soon()) == 0
    assert AlertEvent.objects.get().count == 1
    assert SweepState.objects.get(project=project).swept_until > timezone.now() - timedelta(seconds=5)


def test_whole_trace_runaway_summed_by_the_sweep_including_a_late_span(
        ch: Any, project: Any, project_key: str, allow_local: Any) -> None:
    values = baseline(project_key, 60)
    p95 = sorted(values)[int(0.95 * 59)]
    rule = make_rule(project, "runaway", scope="trace")
    runtime.refresh(project.pk, stats_max_age=0)
    trace = new_trace_id()
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    send(project_key, [call(int(1.5 * p95), trace_id=trace, start=two_hours_ago)])
    assert services.sweep_project(project, until=soon()) == 0  # 1.5 × p95 so far: under 2 ×
    # the second call of the same trace arrives late (it started two hours ago)
    send(project_key, [call(int(1.5 * p95), trace_id=trace, start=two_hours_ago + timedelta(seconds=5))])
    assert services.sweep_project(project, until=soon()) == 1
    (event,) = AlertEvent.objects.filter(rule=rule)
    assert event.evidence["trace_id"] == trace and event.evidence["spans"] == 2 and event.evidence["scope"] == "trace"
    assert event.value == 2 * int(1.5 * p95)
    assert event.title.startswith("Runaway trace")


def test_quota_warns_at_80_fires_at_100_and_resolves(
        ch: Any, project: Any, project_key: str, allow_local: Any, receiver: Any) -> None:
    from alerts.models import Channel

    channel = Channel.objects.create(project=project, kind="webhook", name="ops", url=receiver.url + "/hook")
    rule = make_rule(project, "quota", limit=10_000, per="user", channels=[channel], group_seconds=0)
    send(project_key, [call(7_000, user="alice"), call(4_000, user="bob")])
    assert services.evaluate_rule(rule) == []  # 70 %: nothing
    send(project_key, [call(1_000, user="alice")])
    (warning,) = services.evaluate_rule(rule)  # 80 %
    assert warning.severity == "warning" and warning.evidence["subject"] == "alice"
    event = AlertEvent.objects.get()
    assert event.severity == "warning" and event.state == "firing"
    send(project_key, [call(2_500, user="alice")])
    (critical,) = services.evaluate_rule(rule)  # 105 %
    assert critical.severity == "critical" and critical.value == 10_500
    event.refresh_from_db()
    assert event.severity == "critical" and AlertEvent.objects.count() == 1  # the same event, escalated
    assert list(Notification.objects.order_by("id").values_list("reason", flat=True)) == ["firing", "escalated"]
    # evaluating again changes nothing and sends nothing
    services.evaluate_rule(rule)
    assert Notification.objects.count() == 2
    # the condition clears (a higher quota): resolved automatically, and announced
    rule.params = {**rule.params, "limit": 100_000}
    rule.save()
    assert services.evaluate_rule(rule) == []
    event.refresh_from_db()
    assert event.state == "resolved" and event.resolved_by == "auto"
    latest = Notification.objects.order_by("-id").first()
    assert latest is not None and latest.reason == "resolved"


def test_quota_per_session_with_filters_reads_spans(ch: Any, project: Any, project_key: str) -> None:
    rule = make_rule(project, "quota", limit=5_000, per="session", filters={"service": "test-service"})
    send(project_key, [call(3_000, session="s-1"), call(2_500, session="s-1"), call(100, session="s-2")])
    (finding,) = services.evaluate_rule(rule)
    assert finding.key.startswith("session:s-1:") and finding.severity == "critical"


def test_budget_rule_against_real_spend(ch: Any, project: Any, project_key: str) -> None:
    send(project_key, [call(20_000) for _ in range(5)])
    spent = float(ch.execute("SELECT toFloat64(sum(cost_total)) AS c FROM spans WHERE project_id IN "
                             "{project_ids:Array(UInt32)} AND counted = 1", tag="tests.alerts",
                             projects=project.pk)[0]["c"])
    assert spent > 0
    over = make_rule(project, "budget", cap_usd=spent / 2)
    (finding,) = services.evaluate_rule(over)
    assert finding.severity == "critical" and finding.value == pytest.approx(spent, rel=1e-6)
    roomy = make_rule(project, "budget", cap_usd=spent * 1000, forecast=False)
    assert services.evaluate_rule(roomy) == []


def test_spike_rule_against_real_hourly_rollup(ch: Any, project: Any, project_key: str) -> None:
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # the same hour on the previous 7 days: ~2,000 reasoning tokens each; this hour: 40,000
    history = [call(2_000 + 50 * k, start=hour - timedelta(days=k) + timedelta(minutes=1)) for k in range(1, 8)]
    send(project_key, history)
    rule = make_rule(project, "spike", metric="reasoning_tokens", z=4, min_value=5_000)
    assert services.evaluate_rule(rule, now) == []
    send(project_key, [call(40_000, start=hour + timedelta(seconds=1))])
    (finding,) = services.evaluate_rule(rule, now)
    assert finding.evidence["baseline_days"] == 7 and finding.evidence["value"] >= 40_000
    assert AlertEvent.objects.get(rule=rule).kind == "spike"


def test_periodic_tasks_are_registered_for_beat_and_the_embedded_scheduler() -> None:
    from thinkmeter.background import _seconds
    from thinkmeter.celery import app

    for name, entry in tasks.SCHEDULE.items():
        assert app.conf.beat_schedule[name]["task"] == entry["task"]
        assert entry["task"] in app.tasks
        assert _seconds(entry["schedule"]) <= 60


def test_evaluate_alerts_command_runs_everything_once(ch: Any, project: Any, project_key: str) -> None:
    import io
    import json

    from django.core.management import call_command

    make_rule(project, "quota", limit=1_000)
    make_rule(project, "runaway")
    send(project_key, [call(2_000, user="carol")])
    out = io.StringIO()
    call_command("evaluate_alerts", "--project", project.slug, stdout=out)
    result = json.loads(out.getvalue())
    assert result["evaluated"] == 1 and result["failed"] == 0 and "maintenance" in result
    assert AlertEvent.objects.get(kind="quota").evidence["subject"] == "carol"
