"""Runaway detection at ingest: spans through the real /v1/traces, real chdb rollups, the writer hook.

Transactional tests: the hook's refresher thread and the in-process task worker use
their own database connections and must see what the test committed.
"""

from __future__ import annotations

from typing import Any

import pytest

from alerts import stats
from alerts.models import AlertEvent
from alerts.runtime import runtime
from tests.alerts.helpers import baseline, call, make_rule, send, wait_background

pytestmark = pytest.mark.django_db(transaction=True)


def p95_of(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[int(0.95 * (len(ordered) - 1))])


def runaway_flags(ch: Any, project_id: int) -> dict[str, int]:
    rows = ch.execute("SELECT trace_id, max(runaway) AS r FROM spans WHERE project_id IN {project_ids:Array(UInt32)} "
                      "GROUP BY trace_id", tag="tests.alerts", projects=project_id)
    return {r["trace_id"]: int(r["r"]) for r in rows}


def test_runaway_fires_at_3x_p95_and_not_at_1_5x(ch: Any, project: Any, project_key: str, allow_local: Any) -> None:
    rule = make_rule(project, "runaway")  # multiplier 2, window 7d, at least 50 samples
    values = baseline(project_key, 60)
    stats.cache.invalidate()
    snap = runtime.refresh(project.pk, stats_max_age=0)
    (thresholds,) = snap.rules
    found = thresholds.for_class("summarize", 2)
    assert found is not None and found.samples == 60
    p95 = found.p95
    assert p95 is not None and p95 == pytest.approx(p95_of(values), rel=0.02)  # t-digest of 60 values is all but exact

    calm = call(int(1.5 * p95))
    wild = call(int(3 * p95))
    send(project_key, [calm, wild])
    wait_background()

    (event,) = AlertEvent.objects.filter(project=project)
    assert event.rule_id == rule.pk and event.kind == "runaway" and event.state == "firing"
    assert event.fingerprint == f"runaway:{rule.pk}:{wild['trace_id']}"
    evidence = event.evidence
    assert evidence["trace_url"] == f"https://thinkmeter.example.com/traces/{wild['trace_id']}/"
    assert evidence["value"] == int(3 * p95) and event.value == int(3 * p95)
    assert evidence["threshold"] == pytest.approx(2 * p95) and event.threshold == pytest.approx(2 * p95)
    assert evidence["p95"] == pytest.approx(p95) and evidence["samples"] == 60
    assert evidence["basis"] == "task class" and evidence["task_class"] == "summarize / tier 2"
    flags = runaway_flags(ch, project.pk)
    assert flags[wild["trace_id"]] == 1 and flags[calm["trace_id"]] == 0


def test_no_judgment_before_min_samples_and_other_projects_untouched(
        ch: Any, project: Any, project_key: str, other_project: Any, other_project_key: str, allow_local: Any) -> None:
    make_rule(project, "runaway")
    baseline(project_key, 30)  # fewer than 50 calls in the class
    runtime.refresh(project.pk, stats_max_age=0)
    send(project_key, [call(50_000)])
    baseline(other_project_key, 60)
    send(other_project_key, [call(50_000)])  # the other project has no rule
    wait_background()
    assert AlertEvent.objects.count() == 0


def test_a_new_rule_is_picked_up_without_restart(ch: Any, project: Any, project_key: str, allow_local: Any) -> None:
    baseline(project_key, 60)
    assert runtime.refresh(project.pk, stats_max_age=0).rules == ()
    rule = make_rule(project, "runaway", multiplier=1.5)  # saving a rule marks the snapshot stale
    assert project.pk in runtime._stale
    runtime.refresh(project.pk)
    send(project_key, [call(5_000)])
    wait_background()
    assert AlertEvent.objects.get().rule_id == rule.pk


def test_hook_cost_without_rules_is_a_lookup(ch: Any, project: Any, project_key: str) -> None:
    """Projects without runaway rules: the batch passes through unchanged."""
    from alerts import hook
    from tests.alerts.test_evaluators import spans_table

    runtime.refresh(project.pk)
    table = spans_table([{"trace_id": "a", "counted": 1, "reasoning_tokens": 10**9}])
    assert hook.before_insert(project.pk, table) is table
