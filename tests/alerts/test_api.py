"""REST API: /api/v1/alert-rules, /api/v1/channels (masked secrets, send test), /api/v1/alerts (lifecycle)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from alerts import services
from alerts.findings import Finding
from alerts.models import AlertEvent, AlertRule, Channel
from tests.alerts.helpers import make_rule
from tests.alerts.receiver import Answer, Receiver
from tests.ingest.api_helpers import issue_key, key_client, person_client

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/abcdefghijklmnopqrstuvwx"


def test_channel_urls_and_secrets_never_come_back(project: Any, project_key: str) -> None:
    client = key_client(project_key)
    created = client.post("/api/v1/channels", {"kind": "slack", "name": "#ops", "url": SLACK_URL}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["url_masked"] == "https://hooks.slack.com/••••uvwx" and "url" not in body
    assert "T0SECRET" not in created.content.decode()
    webhook = client.post("/api/v1/channels", {"kind": "webhook", "name": "pager", "url": "https://example.com/h?t=SECRET"},
                          format="json").json()
    secret = webhook["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) > 30  # shown once, in full
    listing = client.get("/api/v1/channels")
    text = listing.content.decode()
    assert listing.status_code == 200 and "T0SECRET" not in text and "t=SECRET" not in text and secret not in text
    assert {c["name"] for c in listing.json()["results"]} == {"#ops", "pager"}
    detail = client.get(f"/api/v1/channels/{webhook['id']}").json()
    assert detail["signing_secret"].endswith("••••") and detail["signing_secret"] != secret
    rotated = client.post(f"/api/v1/channels/{webhook['id']}/rotate-secret").json()["signing_secret"]
    assert rotated != secret and Channel.objects.get(pk=webhook["id"]).signing_secret == rotated


def test_channel_urls_to_private_addresses_are_refused(project: Any, project_key: str, settings: Any) -> None:
    client = key_client(project_key)
    for url in ("http://10.0.0.8/hook", "http://169.254.169.254/latest", "http://localhost:8080/x"):
        answer = client.post("/api/v1/channels", {"kind": "webhook", "name": "x", "url": url}, format="json")
        assert answer.status_code == 400 and "url" in answer.json(), url
    settings.WEBHOOK_ALLOW_HOSTS = ["10.0.0.0/8"]
    assert client.post("/api/v1/channels", {"kind": "webhook", "name": "x", "url": "http://10.0.0.8/hook"},
                       format="json").status_code == 201


def test_send_test_reaches_the_channel(project: Any, project_key: str, allow_local: Any, receiver: Receiver) -> None:
    client = key_client(project_key)
    receiver.validate_slack = True
    channel = client.post("/api/v1/channels", {"kind": "slack", "name": "#t", "url": receiver.url + "/services/x"},
                          format="json").json()
    answer = client.post(f"/api/v1/channels/{channel['id']}/test")
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert receiver.requests and receiver.problems == []
    assert "Test notification" in receiver.requests[0].json()["text"]
    allow_local.WEBHOOK_ALLOW_HOSTS = []
    refused = client.post(f"/api/v1/channels/{channel['id']}/test")
    assert refused.status_code == 502 and "not public" in refused.json()["error"]


def test_rules_crud_with_defaults_and_validation(project: Any, project_key: str) -> None:
    client = key_client(project_key)
    channel = Channel.objects.create(project=project, kind="slack", name="#ops", url=SLACK_URL)
    created = client.post("/api/v1/alert-rules", {
        "kind": "runaway", "name": "summaries", "params": {"multiplier": 3, "window": "14d", "metric": "cost"},
        "filters": {"task_type": "summarize"}, "channels": [channel.pk]}, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["params"] == {"multiplier": 3.0, "window": "14d", "min_samples": 50, "metric": "cost",
                              "scope": "span", "absolute_cap": None}
    assert rule["filters"] == {"task_type": ["summarize"]} and rule["channels"] == [channel.pk]
    assert rule["project"] == "acme"
    bad = client.post("/api/v1/alert-rules", {"kind": "runaway", "name": "x", "params": {"multiplier": "lots",
                                                                                          "window": "forever"}},
                      format="json")
    assert bad.status_code == 400 and set(bad.json()["params"]) == {"multiplier", "window"}
    assert client.post("/api/v1/alert-rules", {"kind": "quota", "name": "q"}, format="json").status_code == 400
    assert client.post("/api/v1/alert-rules", {"kind": "nonsense", "name": "q"}, format="json").status_code == 400
    changed = client.patch(f"/api/v1/alert-rules/{rule['id']}", {"enabled": False, "params": {"multiplier": 4}},
                           format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["params"]["multiplier"] == 4.0 and changed.json()["params"]["window"] == "7d"
    assert client.patch(f"/api/v1/alert-rules/{rule['id']}", {"kind": "quota"}, format="json").status_code == 400
    assert client.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
    assert not AlertRule.objects.exists()


def test_scopes_roles_and_project_isolation(project: Any, project_key: str, other_project: Any) -> None:
    other_channel = Channel.objects.create(project=other_project, kind="slack", name="theirs", url=SLACK_URL)
    make_rule(other_project, "budget")
    reader = key_client(issue_key(project, "read"))
    assert reader.get("/api/v1/alert-rules").json()["results"] == []  # the other project's rule is invisible
    denied = reader.post("/api/v1/alert-rules", {"kind": "budget", "name": "b"}, format="json")
    assert denied.status_code == 403
    assert reader.post("/api/v1/channels", {"kind": "slack", "name": "x", "url": SLACK_URL},
                       format="json").status_code == 403
    ingest_only = key_client(issue_key(project, "ingest"))
    assert ingest_only.get("/api/v1/alerts").status_code == 403
    writer = key_client(project_key)
    foreign = writer.post("/api/v1/alert-rules", {"kind": "budget", "name": "b", "channels": [other_channel.pk]},
                          format="json")
    assert foreign.status_code == 400 and "channels" in foreign.json()
    assert writer.get(f"/api/v1/channels/{other_channel.pk}").status_code == 404
    assert writer.delete(f"/api/v1/channels/{other_channel.pk}").status_code == 404
    # people: viewers read, admins manage
    viewer = person_client(project, "viewer")
    assert viewer.get("/api/v1/alert-rules?project=acme").status_code == 200
    assert viewer.post("/api/v1/alert-rules?project=acme", {"kind": "budget", "name": "b"},
                       format="json").status_code == 403
    admin = person_client(project, "admin")
    assert admin.post("/api/v1/alert-rules?project=acme", {"kind": "budget", "name": "b"},
                      format="json").status_code == 201


def test_alerts_list_acknowledge_resolve_snooze(project: Any, project_key: str, other_project: Any) -> None:
    rule = make_rule(project, "runaway")
    event = services.fire(rule, Finding("t1", "critical", "Runaway call t1", 9000, 4000,
                                        {"trace_url": "https://tm.example/traces/t1/", "p95": 2000, "samples": 70}))
    services.fire(make_rule(other_project, "runaway"), Finding("t9", "critical", "theirs", 1, 1))
    reader = key_client(issue_key(project, "read"))
    listing = reader.get("/api/v1/alerts?state=open").json()
    assert listing["count"] == 1
    (item,) = listing["results"]
    assert item["id"] == event.pk and item["trace_url"] == "https://tm.example/traces/t1/"
    assert item["evidence"]["p95"] == 2000 and item["evidence"]["samples"] == 70 and item["threshold"] == 4000
    assert reader.post(f"/api/v1/alerts/{event.pk}/acknowledge").status_code == 403  # read scope only
    assert reader.get("/api/v1/alerts?state=bogus").status_code == 400
    client = key_client(project_key)
    acked = client.post(f"/api/v1/alerts/{event.pk}/acknowledge")
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert client.post(f"/api/v1/alerts/{event.pk}/acknowledge").status_code == 400
    snoozed = client.post(f"/api/v1/alerts/{event.pk}/snooze", {"minutes": 90}, format="json").json()
    assert snoozed["snoozed"] is True and snoozed["snoozed_until"]
    assert client.post(f"/api/v1/alerts/{event.pk}/snooze", {}, format="json").status_code == 400
    resolved = client.post(f"/api/v1/alerts/{event.pk}/resolve").json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"].startswith("key:")
    assert client.get("/api/v1/alerts?state=open").json()["count"] == 0
    theirs = AlertEvent.objects.get(project=other_project)
    assert client.post(f"/api/v1/alerts/{theirs.pk}/resolve").status_code == 404
    viewer = person_client(project, "viewer")
    assert viewer.get("/api/v1/alerts?project=acme").json()["count"] == 1
    assert viewer.post(f"/api/v1/alerts/{event.pk}/snooze", {"minutes": 5}, format="json").status_code == 403


def test_schema_documents_the_alert_api(client: Any, admin_user: Any) -> None:
    client.force_login(admin_user)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in ("/api/v1/alert-rules", "/api/v1/channels", "/api/v1/channels/{id}/test", "/api/v1/alerts",
                 "/api/v1/alerts/{id}/acknowledge", "/api/v1/alerts/{id}/snooze"):
        assert path in paths, path


def test_send_test_to_a_webhook_is_signed_with_the_channel_secret(
        project: Any, project_key: str, allow_local: Any, receiver: Receiver) -> None:
    from alerts import channels

    client = key_client(project_key)
    created = client.post("/api/v1/channels", {"kind": "webhook", "name": "pager", "url": receiver.url + "/hook"},
                          format="json").json()
    answer = client.post(f"/api/v1/channels/{created['id']}/test")
    assert answer.status_code == 200 and answer.json() == {"ok": True, "status_code": 200, "error": ""}
    (got,) = receiver.requests
    assert channels.verify_signature(created["signing_secret"], got.body, got.headers["x-thinkmeter-timestamp"],
                                     got.headers["x-thinkmeter-signature"])
    body = got.json()
    assert body["type"] == "alert.test" and body["project"] == "acme" and body["id"] == got.headers["idempotency-key"]
    assert body["events"][0]["evidence"]["trace_url"] == "https://thinkmeter.example.com/traces/"
    # an answer other than 2xx is reported as the test's failure
    receiver.default = Answer(404, body=b"no_service")
    failed = client.post(f"/api/v1/channels/{created['id']}/test")
    assert failed.status_code == 502 and failed.json()["status_code"] == 404 and "no_service" in failed.json()["error"]
