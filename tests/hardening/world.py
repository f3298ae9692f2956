"""Two tenants for the isolation matrix: project A ("acme") asks, project B ("globex") owns the data.

Project B gets one of everything a tenant can own — spans sent through the real OTLP/HTTP
receiver (a trace with prompt text, a custom attribute, a user, a service and a task type
of its own), a score, a price override, a classification rule, a notification channel, an
alert rule, an alert event and a simulation run — each carrying a distinctive random
*marker* string. A response to project A that contains any of B's markers is a leak.

:meth:`World.assert_b_intact` proves that nothing A tried changed B's objects.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from tests.ingest.otlp_builders import llm_span, new_span_id, post_spans, span_dict

# Token counts no other response could contain by chance.
B_INPUT_TOKENS = 918_273_645
B_OUTPUT_TOKENS = 7_315_937


def _marker(kind: str) -> str:
    return f"zq{kind}{secrets.token_hex(6)}"


def new_markers() -> dict[str, str]:
    """B's distinctive values, fresh for each world."""
    return {
        "project_name": _marker("projname"),
        "org_name": _marker("orgname"),
        "trace_id": secrets.token_hex(16),
        "model": _marker("model"),
        "override_model": _marker("override"),
        "user_id": _marker("user"),
        "session_id": _marker("session"),
        "service": _marker("svc"),
        "environment": _marker("env"),
        "task_type": _marker("task"),
        "prompt": _marker("prompt"),
        "attribute": _marker("attr"),
        "score_name": _marker("score"),
        "score_comment": _marker("scomment"),
        "class_rule_task": _marker("ctask"),
        "alert_rule": _marker("rule"),
        "channel": _marker("channel"),
        "channel_url": _marker("hookpath"),
        "alert_title": _marker("alert"),
        "sim_name": _marker("sim"),
        "input_tokens": str(B_INPUT_TOKENS),
    }


@dataclass
class World:
    """Both projects, their keys and people, B's objects (ids) and B's markers."""

    a: Any
    b: Any
    key_a: str
    key_b: str
    user_a: Any
    user_b: Any
    markers: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)
    b_secret_signing: str = ""

    # -------------------------------------------------------------- clients

    def client(self, actor: str) -> Client:
        """A test client acting as ``key_a``/``key_b`` (bearer), ``user_a``/``user_b`` (session) or ``anon``."""
        if actor.startswith("key_"):
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION="Bearer " + (self.key_a if actor == "key_a" else self.key_b))
            return api
        if actor.startswith("user_"):
            api = APIClient()
            api.force_login(self.user_a if actor == "user_a" else self.user_b)
            return api
        assert actor == "anon", actor
        return APIClient()

    def fill(self, template: str) -> str:
        """``{b_rule}``-style object ids and ``{m_model}``-style markers filled in (other braces kept)."""
        values = {**self.ids, **{f"m_{k}": v for k, v in self.markers.items()}}
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0),
                      template)

    # -------------------------------------------------------------- B unchanged

    def assert_b_intact(self) -> None:
        """Every object of B still exists and holds what it held; B's stored spans and scores are B's only."""
        from alerts.models import AlertEvent, AlertRule, Channel
        from ingest.models import ClassificationRule, ModelPrice
        from simulator.models import SimulationRun
        from thinkmeter import clickhouse
        from thinkmeter.models import ApiKey

        m = self.markers
        rule = AlertRule.objects.get(pk=self.ids["b_rule"])
        assert (rule.project_id, rule.name, rule.enabled) == (self.b.pk, m["alert_rule"], True)
        assert list(rule.channels.values_list("pk", flat=True)) == [self.ids["b_channel"]]
        channel = Channel.objects.get(pk=self.ids["b_channel"])
        assert (channel.project_id, channel.name, channel.signing_secret) == (
            self.b.pk, m["channel"], self.b_secret_signing)
        assert m["channel_url"] in channel.url
        event = AlertEvent.objects.get(pk=self.ids["b_event"])
        assert (event.project_id, event.state, event.acknowledged_by, event.snoozed_until) == (
            self.b.pk, AlertEvent.State.FIRING, "", None)
        price = ModelPrice.objects.get(pk=self.ids["b_price"])
        assert (price.project_id, price.model) == (self.b.pk, m["override_model"])
        assert ClassificationRule.objects.get(pk=self.ids["b_class_rule"]).project_id == self.b.pk
        assert SimulationRun.objects.get(pk=self.ids["b_run"]).project_id == self.b.pk
        assert AlertRule.objects.filter(project=self.b).count() == 1
        assert Channel.objects.filter(project=self.b).count() == 1
        assert ModelPrice.objects.filter(project=self.b).count() == 1
        assert ClassificationRule.objects.filter(project=self.b).count() == 1
        assert SimulationRun.objects.filter(project=self.b).count() == 1
        assert ApiKey.objects.filter(project=self.b, revoked_at__isnull=True).count() == 1
        rows = clickhouse.execute(
            "SELECT trace_id, count() AS n FROM spans WHERE project_id IN {project_ids:Array(UInt32)} "
            "GROUP BY trace_id", tag="tests.isolation", projects=self.b.pk)
        assert rows == [{"trace_id": m["trace_id"], "n": self.ids["b_span_count"]}], rows
        scores = clickhouse.execute(
            "SELECT name, comment FROM scores WHERE project_id IN {project_ids:Array(UInt32)}",
            tag="tests.isolation", projects=self.b.pk)
        assert scores == [{"name": m["score_name"], "comment": m["score_comment"]}], scores


def _b_spans(markers: dict[str, str], start: datetime) -> list[dict[str, Any]]:
    """B's trace: a root span and three LLM calls (one unpriced model, two priced by B's override)."""
    trace_id = markers["trace_id"]
    root_id = new_span_id()
    spans = [span_dict("handle " + markers["task_type"], {"http.route": "/b"}, trace_id=trace_id, span_id=root_id,
                       start_ns=int(start.timestamp()) * 1_000_000_000, duration_ms=9000)]
    attributes = {
        "thinkmeter.task_type": markers["task_type"], "thinkmeter.tier": 2, "user.id": markers["user_id"],
        "session.id": markers["session_id"], "gen_ai.prompt.0.content": "tell me " + markers["prompt"],
        "gen_ai.prompt.0.role": "user", "globex.custom": markers["attribute"],
    }
    for index, model in enumerate((markers["model"], markers["override_model"], markers["override_model"])):
        spans.append(llm_span(model, input_tokens=B_INPUT_TOKENS, output_tokens=B_OUTPUT_TOKENS,
                              reasoning_tokens=1000 + index, start=start + timedelta(seconds=1 + index),
                              attributes=attributes, trace_id=trace_id, span_id=new_span_id(),
                              parent_span_id=root_id))
    return spans


def _a_spans(start: datetime) -> list[dict[str, Any]]:
    return [llm_span("o3-mini", input_tokens=1200, output_tokens=300, reasoning_tokens=100, start=start,
                     attributes={"thinkmeter.task_type": "acme_task", "user.id": "acme-user"})]


def build_world(project: Any, other_project: Any, django_user_model: Any, settings: Any) -> World:
    """Create A's and B's keys, people and data (ClickHouse tables must be empty: use the ``ch`` fixture)."""
    from alerts.models import AlertEvent, AlertRule, Channel
    from ingest import catalog, scores
    from ingest.models import ClassificationRule, ModelPrice, PriceRate
    from simulator.models import SimulationRun
    from thinkmeter.models import SCOPES, ApiKey, Membership, Role

    settings.WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]  # B's channel points at a closed local port
    markers = new_markers()
    other_project.name = markers["project_name"]
    other_project.store_prompts = True
    other_project.monthly_budget_usd = "7654321.98"
    other_project.save()
    other_project.organization.name = markers["org_name"]
    other_project.organization.save()

    _, key_a = ApiKey.issue(project, SCOPES, name="a")
    _, key_b = ApiKey.issue(other_project, SCOPES, name="b")
    user_a = django_user_model.objects.create_user(username="alice_a", password="pw-a-123456")
    user_b = django_user_model.objects.create_user(username="bob_b", password="pw-b-123456")
    Membership.objects.create(user=user_a, organization=project.organization, role=Role.ADMIN)
    Membership.objects.create(user=user_b, organization=other_project.organization, role=Role.ADMIN)

    price = ModelPrice.objects.create(project=other_project, model=markers["override_model"], provider="openai",
                                      pattern=f"^{markers['override_model']}$", tier=2, reasoning=True,
                                      note=markers["override_model"])
    PriceRate.objects.create(model_price=price, effective_from="2020-01-01", input="1.5", output="6",
                             reasoning="6", cache_read="0.5", cache_write="2")
    catalog.invalidate()
    class_rule = ClassificationRule.objects.create(project=other_project, field="span_name", pattern="^never-matches-b$",
                                                   task_type=markers["class_rule_task"])

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    b_spans = _b_spans(markers, start)
    client = Client()
    post_spans(client, key_b, b_spans, {"service.name": markers["service"],
                                        "deployment.environment": markers["environment"]})
    post_spans(client, key_a, _a_spans(start), {"service.name": "acme-svc"})
    scores.record(scores.Score(project_id=other_project.pk, trace_id=markers["trace_id"], span_id="",
                               name=markers["score_name"], value=0.25, comment=markers["score_comment"],
                               source="test"))

    channel = Channel.objects.create(project=other_project, kind=Channel.Kind.WEBHOOK, name=markers["channel"],
                                     url=f"http://127.0.0.1:9/{markers['channel_url']}",
                                     signing_secret=Channel.new_signing_secret())
    rule = AlertRule.objects.create(project=other_project, name=markers["alert_rule"], kind=AlertRule.Kind.BUDGET,
                                    params={"cap_usd": 7654321.98})
    rule.channels.set([channel])
    now = datetime.now(UTC)
    event = AlertEvent.objects.create(project=other_project, rule=rule, rule_name=markers["alert_rule"],
                                      kind=AlertRule.Kind.BUDGET, fingerprint=markers["alert_title"],
                                      title=markers["alert_title"], value=1.0, threshold=0.5,
                                      evidence={"trace_url": f"/traces/{markers['trace_id']}/"},
                                      first_seen_at=now, last_seen_at=now)
    run = SimulationRun.objects.create(project=other_project, name=markers["sim_name"],
                                       policy={"kind": "static", "tier": 1, "thinking_budget": 0},
                                       policy_text=f"# {markers['sim_name']}\nkind: static")
    # B's secrets are markers too: no answer to anyone may carry them after creation.
    markers["key_b"] = key_b
    markers["signing_secret"] = channel.signing_secret
    world = World(a=project, b=other_project, key_a=key_a, key_b=key_b, user_a=user_a, user_b=user_b,
                  markers=markers, b_secret_signing=channel.signing_secret)
    world.ids = {
        "b_rule": rule.pk, "b_channel": channel.pk, "b_event": event.pk, "b_price": price.pk,
        "b_class_rule": class_rule.pk, "b_run": run.pk, "b_trace": markers["trace_id"],
        "b_span_count": len(b_spans), "b_slug": other_project.slug, "a_slug": project.slug,
        "b_project_pk": other_project.pk,
    }
    return world
