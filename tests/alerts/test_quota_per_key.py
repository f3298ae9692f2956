"""Quotas per API key: usage counted per key that sent the spans (``spans.api_key_id``).

Spans go through the real /v1/traces with two ingest keys of one project; the rule is
evaluated by the same service function the scheduled task calls. Evidence and messages
name a key by its name and visible prefix, never by its secret.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from alerts import channels, services
from alerts.models import AlertEvent, AlertRule, Channel, Notification
from tests.alerts.helpers import call, make_rule, send
from tests.alerts.receiver import block_kit_problems
from tests.ingest.api_helpers import key_client, person_client
from thinkmeter.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(project: Any) -> dict[str, tuple[ApiKey, str]]:
    return {name: ApiKey.issue(project, scopes=("ingest",), name=name) for name in ("backend", "batch-jobs")}


def test_quota_per_key_warns_at_80_fires_at_100_and_the_other_key_stays_quiet(
        ch: Any, project: Any, project_key: str, keys: dict[str, tuple[ApiKey, str]], allow_local: Any,
        receiver: Any) -> None:
    (backend, backend_secret), (batch, batch_secret) = keys["backend"], keys["batch-jobs"]
    channel = Channel.objects.create(project=project, kind="webhook", name="ops", url=receiver.url + "/hook")
    rule = make_rule(project, "quota", limit=10_000, per="api_key", channels=[channel], group_seconds=0)
    # both keys send for the same user: a per-key quota must tell them apart
    send(backend_secret, [call(4_000, user="alice"), call(3_900, user="alice")])
    send(batch_secret, [call(7_990, user="alice")])
    assert services.evaluate_rule(rule) == []  # 79 % and 79.9 %: nothing

    send(backend_secret, [call(100, user="bob")])
    (warning,) = services.evaluate_rule(rule)  # backend at 80 %, batch-jobs still at 79.9 %
    label = f"backend ({backend.prefix}…)"
    assert warning.severity == "warning" and warning.value == 8_000 and warning.threshold == 8_000
    assert warning.key.startswith(f"api_key:{backend.pk}:")
    assert warning.evidence["subject_kind"] == "api_key" and warning.evidence["subject"] == label
    assert warning.evidence["subject_id"] == str(backend.pk)
    assert warning.evidence["api_key"] == {"id": backend.pk, "name": "backend", "prefix": backend.prefix,
                                           "revoked": False}
    assert warning.title.startswith(f"API key {label} near quota: 8,000 reasoning tokens of 10,000")

    send(backend_secret, [call(2_000)])
    (critical,) = services.evaluate_rule(rule)  # backend at 100 %
    assert critical.severity == "critical" and critical.value == 10_000 and critical.threshold == 10_000
    event = AlertEvent.objects.get()
    assert event.severity == "critical" and event.evidence["api_key"]["id"] == backend.pk
    assert list(Notification.objects.order_by("id").values_list("reason", flat=True)) == ["firing", "escalated"]

    # the other key crosses 80 % only now: its own event, named after it
    send(batch_secret, [call(10)])
    found = {f.evidence["api_key"]["name"]: f.severity for f in services.evaluate_rule(rule)}
    assert found == {"backend": "critical", "batch-jobs": "warning"}
    assert AlertEvent.objects.count() == 2

    # no secret anywhere: events, evidence, notification messages, the alerts API
    stored = json.dumps([list(AlertEvent.objects.values("title", "evidence")),
                         list(Notification.objects.values_list("message", flat=True))], default=str,
                        ensure_ascii=False)
    assert label in stored and f"batch-jobs ({batch.prefix}…)" in stored
    listing = key_client(project_key).get("/api/v1/alerts")
    assert listing.status_code == 200 and label in listing.content.decode()
    for secret in (backend_secret, batch_secret):
        assert secret not in stored and secret not in listing.content.decode()

    # as Slack shows it: valid Block Kit naming the key, with the limit and a link to that day's traces
    escalated = Notification.objects.get(reason="escalated")
    payload = channels.slack_payload(escalated.message)
    assert block_kit_problems(payload) == []
    section = next(b for b in payload["blocks"] if b["type"] == "section")["text"]["text"]
    assert f"*Subject:* {label}" in section and "*Limit:* 10,000 reasoning tokens per day" in section
    buttons = [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["text"]["text"] == "Open traces" and buttons[0]["url"] == critical.evidence["url"]
    assert critical.evidence["url"].startswith("https://thinkmeter.example.com/traces/?project=acme&range=custom")


def test_quota_per_key_on_spend_with_own_thresholds(ch: Any, project: Any,
                                                   keys: dict[str, tuple[ApiKey, str]]) -> None:
    (backend, backend_secret), (_, batch_secret) = keys["backend"], keys["batch-jobs"]
    send(backend_secret, [call(5_000) for _ in range(3)])
    send(batch_secret, [call(5_000)])
    spend = {row["api_key_id"]: row["cost"] for row in ch.execute(
        "SELECT api_key_id, toFloat64(sum(cost_total)) AS cost FROM spans "
        "WHERE project_id IN {project_ids:Array(UInt32)} AND counted = 1 GROUP BY api_key_id",
        tag="tests.alerts.key_spend", projects=project.pk)}
    assert len(spend) == 2 and spend[backend.pk] > 0
    # warn at 50 %, fire at 90 % of a limit set so that backend (3 calls) fires and batch-jobs (1 call) stays under 50 %
    limit = spend[backend.pk] / 0.95
    rule = make_rule(project, "quota", metric="cost", per="api_key", limit=limit, warn_at=0.5, fire_at=0.9)
    (finding,) = services.evaluate_rule(rule)
    assert finding.severity == "critical" and finding.evidence["api_key"]["id"] == backend.pk
    assert finding.value == pytest.approx(spend[backend.pk]) and finding.threshold == pytest.approx(0.9 * limit)
    rule.params = {**rule.params, "warn_at": 0.3}
    rule.save()
    levels = {f.evidence["api_key"]["name"]: f.severity for f in services.evaluate_rule(rule)}
    assert levels == {"backend": "critical", "batch-jobs": "warning"}  # batch-jobs at 1/3 of backend ≈ 32 %


def test_quota_per_key_with_filters_and_a_deleted_key(ch: Any, project: Any,
                                                      keys: dict[str, tuple[ApiKey, str]]) -> None:
    (backend, backend_secret), (batch, batch_secret) = keys["backend"], keys["batch-jobs"]
    other_task = {"thinkmeter.task_type": "classify", "thinkmeter.tier": 1}
    send(backend_secret, [call(6_000), call(6_000, task=other_task)])
    send(batch_secret, [call(9_000, task=other_task)])
    rule = make_rule(project, "quota", limit=5_000, per="api_key", filters={"task_type": "summarize"})
    (finding,) = services.evaluate_rule(rule)
    assert finding.evidence["api_key"]["id"] == backend.pk and finding.value == 6_000
    # a key deleted after it sent spans is named by its id; a revoked one keeps its name
    backend_id = backend.pk
    backend.delete()
    batch.revoke()
    everything = make_rule(project, "quota", limit=5_000, per="api_key")
    named = {f.evidence["subject"]: f.evidence["api_key"] for f in services.evaluate_rule(everything)}
    assert named == {
        f"#{backend_id} (deleted)": {"id": backend_id, "deleted": True},
        f"batch-jobs ({batch.prefix}…)": {"id": batch.pk, "name": "batch-jobs", "prefix": batch.prefix,
                                          "revoked": True},
    }


def test_spans_without_a_key_belong_to_no_keys_quota(ch: Any, project: Any) -> None:
    from ingest import services as ingest_services
    from ingest.decode import decode
    from tests.ingest.otlp_builders import make_request

    body = make_request([call(50_000)]).SerializeToString()
    batch = decode(body, "application/x-protobuf")
    ingest_services.record_batch(project, batch, "http", 0)  # a row written without a key (api_key_id 0)
    rule = make_rule(project, "quota", limit=1_000, per="api_key")
    assert services.evaluate_rule(rule) == []


def test_per_key_quota_rules_through_the_api_and_the_page(project: Any, project_key: str) -> None:
    client = key_client(project_key)
    created = client.post("/api/v1/alert-rules", {"kind": "quota", "name": "per key", "params": {
        "per": "api_key", "metric": "cost", "limit": 25}}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["params"] == {"metric": "cost", "per": "api_key", "limit": 25.0, "warn_at": 0.8,
                                        "fire_at": 1.0, "period": "day"}
    bad = client.post("/api/v1/alert-rules", {"kind": "quota", "name": "x", "params": {"per": "team", "limit": 1}},
                      format="json")
    assert bad.status_code == 400 and "user, session, api_key" in bad.json()["params"]["per"]
    admin = person_client(project, "admin")
    page = admin.get("/alerts/").content.decode()
    assert "per key" in page and "per=api_key" in page and "user | session | api_key" in page
    answer = admin.post("/alerts/", {
        "form": "rule", "rule-project": project.pk, "rule-name": "key thinking", "rule-kind": "quota",
        "rule-params": '{"limit": 50000, "per": "api_key"}', "rule-filters": "", "rule-enabled": "on",
        "rule-cooldown_minutes": 30, "rule-group_seconds": 60})
    assert answer.status_code == 302
    assert AlertRule.objects.get(name="key thinking").params["per"] == "api_key"


def test_quota_links_open_the_trace_explorer_on_that_day(ch: Any, project: Any, project_key: str,
                                                          allow_local: Any) -> None:
    alice, bob = call(9_000, user="alice"), call(9_500, user="bob")
    send(project_key, [alice, bob])
    (finding,) = services.evaluate_rule(make_rule(project, "quota", limit=9_200, per="user", warn_at=1.0))
    url = finding.evidence["url"]
    assert url.startswith("https://thinkmeter.example.com/traces/?") and "user=bob" in url
    page = person_client(project, "engineer").get(url.removeprefix("https://thinkmeter.example.com"))
    html = page.content.decode()
    assert page.status_code == 200 and bob["trace_id"] in html and alice["trace_id"] not in html
