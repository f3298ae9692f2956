"""The alert pages: rules and channels (/alerts/), history (/alerts/history/), roles, masked URLs."""

from __future__ import annotations

from typing import Any

import pytest

from alerts import services
from alerts.findings import Finding
from alerts.models import AlertEvent, AlertRule, Channel
from tests.alerts.helpers import make_rule
from tests.ingest.api_helpers import person_client

pytestmark = pytest.mark.django_db

SECRET_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/abcdefghijklmnopqrstuvwx"


def test_rules_page_lists_rules_and_masks_channel_urls(project: Any, other_project: Any) -> None:
    channel = Channel.objects.create(project=project, kind="slack", name="#ops", url=SECRET_URL)
    make_rule(project, "runaway", channels=[channel])
    make_rule(other_project, "budget")
    viewer = person_client(project, "viewer")
    page = viewer.get("/alerts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "runaway rule" in html and "budget rule" not in html  # only the viewer's projects
    assert "#ops" in html and "https://hooks.slack.com/••••uvwx" in html and "T0SECRET" not in html
    assert 'href="/alerts/"' in html  # the nav link
    assert "New rule" not in html  # viewers do not manage
    assert viewer.post("/alerts/", {"form": "rule"}).status_code == 403


def test_admin_creates_rules_and_channels_from_the_page(project: Any) -> None:
    admin = person_client(project, "admin")
    assert "New rule" in admin.get("/alerts/").content.decode()
    created = admin.post("/alerts/", {"form": "channel", "channel-project": project.pk, "channel-kind": "webhook",
                                      "channel-name": "pager", "channel-url": "https://example.com/hook"}, follow=True)
    assert created.status_code == 200
    channel = Channel.objects.get()
    assert channel.signing_secret and channel.signing_secret in created.content.decode()  # shown this once
    assert channel.signing_secret not in admin.get("/alerts/").content.decode()
    answer = admin.post("/alerts/", {
        "form": "rule", "rule-project": project.pk, "rule-name": "per-user thinking", "rule-kind": "quota",
        "rule-params": '{"limit": 50000}', "rule-filters": '{"tier": 3}', "rule-channels": [channel.pk],
        "rule-enabled": "on", "rule-cooldown_minutes": 30, "rule-group_seconds": 60})
    assert answer.status_code == 302
    rule = AlertRule.objects.get()
    assert rule.params["limit"] == 50000 and rule.params["warn_at"] == 0.8 and rule.filters == {"tier": [3]}
    assert list(rule.channels.all()) == [channel]
    invalid = admin.post("/alerts/", {
        "form": "rule", "rule-project": project.pk, "rule-name": "bad", "rule-kind": "runaway",
        "rule-params": '{"multiplier": -2}', "rule-filters": "", "rule-cooldown_minutes": 30,
        "rule-group_seconds": 60})
    assert invalid.status_code == 200 and "multiplier" in invalid.content.decode()
    assert AlertRule.objects.count() == 1
    edited = admin.post(f"/alerts/rules/{rule.pk}/", {
        "name": "per-user thinking", "params": '{"limit": 80000}', "filters": "", "cooldown_minutes": 30,
        "group_seconds": 60})
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.params["limit"] == 80000 and rule.enabled is False and rule.filters == {}
    assert admin.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.exists()


def test_history_page_and_actions_by_role(project: Any) -> None:
    rule = make_rule(project, "runaway")
    event = services.fire(rule, Finding("t1", "critical", "Runaway call: 9,000 reasoning tokens", 9000, 4000,
                                        {"trace_id": "t1", "trace_url": "https://tm.example/traces/t1/", "p95": 2000,
                                         "samples": 70, "task_class": "summarize / tier 2"}))
    viewer = person_client(project, "viewer")
    page = viewer.get("/alerts/history/?state=open").content.decode()
    assert "Runaway call: 9,000 reasoning tokens" in page and "https://tm.example/traces/t1/" in page
    assert "over 70 calls" in page and "acknowledge</button>" not in page
    assert viewer.post(f"/alerts/history/{event.pk}/acknowledge/").status_code == 403
    engineer = person_client(project, "engineer")
    assert "acknowledge</button>" in engineer.get("/alerts/history/").content.decode()
    engineer.post(f"/alerts/history/{event.pk}/acknowledge/")
    engineer.post(f"/alerts/history/{event.pk}/snooze/", {"minutes": 60})
    event.refresh_from_db()
    assert event.state == "acknowledged" and event.acknowledged_by == "engineer-acme" and event.snoozed_until
    engineer.post(f"/alerts/history/{event.pk}/resolve/")
    assert AlertEvent.objects.get(pk=event.pk).state == "resolved"
    assert "No alerts" in engineer.get("/alerts/history/?state=open").content.decode()


def test_pages_need_login(client: Any) -> None:
    assert client.get("/alerts/").status_code == 302
    assert client.get("/alerts/history/").status_code == 302


def test_admin_never_shows_a_channel_url(project: Any, admin_client: Any) -> None:
    channel = Channel.objects.create(project=project, kind="slack", name="#ops", url=SECRET_URL)
    listing = admin_client.get("/admin/alerts/channel/").content.decode()
    form = admin_client.get(f"/admin/alerts/channel/{channel.pk}/change/")
    assert form.status_code == 200
    assert "T0SECRET" not in listing and "T0SECRET" not in form.content.decode()
    saved = admin_client.post(f"/admin/alerts/channel/{channel.pk}/change/",
                              {"project": project.pk, "kind": "slack", "name": "renamed", "url": "", "enabled": "on"})
    assert saved.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "renamed" and channel.url == SECRET_URL  # blank keeps the secret


def test_send_test_from_the_page(project: Any, allow_local: Any, receiver: Any) -> None:
    receiver.validate_slack = True
    channel = Channel.objects.create(project=project, kind="slack", name="#ops", url=receiver.url + "/services/T/B/X")
    admin = person_client(project, "admin")
    page = admin.post(f"/alerts/channels/{channel.pk}/test/", {"next": "/alerts/"}, follow=True)
    assert page.status_code == 200 and "Test message sent to “#ops” (HTTP 200)" in page.content.decode()
    (got,) = receiver.requests
    assert receiver.problems == [] and "Test notification" in got.json()["text"]
    assert person_client(project, "viewer").post(f"/alerts/channels/{channel.pk}/test/").status_code == 403
    assert len(receiver.requests) == 1
