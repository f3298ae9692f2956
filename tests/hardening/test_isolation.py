"""Tenant isolation: every URL of the site, asked by project A for project B's objects and data.

The matrix below has one entry per named URL pattern (enumerated from the resolver: a
new endpoint or page without an entry fails :func:`test_every_url_has_a_matrix_entry`).
Each entry lists probes made by A's project key or by A's admin (a session): B's object
ids in the path, ``?project=<B's slug>``, B's values as filters. A probe passes when:

- the status is the one expected (403/404 for B's objects; 200 for A's own views, which
  must then be free of B's data; a form error where a form offers only A's choices);
- no response body (nor Location header) contains any of B's markers — random strings
  planted in B's names, attributes, prompt text, secrets and token counts — except the
  ones the probe itself sent;
- afterwards every object of B is unchanged (:meth:`World.assert_b_intact`).

A *control* probe made by B's own key or admin must see a named marker first: it proves
the marker is really reachable through that URL, so its absence from A's answers means
something (a test that could not fail would be worthless). The Django admin, which is
for operators (staff and superusers), is covered separately: a member of A who is not
staff is sent to the admin login on every admin URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import plotly
import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.hardening.world import World, build_world
from tests.ingest.otlp_builders import llm_span, make_request, new_span_id

pytestmark = pytest.mark.django_db

DENY = frozenset({403, 404})
NOT_FOUND = frozenset({404})
OK = frozenset({200})
TO_LOGIN = frozenset({302})


@dataclass(frozen=True)
class Probe:
    """One request: who, how, where (``{b_rule}``/``{m_model}`` placeholders), what body, which statuses."""

    actor: str
    method: str
    path: str
    expect: frozenset[int]
    body: Any = None
    form: bool = False
    check: Callable[[Any], bool] | None = None  # on the parsed JSON answer (or the text of a page)


@dataclass(frozen=True)
class Entry:
    probes: tuple[Probe, ...]
    control: Probe | None = None
    control_marker: str = ""
    public: str = ""  # why the URL has no project data (then no control)


def get(actor: str, path: str, expect: frozenset[int] = OK, check: Callable[[Any], bool] | None = None) -> Probe:
    return Probe(actor, "GET", path, expect, check=check)


def post(actor: str, path: str, body: Any = None, expect: frozenset[int] = NOT_FOUND, form: bool = False) -> Probe:
    return Probe(actor, "POST", path, expect, body=body if body is not None else {}, form=form)


def each_method(actor: str, path: str, body: dict[str, Any]) -> tuple[Probe, ...]:
    return (get(actor, path, NOT_FOUND), Probe(actor, "PUT", path, NOT_FOUND, body=body),
            Probe(actor, "PATCH", path, NOT_FOUND, body=body), Probe(actor, "DELETE", path, NOT_FOUND))


def empty(key: str) -> Callable[[Any], bool]:
    return lambda data: data[key] == []


def no_usage(data: Any) -> bool:
    """Usage rows of nothing: no rows, or a totals row of zero requests."""
    return all(int(row["requests"]) == 0 for row in data["rows"])


def results_empty(data: Any) -> bool:
    return data["results"] == [] and data.get("count", 0) == 0


B = "?project={b_slug}"
POLICY = {"kind": "static", "tier": 1, "thinking_budget": 0}
RULE_BODY = {"kind": "budget", "name": "mine", "params": {}, "channels": []}
CHANNEL_BODY = {"kind": "webhook", "name": "mine", "url": "http://127.0.0.1:9/mine"}
PRICE_BODY = {"model": "a-model", "provider": "openai", "pattern": "^a-model$", "tier": 1,
              "rates": [{"effective_from": "2024-01-01", "input": "1", "output": "2"}]}
SCORE_BODY = {"trace_id": "{b_trace}", "name": "quality", "value": 0.9}
CLASS_RULE_BODY = {"field": "span_name", "pattern": "^x$", "task_type": "mine"}
FULL_GROUP = "group_by=model,user_id,session_id,service,environment,task_type,project"


MATRIX: dict[str, Entry] = {
    # ------------------------------------------------------------------ project-less URLs
    "home": Entry((get("user_a", "/"), get("key_a", "/", TO_LOGIN)),
                  control=get("user_b", "/"), control_marker="project_name"),
    "login": Entry((get("anon", "/login/"), get("user_a", "/login/")), public="the sign-in form"),
    "logout": Entry((post("user_a", "/logout/", expect=frozenset({200, 302}), form=True),),
                    public="signs the caller out"),
    "healthz": Entry((get("anon", "/healthz"),), public="liveness probe"),
    "readyz": Entry((get("anon", "/readyz", frozenset({200, 503})),), public="readiness probe"),
    "metrics": Entry((get("anon", "/metrics"),), public="process metrics labelled by route and tag, no project"),
    "schema": Entry((get("key_a", "/api/schema/"), get("user_a", "/api/schema/")),
                    public="the OpenAPI document"),
    "api-docs": Entry((get("user_a", "/api/docs/"),), public="Swagger UI"),
    "plotly-js": Entry((get("anon", "/assets/plotly-{plotly_version}.min.js"),), public="a static file"),
    "otlp-traces": Entry(
        (Probe("key_a", "POST", "/v1/traces", OK, body="span-with-b-trace-id"),
         # A's span with B's trace id is A's: the trace A sees has A's span only, B's never join it
         get("key_a", "/api/v1/traces/{b_trace}", check=lambda d: [s["project"] for s in d["spans"]] == ["acme"])),
        control=get("key_b", "/api/v1/traces/{b_trace}"), control_marker="prompt"),
    # ------------------------------------------------------------------ ingest API
    "api-prices": Entry(
        (get("key_a", "/api/v1/prices"), get("key_a", "/api/v1/prices" + B, NOT_FOUND),
         get("key_a", "/api/v1/prices?model={m_override_model}", check=empty("results")),
         get("user_a", "/api/v1/prices" + B, NOT_FOUND),
         post("key_a", "/api/v1/prices" + B, PRICE_BODY), post("user_a", "/api/v1/prices" + B, PRICE_BODY)),
        control=get("key_b", "/api/v1/prices"), control_marker="override_model"),
    "api-prices-unpriced": Entry(
        (get("key_a", "/api/v1/prices/unpriced"), get("key_a", "/api/v1/prices/unpriced" + B, NOT_FOUND),
         get("user_a", "/api/v1/prices/unpriced"), get("user_a", "/api/v1/prices/unpriced" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/prices/unpriced"), control_marker="model"),
    "api-price-detail": Entry(
        (Probe("key_a", "DELETE", "/api/v1/prices/{b_price}", NOT_FOUND),
         Probe("user_a", "DELETE", "/api/v1/prices/{b_price}?project={a_slug}", NOT_FOUND),
         Probe("user_a", "DELETE", "/api/v1/prices/{b_price}" + B, NOT_FOUND))),
    "api-scores": Entry(
        (get("key_a", "/api/v1/scores?trace_id={b_trace}", check=empty("results")),
         get("key_a", "/api/v1/scores?trace_id={b_trace}&project={b_slug}", NOT_FOUND),
         get("user_a", "/api/v1/scores?trace_id={b_trace}", check=empty("results")),
         post("user_a", "/api/v1/scores" + B, SCORE_BODY), post("key_a", "/api/v1/scores" + B, SCORE_BODY),
         # a score A posts for B's trace id is A's own: B's scores stay as they were
         post("key_a", "/api/v1/scores", SCORE_BODY, expect=frozenset({201}))),
        control=get("key_b", "/api/v1/scores?trace_id={b_trace}"), control_marker="score_comment"),
    "api-classification-rules": Entry(
        (get("key_a", "/api/v1/classification-rules"),
         get("key_a", "/api/v1/classification-rules" + B, NOT_FOUND),
         get("user_a", "/api/v1/classification-rules"),
         post("user_a", "/api/v1/classification-rules" + B, CLASS_RULE_BODY),
         post("key_a", "/api/v1/classification-rules" + B, CLASS_RULE_BODY)),
        control=get("key_b", "/api/v1/classification-rules"), control_marker="class_rule_task"),
    "api-classification-rule-detail": Entry(
        (Probe("key_a", "DELETE", "/api/v1/classification-rules/{b_class_rule}", NOT_FOUND),
         Probe("user_a", "DELETE", "/api/v1/classification-rules/{b_class_rule}?project={a_slug}", NOT_FOUND),
         Probe("user_a", "DELETE", "/api/v1/classification-rules/{b_class_rule}" + B, NOT_FOUND))),
    # ------------------------------------------------------------------ analytics API
    "api-usage": Entry(
        (get("key_a", "/api/v1/usage?" + FULL_GROUP), get("key_a", "/api/v1/usage?" + FULL_GROUP + "&format=csv"),
         get("key_a", "/api/v1/usage?project={b_slug}", NOT_FOUND),
         get("key_a", "/api/v1/usage?model={m_model}&user_id={m_user_id}", check=no_usage),
         get("key_a", "/api/v1/usage?task_type={m_task_type}&group_by=task_type", check=empty("rows")),
         get("user_a", "/api/v1/usage?" + FULL_GROUP + "&interval=day"),
         get("user_a", "/api/v1/usage" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/usage?" + FULL_GROUP), control_marker="input_tokens"),
    "api-traces": Entry(
        (get("key_a", "/api/v1/traces"), get("key_a", "/api/v1/traces?q={b_trace}", check=empty("traces")),
         get("key_a", "/api/v1/traces?user_id={m_user_id}", check=empty("traces")),
         get("key_a", "/api/v1/traces" + B, NOT_FOUND), get("user_a", "/api/v1/traces"),
         get("user_a", "/api/v1/traces" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/traces"), control_marker="trace_id"),
    "api-trace-detail": Entry(
        (get("key_a", "/api/v1/traces/{b_trace}", NOT_FOUND), get("user_a", "/api/v1/traces/{b_trace}", NOT_FOUND),
         get("user_a", "/api/v1/traces/{b_trace}" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/traces/{b_trace}"), control_marker="attribute"),
    "api-budgets": Entry(
        (get("key_a", "/api/v1/budgets?min_samples=1&window=30d"),
         get("key_a", "/api/v1/budgets?min_samples=1&window=30d&task_type={m_task_type}", check=empty("classes")),
         get("key_a", "/api/v1/budgets" + B, NOT_FOUND), get("user_a", "/api/v1/budgets?min_samples=1&window=30d"),
         get("user_a", "/api/v1/budgets" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/budgets?min_samples=1&window=30d"), control_marker="task_type"),
    # ------------------------------------------------------------------ alerts API
    "api-alert-rule-list": Entry(
        (get("key_a", "/api/v1/alert-rules"), get("key_a", "/api/v1/alert-rules" + B, NOT_FOUND),
         get("user_a", "/api/v1/alert-rules"), post("user_a", "/api/v1/alert-rules" + B, RULE_BODY),
         # B's channel in A's rule: refused exactly like a channel id that does not exist
         post("key_a", "/api/v1/alert-rules", {**RULE_BODY, "channels": ["{b_channel}"]}, frozenset({400}))),
        control=get("key_b", "/api/v1/alert-rules"), control_marker="alert_rule"),
    "api-alert-rule-detail": Entry(
        each_method("key_a", "/api/v1/alert-rules/{b_rule}", RULE_BODY)
        + each_method("user_a", "/api/v1/alert-rules/{b_rule}", RULE_BODY),
        control=get("key_b", "/api/v1/alert-rules/{b_rule}"), control_marker="alert_rule"),
    "api-channel-list": Entry(
        (get("key_a", "/api/v1/channels"), get("key_a", "/api/v1/channels" + B, NOT_FOUND),
         get("user_a", "/api/v1/channels"), post("user_a", "/api/v1/channels" + B, CHANNEL_BODY),
         post("key_a", "/api/v1/channels" + B, CHANNEL_BODY)),
        control=get("key_b", "/api/v1/channels"), control_marker="channel"),
    "api-channel-detail": Entry(
        each_method("key_a", "/api/v1/channels/{b_channel}", CHANNEL_BODY)
        + each_method("user_a", "/api/v1/channels/{b_channel}", CHANNEL_BODY),
        control=get("key_b", "/api/v1/channels/{b_channel}"), control_marker="channel"),
    "api-channel-rotate-secret": Entry(
        (post("key_a", "/api/v1/channels/{b_channel}/rotate-secret"),
         post("user_a", "/api/v1/channels/{b_channel}/rotate-secret"))),
    "api-channel-send-test": Entry(
        (post("key_a", "/api/v1/channels/{b_channel}/test"), post("user_a", "/api/v1/channels/{b_channel}/test"))),
    "api-alert-list": Entry(
        (get("key_a", "/api/v1/alerts"), get("key_a", "/api/v1/alerts" + B, NOT_FOUND),
         get("key_a", "/api/v1/alerts?rule={b_rule}", check=results_empty), get("user_a", "/api/v1/alerts"),
         get("user_a", "/api/v1/alerts" + B, NOT_FOUND)),
        control=get("key_b", "/api/v1/alerts"), control_marker="alert_title"),
    "api-alert-detail": Entry(
        (get("key_a", "/api/v1/alerts/{b_event}", NOT_FOUND), get("user_a", "/api/v1/alerts/{b_event}", NOT_FOUND)),
        control=get("key_b", "/api/v1/alerts/{b_event}"), control_marker="alert_title"),
    "api-alert-acknowledge": Entry(
        (post("key_a", "/api/v1/alerts/{b_event}/acknowledge"), post("user_a", "/api/v1/alerts/{b_event}/acknowledge"))),
    "api-alert-resolve": Entry(
        (post("key_a", "/api/v1/alerts/{b_event}/resolve"), post("user_a", "/api/v1/alerts/{b_event}/resolve"))),
    "api-alert-snooze": Entry(
        (post("key_a", "/api/v1/alerts/{b_event}/snooze", {"minutes": 60}),
         post("user_a", "/api/v1/alerts/{b_event}/snooze", {"minutes": 60}))),
    # ------------------------------------------------------------------ simulator API
    "api-simulations": Entry(
        (get("key_a", "/api/v1/simulations"), get("key_a", "/api/v1/simulations" + B, NOT_FOUND),
         get("user_a", "/api/v1/simulations"),
         post("key_a", "/api/v1/simulations", {"policy": POLICY, "project": "{b_slug}"}, DENY),
         post("user_a", "/api/v1/simulations" + B, {"policy": POLICY}, DENY),
         post("user_a", "/api/v1/simulations", {"policy": POLICY, "project": "{b_slug}"}, DENY)),
        control=get("key_b", "/api/v1/simulations"), control_marker="sim_name"),
    "api-simulation-detail": Entry(
        (get("key_a", "/api/v1/simulations/{b_run}", NOT_FOUND), get("user_a", "/api/v1/simulations/{b_run}", NOT_FOUND)),
        control=get("key_b", "/api/v1/simulations/{b_run}"), control_marker="sim_name"),
    # ------------------------------------------------------------------ dashboard pages
    "finance": Entry(
        (get("user_a", "/finance/"), get("user_a", "/finance/" + B, NOT_FOUND),
         get("user_a", "/finance/?model={m_model}"), get("key_a", "/finance/", TO_LOGIN)),
        control=get("user_b", "/finance/"), control_marker="model"),
    "finance-report": Entry(
        (get("user_a", "/finance/report/"), get("user_a", "/finance/report/" + B, NOT_FOUND)),
        control=get("user_b", "/finance/report/"), control_marker="project_name"),
    "engineering": Entry(
        (get("user_a", "/engineering/"), get("user_a", "/engineering/" + B, NOT_FOUND),
         get("user_a", "/engineering/?task_type={m_task_type}")),
        control=get("user_b", "/engineering/"), control_marker="task_type"),
    "traces": Entry(
        (get("user_a", "/traces/"), get("user_a", "/traces/" + B, NOT_FOUND),
         get("user_a", "/traces/?user={m_user_id}")),
        control=get("user_b", "/traces/"), control_marker="trace_id"),
    "trace-detail": Entry(
        (get("user_a", "/traces/{b_trace}/", NOT_FOUND), get("user_a", "/traces/{b_trace}/" + B, NOT_FOUND),
         get("key_a", "/traces/{b_trace}/", TO_LOGIN)),
        control=get("user_b", "/traces/{b_trace}/"), control_marker="prompt"),
    "prices": Entry(
        (get("user_a", "/prices/"), get("user_a", "/prices/" + B, NOT_FOUND)),
        control=get("user_b", "/prices/"), control_marker="override_model"),
    # ------------------------------------------------------------------ alert pages
    "alerts-rules": Entry(
        (get("user_a", "/alerts/"), get("user_a", "/alerts/" + B, NOT_FOUND),
         # the forms offer A's projects and channels only: B's are "not one of the available choices"
         post("user_a", "/alerts/", {"form": "rule", "rule-project": "{b_project_pk}", "rule-name": "x",
                                     "rule-kind": "budget", "rule-cooldown_minutes": "60",
                                     "rule-group_seconds": "60"}, OK, form=True),
         post("user_a", "/alerts/", {"form": "rule", "rule-project": "{a_project_pk}", "rule-name": "x",
                                     "rule-kind": "budget", "rule-cooldown_minutes": "60",
                                     "rule-group_seconds": "60", "rule-channels": "{b_channel}"}, OK, form=True),
         post("user_a", "/alerts/", {"form": "channel", "channel-project": "{b_project_pk}", "channel-kind": "webhook",
                                     "channel-name": "x", "channel-url": "http://127.0.0.1:9/x"}, OK, form=True)),
        control=get("user_b", "/alerts/"), control_marker="channel"),
    "alerts-rule-edit": Entry(
        (get("user_a", "/alerts/rules/{b_rule}/", NOT_FOUND),
         post("user_a", "/alerts/rules/{b_rule}/", {"name": "taken", "params": "{}", "cooldown_minutes": "1",
                                                    "group_seconds": "1"}, form=True)),
        control=get("user_b", "/alerts/rules/{b_rule}/"), control_marker="alert_rule"),
    "alerts-rule-delete": Entry((post("user_a", "/alerts/rules/{b_rule}/delete/", form=True),)),
    "alerts-channel-test": Entry((post("user_a", "/alerts/channels/{b_channel}/test/", form=True),)),
    "alerts-channel-delete": Entry((post("user_a", "/alerts/channels/{b_channel}/delete/", form=True),)),
    "alerts-history": Entry(
        (get("user_a", "/alerts/history/"), get("user_a", "/alerts/history/" + B, NOT_FOUND),
         get("user_a", "/alerts/history/?event={b_event}"), get("user_a", "/alerts/history/?rule={b_rule}")),
        control=get("user_b", "/alerts/history/"), control_marker="alert_title"),
    "alerts-event-action": Entry(
        (post("user_a", "/alerts/history/{b_event}/acknowledge/", form=True),
         post("user_a", "/alerts/history/{b_event}/resolve/", form=True),
         post("user_a", "/alerts/history/{b_event}/snooze/", {"minutes": "60"}, form=True))),
    # ------------------------------------------------------------------ simulator pages
    "simulator": Entry(
        (get("user_a", "/simulator/"),
         post("user_a", "/simulator/", {"project": "{b_slug}", "policy": json.dumps(POLICY)}, frozenset({400}),
              form=True)),
        control=get("user_b", "/simulator/"), control_marker="sim_name"),
    "simulator-run": Entry(
        (get("user_a", "/simulator/runs/{b_run}/", NOT_FOUND),),
        control=get("user_b", "/simulator/runs/{b_run}/"), control_marker="sim_name"),
}


# ---------------------------------------------------------------------- the resolver


def url_names(patterns: Any = None, namespace: str = "") -> Iterator[tuple[str, str]]:
    """(name, namespace) of every named URL pattern, depth first."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            # the admin's unnamed redirect (<id>/ → <id>/change/) is the one pattern without a name
            assert pattern.name or namespace == "admin", f"unnamed URL pattern {pattern.pattern}: name it"
            yield pattern.name or "", namespace


def test_every_url_has_a_matrix_entry() -> None:
    site = {name for name, namespace in url_names() if namespace != "admin"}
    assert site - set(MATRIX) == set(), "URLs without an isolation matrix entry"
    assert set(MATRIX) - site == set(), "matrix entries for URLs that no longer exist"
    for name, entry in MATRIX.items():
        assert entry.probes, name
        assert entry.public or any(p.actor in ("key_a", "user_a") for p in entry.probes), name
        assert bool(entry.control) == bool(entry.control_marker), name


# ---------------------------------------------------------------------- running probes


@pytest.fixture
def world(ch: Any, project: Any, other_project: Any, django_user_model: Any, settings: Any) -> World:
    return build_world(project, other_project, django_user_model, settings)


def _fill(world: World, value: Any) -> Any:
    if isinstance(value, str):
        return world.fill(value)
    if isinstance(value, dict):
        return {k: _fill(world, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(world, v) for v in value]
    return value


def _coerce_ids(value: Any) -> Any:
    """JSON bodies: "{b_channel}" placeholders inside lists become integers once filled."""
    if isinstance(value, dict):
        return {k: _coerce_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [int(v) if isinstance(v, str) and v.isdigit() else _coerce_ids(v) for v in value]
    return value


def b_trace_span_body(world: World) -> bytes:
    span = llm_span("o3-mini", input_tokens=10, output_tokens=5, trace_id=world.markers["trace_id"],
                    span_id=new_span_id())
    return make_request([span], {"service.name": "acme-svc"}).SerializeToString()


def send(world: World, probe: Probe) -> tuple[Any, str]:
    """Make the probe's request; return the response and the request's own text (path and body)."""
    client = world.client(probe.actor)
    path = world.fill(probe.path)
    if probe.body == "span-with-b-trace-id":
        body = b_trace_span_body(world)
        response = client.generic(probe.method, path, body, content_type="application/x-protobuf",
                                  HTTP_AUTHORIZATION="Bearer " + world.key_a)
        return response, path
    body = _fill(world, probe.body)
    if probe.form:
        response = client.generic(probe.method, path, _urlencode(body or {}),
                                  content_type="application/x-www-form-urlencoded")
    elif body is not None:
        body = _coerce_ids(body)
        response = client.generic(probe.method, path, json.dumps(body), content_type="application/json")
    else:
        response = client.generic(probe.method, path)
    return response, path + " " + json.dumps(body)


def _urlencode(data: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


def text_of(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace") + "\n" + response.headers.get("Location", "")


def leaked(world: World, text: str, sent: str) -> list[str]:
    """B's markers in ``text`` that the request did not send itself."""
    return sorted(name for name, value in world.markers.items() if value not in sent and value in text)


def run_probe(world: World, probe: Probe) -> str:
    response, sent = send(world, probe)
    text = text_of(response)
    label = f"{probe.actor} {probe.method} {world.fill(probe.path)}"
    assert response.status_code in probe.expect, (label, response.status_code, text[:600])
    if probe.expect == TO_LOGIN:
        assert "/login/" in response.headers["Location"], (label, response.headers["Location"])
    assert not leaked(world, text, sent), (label, "leaks B's", leaked(world, text, sent), text[:600])
    if probe.check is not None:
        data = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else text
        assert probe.check(data), (label, text[:600])
    return text


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_project_a_never_reaches_project_b(world: World, name: str) -> None:
    entry = MATRIX[name]
    world.ids["plotly_version"] = plotly.__version__
    world.ids["a_project_pk"] = world.a.pk
    if entry.control is not None:
        # B sees its own marker here first: the URL really carries it, and any cache is warm with B's data
        text = run_probe_as_owner(world, entry.control)
        assert world.markers[entry.control_marker] in text, (name, "control did not see", entry.control_marker)
    for probe in entry.probes:
        run_probe(world, probe)
    world.assert_b_intact()


def run_probe_as_owner(world: World, probe: Probe) -> str:
    response, _ = send(world, probe)
    assert response.status_code == 200, (probe, response.status_code, response.content[:400])
    return text_of(response)


# ---------------------------------------------------------------------- refusals look alike


def test_b_channel_id_in_a_rule_answers_like_a_missing_one(world: World) -> None:
    """Naming B's channel tells A nothing that naming a channel that does not exist would not."""
    client = world.client("key_a")
    answers = []
    for channel_id in (world.ids["b_channel"], 987654):
        response = client.post("/api/v1/alert-rules", {**RULE_BODY, "channels": [channel_id]}, format="json")
        assert response.status_code == 400
        answers.append(json.dumps(response.json()).replace(str(channel_id), "ID"))
    assert answers[0] == answers[1], answers


def test_b_objects_answer_like_missing_ones(world: World) -> None:
    """404 bodies for B's objects equal those for ids that do not exist (no existence oracle)."""
    client = world.client("key_a")
    for path, own in (("/api/v1/alert-rules/{}", "b_rule"), ("/api/v1/channels/{}", "b_channel"),
                      ("/api/v1/alerts/{}", "b_event"), ("/api/v1/simulations/{}", "b_run"),
                      ("/api/v1/traces/{}", "b_trace")):
        missing = "0" * 31 + "1" if own == "b_trace" else "987654"
        theirs = client.get(path.format(world.ids[own]))
        nothing = client.get(path.format(missing))
        assert theirs.status_code == nothing.status_code == 404, path
        assert theirs.content == nothing.content, (path, theirs.content, nothing.content)


# ---------------------------------------------------------------------- the admin


def admin_urls(world: World) -> list[str]:
    """Every admin URL, with B's objects where a URL takes an object id."""
    from django.contrib import admin
    from django.urls import reverse

    objects = {"organization": world.b.organization_id, "project": world.b.pk}
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        pk = objects.get(model._meta.model_name) or model.objects.filter(
            **{f.name: world.b for f in model._meta.fields if getattr(f.remote_field, "model", None)
               and f.remote_field.model._meta.model_name == "project"}).values_list("pk", flat=True).first()
        if pk is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
            urls.append(reverse("admin:{}_{}_history".format(*info), args=[pk]))
            urls.append(reverse("admin:{}_{}_delete".format(*info), args=[pk]))
    return urls


def test_admin_is_closed_to_project_members(world: World) -> None:
    client = world.client("user_a")
    urls = admin_urls(world)
    assert len(urls) > 20
    b_objects = [u for u in urls if u.rstrip("/").split("/")[-2:][0].isdigit() or "/change/" in u]
    assert b_objects, "no admin URL of B's objects was probed"
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response.headers["Location"], (url, response)
        assert not leaked(world, text_of(response), url), url
