"""The dashboard pages through Django's test client: roles, numbers, filters, empty states.

Spans go in through the real ``POST /v1/traces`` endpoint and land in the test chdb
store; the pages read them back through :mod:`dashboards.queries`.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import plotly
import pytest
from django.test import Client

from dashboards import server_timing
from dashboards.page_filters import parse
from ingest.models import ModelPrice
from tests.dashboards.pages_support import person, send_demo_traffic
from tests.ingest import otlp_builders as ob
from thinkmeter.models import Role

PAGES = ["/finance/", "/finance/report/", "/engineering/", "/traces/", "/prices/"]
LIGHT = {"gpt-4.1-mini": (1, "classification"), "o3-mini": (2, "code_generation")}


def _kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{name}">([^<]+)<', html)
    assert match, f"no KPI {name}"
    return match.group(1).strip()


def _figure(html: str, chart_id: str) -> dict[str, Any]:
    match = re.search(rf'<script type="application/json" id="fig-{chart_id}">(.*?)</script>', html, re.S)
    assert match, f"no figure {chart_id}"
    return json.loads(match.group(1))


def _labels(figure: dict[str, Any]) -> set[str]:
    return {label for trace in figure["data"] if trace.get("type") == "bar" for label in trace.get("y", [])}


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def _expected_cost(model: str, input_tokens: int, cache_read: int, output: int, reasoning: int) -> Decimal:
    today = datetime.now(UTC).date()
    rate = next(r for r in ModelPrice.objects.get(model=model, project=None).rates.all()
                if r.effective_from <= today and (r.effective_to is None or today < r.effective_to))
    reasoning_rate = rate.reasoning if rate.reasoning is not None else rate.output
    cache_rate = rate.cache_read if rate.cache_read is not None else rate.input
    total = ((input_tokens - cache_read) * rate.input + cache_read * cache_rate
             + (output - reasoning) * rate.output + reasoning * reasoning_rate)
    return total / Decimal(1_000_000)


def _send(client: Client, key: str, spans: list[dict[str, Any]], service: str = "checkout") -> None:
    body = ob.make_request(spans, resource={"service.name": service}).SerializeToString()
    response = client.post("/v1/traces", data=body, content_type="application/x-protobuf",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200, response.content


def _call(model: str, *, user: str = "ann", hours_ago: float = 2.0, prompt: str | None = None,
          trace_id: str | None = None, parent: str = "") -> dict[str, Any]:
    tier, task = LIGHT[model]
    attributes: dict[str, Any] = {
        "gen_ai.system": "openai", "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 500, "gen_ai.usage.reasoning_tokens": 300 if tier == 2 else 0,
        "gen_ai.usage.cache_read_input_tokens": 200, "thinkmeter.tier": tier, "thinkmeter.task_type": task,
        "user.id": user,
    }
    if prompt:
        attributes["gen_ai.prompt.0.role"] = "user"
        attributes["gen_ai.prompt.0.content"] = prompt
    start = int((datetime.now(UTC) - timedelta(hours=hours_ago)).timestamp() * 1e9)
    return ob.span_dict(name=f"chat {model}", attributes=attributes, start_ns=start, trace_id=trace_id,
                        parent_span_id=parent, duration_ms=1200)


@pytest.fixture
def known_spend(ch: Any, client: Client, project: Any, project_key: str) -> dict[str, Decimal]:
    """Three tier-1 and two tier-2 calls with fixed tokens; returns the expected cost per tier."""
    _send(client, project_key, [_call("gpt-4.1-mini", user=f"user-{i}") for i in range(3)]
          + [_call("o3-mini", user="bob") for _ in range(2)])
    return {
        "1": 3 * _expected_cost("gpt-4.1-mini", 1000, 200, 500, 0),
        "2": 2 * _expected_cost("o3-mini", 1000, 200, 500, 300),
    }


# ---------------------------------------------------------------- access

@pytest.mark.django_db
def test_every_page_needs_a_login(client: Client) -> None:
    for url in [*PAGES, "/traces/abc123/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


@pytest.mark.django_db
def test_roles(ch: Any, client: Client, project: Any, project_key: str, django_user_model: Any) -> None:
    trace_id = ob.new_trace_id()
    _send(client, project_key, [_call("o3-mini", trace_id=trace_id)])
    # role → may open traces; every role reads the aggregate pages
    expected = {Role.VIEWER: False, Role.FINANCE: False, Role.ENGINEER: True, Role.ADMIN: True}
    for role, sees_traces in expected.items():
        client.force_login(person(django_user_model, f"u-{role}", project, role))
        assert client.get("/finance/").status_code == 200, role
        for url in ("/traces/", f"/traces/{trace_id}/"):
            response = client.get(url)
            assert response.status_code == (200 if sees_traces else 403), (role, url)
            if not sees_traces:
                assert b"needs the engineer or admin role" in response.content
    client.force_login(person(django_user_model, "just-a-viewer", project, Role.VIEWER))
    for url in ("/finance/report/", "/prices/"):
        assert client.get(url).status_code == 200, url
    engineering = client.get("/engineering/").content.decode()
    assert "Individual traces need the engineer role" in engineering
    assert 'data-figure="fig-reasoning"' in engineering  # the aggregates are there
    client.force_login(person(django_user_model, "an-engineer", project, Role.ENGINEER))
    assert "Individual traces need the engineer role" not in client.get("/engineering/").content.decode()
    client.force_login(person(django_user_model, "root", None, None, superuser=True))
    assert client.get(f"/traces/{trace_id}/").status_code == 200


@pytest.mark.django_db
def test_other_organizations_stay_invisible(ch: Any, client: Client, project: Any, project_key: str,
                                            other_project: Any, other_project_key: str,
                                            django_user_model: Any) -> None:
    theirs = ob.new_trace_id()
    _send(client, other_project_key, [_call("o3-mini", trace_id=theirs, user="globex-user")])
    _send(client, project_key, [_call("gpt-4.1-mini", user="acme-user")])
    client.force_login(person(django_user_model, "eng", project, Role.ENGINEER))
    assert client.get("/finance/?project=globex").status_code == 404
    assert client.get(f"/traces/{theirs}/").status_code == 404
    finance = client.get("/finance/").content.decode()
    assert "acme-user" in finance and "globex-user" not in finance
    traces = client.get("/traces/").content.decode()
    assert theirs[:10] not in traces


@pytest.mark.django_db
def test_trace_access_follows_the_role_in_its_project(ch: Any, client: Client, project: Any, project_key: str,
                                                       other_project: Any, other_project_key: str,
                                                       django_user_model: Any) -> None:
    from thinkmeter.models import Membership

    theirs, ours = ob.new_trace_id(), ob.new_trace_id()
    _send(client, other_project_key, [_call("o3-mini", trace_id=theirs)])
    _send(client, project_key, [_call("o3-mini", trace_id=ours)])
    user = person(django_user_model, "two-hats", project, Role.ENGINEER)
    Membership.objects.create(user=user, organization=other_project.organization, role=Role.VIEWER)
    client.force_login(user)
    assert client.get(f"/traces/{ours}/").status_code == 200
    response = client.get(f"/traces/{theirs}/")
    assert response.status_code == 403 and b"lesser role" in response.content
    assert client.get("/traces/?project=globex").status_code == 403
    listing = client.get("/traces/").content.decode()
    assert ours in listing and theirs not in listing
    assert client.get("/finance/?project=globex").status_code == 200  # aggregates: any role


@pytest.mark.django_db
def test_hidden_user_drilldown(ch: Any, client: Client, project: Any, project_key: str,
                               django_user_model: Any) -> None:
    _send(client, project_key, [_call("gpt-4.1-mini", user="carol-the-user")])
    project.hide_user_drilldown = True
    project.save()
    for role, visible in ((Role.FINANCE, False), (Role.ENGINEER, True)):
        client.force_login(person(django_user_model, f"d-{role}", project, role))
        html = client.get("/finance/").content.decode()
        assert ("carol-the-user" in html) is visible, role
        assert ('name="user"' in html) is visible, role
    client.force_login(person(django_user_model, "d-viewer", project, Role.VIEWER))
    filtered = client.get("/finance/?user=carol-the-user").content.decode()
    assert "the user filter was ignored" in filtered and "carol-the-user" not in filtered


@pytest.mark.django_db
def test_prompt_text_only_when_stored(ch: Any, client: Client, project: Any, project_key: str,
                                      django_user_model: Any) -> None:
    project.store_prompts = True
    project.save()
    stored = ob.new_trace_id()
    _send(client, project_key, [_call("o3-mini", trace_id=stored, prompt="Summarize the quarterly plan")])
    project.store_prompts = False
    project.save()
    not_stored = ob.new_trace_id()
    _send(client, project_key, [_call("o3-mini", trace_id=not_stored, prompt="Reveal the launch codes")])
    client.force_login(person(django_user_model, "eng", project, Role.ENGINEER))
    assert client.get(f"/traces/{not_stored}/").content.decode().count("launch codes") == 0
    project.store_prompts = True
    project.save()
    assert "Summarize the quarterly plan" in client.get(f"/traces/{stored}/").content.decode()


# ---------------------------------------------------------------- numbers and filters

@pytest.mark.django_db
def test_finance_numbers_match_the_price_catalog(known_spend: dict[str, Decimal], client: Client, project: Any,
                                                 django_user_model: Any) -> None:
    client.force_login(person(django_user_model, "fin", project, Role.FINANCE))
    html = client.get("/finance/").content.decode()
    total = known_spend["1"] + known_spend["2"]
    assert _kpi(html, "spend") == _usd(total)
    now = datetime.now(UTC)
    if (now - timedelta(hours=2)).month == now.month:  # the spans are 2 hours old
        assert _kpi(html, "month-to-date") == _usd(total)
    assert _labels(_figure(html, "by_tier")) == {"tier 1", "tier 2"}
    assert {"user-0", "user-1", "user-2", "bob"} <= _labels(_figure(html, "top_users"))
    parts = _figure(html, "parts")["data"][0]
    assert sum(parts["values"]) == pytest.approx(float(total), rel=1e-9)
    # A filter changes the numbers and the charts, and stays in the links.
    tier2 = client.get("/finance/?tier=2&range=7d").content.decode()
    assert _kpi(tier2, "spend") == _usd(known_spend["2"])
    assert _labels(_figure(tier2, "by_tier")) == {"tier 2"}
    assert "tier=2" in tier2 and 'value="2" selected' in tier2
    # The CSV export covers the same view and answers to the session.
    link = re.search(r'href="(/api/v1/usage\?[^"]*group_by=task_type%2Ctier[^"]*)"', tier2)
    assert link, "no CSV link"
    csv = client.get(link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode()
    assert "code_generation" in body and "classification" not in body


@pytest.mark.django_db
def test_monthly_report_totals(known_spend: dict[str, Decimal], client: Client, project: Any,
                               django_user_model: Any) -> None:
    client.force_login(person(django_user_model, "viewer", project, Role.VIEWER))
    month = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m")
    html = client.get(f"/finance/report/?month={month}").content.decode()
    assert _kpi(html, "report-total") == _usd(known_spend["1"] + known_spend["2"])
    for heading in ("By project", "By tier", "By model", "By task type"):
        assert heading in html
    assert html.count("<tfoot>") == 4
    bad = client.get("/finance/report/?month=2026-13").content.decode()
    assert "Month must look like 2026-03" in bad
    empty = client.get("/finance/report/?month=2001-01").content.decode()
    assert "No spend recorded in January 2001" in empty


@pytest.mark.django_db
def test_bad_filters_are_explained_not_fatal(ch: Any, client: Client, project: Any, django_user_model: Any) -> None:
    client.force_login(person(django_user_model, "eng", project, Role.ENGINEER))
    for url, message in (
        ("/finance/?range=fortnight", "Unknown range"),
        ("/engineering/?tier=high", "Tier must be a number"),
        ("/finance/?range=custom&from=2026-02-30", "Custom range"),
        ("/traces/?min_cost=lots", "Minimum cost must be a number"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert message in response.content.decode(), url


@pytest.mark.django_db
def test_empty_states(ch: Any, client: Client, project: Any, project_key: str, django_user_model: Any) -> None:
    client.force_login(person(django_user_model, "adm", project, Role.ADMIN))
    for url in ("/finance/", "/engineering/", "/traces/"):
        html = client.get(url).content.decode()
        assert "No traces yet" in html, url
        assert "/v1/traces" in html and "create_project" in html, url
    _send(client, project_key, [_call("gpt-4.1-mini")])
    html = client.get("/finance/?model=no-such-model").content.decode()
    assert "Nothing matches this view" in html
    traces = client.get("/traces/?min_reasoning=999999").content.decode()
    assert "No traces match" in traces


# ---------------------------------------------------------------- traces

@pytest.mark.django_db
def test_trace_explorer_and_trace_page(ch: Any, client: Client, project: Any, project_key: str,
                                       django_user_model: Any) -> None:
    trace_id = ob.new_trace_id()
    root = ob.span_dict(name="handle_request", trace_id=trace_id, duration_ms=3000,
                        start_ns=int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1e9))
    child = _call("o3-mini", trace_id=trace_id, parent=root["span_id"], hours_ago=1)
    child["start_ns"] = root["start_ns"] + 500_000_000
    child["end_ns"] = child["start_ns"] + 1_200_000_000
    failing = _call("gpt-4.1-mini", trace_id=trace_id, parent=root["span_id"], hours_ago=1)
    failing["start_ns"] = root["start_ns"] + 2_000_000_000
    failing["end_ns"] = failing["start_ns"] + 300_000_000
    failing["status"] = 2
    _send(client, project_key, [root, child, failing, _call("gpt-4.1-mini", hours_ago=5)])
    client.force_login(person(django_user_model, "eng", project, Role.ENGINEER))

    listing = client.get("/traces/").content.decode()
    assert listing.count('data-href="/traces/') == 2
    errors_only = client.get("/traces/?status=error").content.decode()
    assert errors_only.count('data-href="/traces/') == 1 and trace_id in errors_only
    # a trace matches when any of its spans does; its totals cover all its calls
    tier1 = client.get("/traces/?tier=1&min_reasoning=1").content.decode()
    assert tier1.count('data-href="/traces/') == 1 and trace_id in tier1

    page = client.get(f"/traces/{trace_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    bars = _figure(html, "waterfall")["data"][0]
    assert bars["base"] == [0.0, 500.0, 2000.0]
    assert bars["x"] == [3000.0, 1200.0, 300.0]
    assert bars["y"][1].startswith("· chat o3-mini")  # nested under the root
    assert bars["marker"]["color"][2] == "#ef4444"  # the failed call
    expected = _expected_cost("o3-mini", 1000, 200, 500, 300) + _expected_cost("gpt-4.1-mini", 1000, 200, 500, 0)
    assert _kpi(html, "trace-cost") == f"${expected:,.4f}"
    assert html.count('<tr id="span-') == 3
    assert client.get(f"/traces/{ob.new_trace_id()}/").status_code == 404
    assert client.get("/traces/not-a-trace/").status_code == 404


# ---------------------------------------------------------------- demo traffic, every page

@pytest.mark.django_db
def test_every_page_renders_demo_traffic(ch: Any, client: Client, project: Any, project_key: str,
                                         django_user_model: Any) -> None:
    send_demo_traffic(client, project_key, spans=600, days=10)
    client.force_login(person(django_user_model, "adm", project, Role.ADMIN))
    expected_charts = {
        "/finance/": {"budget", "over_time", "parts", "by_project", "by_tier", "by_model", "by_task_type",
                      "reasoning_share", "top_users"},
        "/engineering/": {"reasoning", "latency", "escalation", "frontier", "budget_used"},
    }
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        charts = set(re.findall(r'data-figure="fig-([a-z_]+)"', html))
        assert charts == expected_charts.get(url, set()), url
        for chart_id in charts:
            figure = _figure(html, chart_id)
            assert figure["data"], (url, chart_id)
        if charts:
            assert f"/assets/plotly-{plotly.__version__}.min.js" in html
        # every script and stylesheet comes from this server (users may run offline)
        assets = re.findall(r'<script[^>]+src="([^"]+)"|<link[^>]+href="([^"]+)"', html)
        assert assets and all((a or b).startswith(("/", "data:")) for a, b in assets), assets
    prices = client.get("/prices/").content.decode()
    assert "gpt-4.1-mini" in prices and "acme-internal-llm" in prices  # the demo's unpriced model

    # where each page's time went, for the browser's network panel and bench/load.py
    expected_parts = {
        "/finance/": {"data.options", "data.by", "data.month", "data.over_time", "data.top_users", "data",
                      "render", "total"},
        "/engineering/": {"data.call_sample", "data.call_statistics", "data.options", "data.per_call",
                          "data.runaways", "data", "render", "total"},
    }
    for url, parts in expected_parts.items():
        timing = server_timing.parse(client.get(url)[server_timing.HEADER])
        assert set(timing) == parts, url
        assert all(took >= 0 for took in timing.values())
        assert timing["data"] <= timing["total"] and timing["render"] <= timing["total"]
        assert max(v for k, v in timing.items() if k.startswith("data.")) <= timing["data"] + 1  # ms rounding


def test_server_timing_header_round_trips() -> None:
    timing = server_timing.Timing()
    timing.add("data.call sample", 0.25)  # characters a header token cannot hold become "_"
    timing.add("total", 1.5)
    assert timing.header() == "data.call_sample;dur=250.0, total;dur=1500.0"
    assert server_timing.parse(timing.header()) == {"data.call_sample": 250.0, "total": 1500.0}
    assert server_timing.parse("") == {} and server_timing.parse("x;dur=abc, y;dur=2") == {"y": 2.0}


# ---------------------------------------------------------------- plotly.js

@pytest.mark.django_db
def test_plotly_js_is_served_by_us(client: Client) -> None:
    url = f"/assets/plotly-{plotly.__version__}.min.js"
    plain = client.get(url)
    assert plain.status_code == 200
    assert plain["Content-Type"].startswith("text/javascript")
    assert b"plotly" in plain.content[:2000].lower() and len(plain.content) > 1_000_000
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip, br")
    assert packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content
    assert "immutable" in packed["Cache-Control"]
    assert client.get(url, HTTP_IF_NONE_MATCH=packed["ETag"]).status_code == 304
    assert client.get("/assets/plotly-0.0.1.min.js").status_code == 404


def test_page_filters_keep_the_view_in_the_url() -> None:
    now = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)
    pf = parse({"range": "custom", "from": "2026-03-01", "to": "2026-03-07", "tier": "3", "user": "ann",
                "project": "acme"}, now=now)
    assert (pf.start, pf.end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC))
    assert pf.column_filters == {"tier": "3", "user_id": "ann"}
    assert parse(dict(pf.params()), now=now) == pf
    assert "from=2026-03-01T00%3A00%3A00Z" in pf.api_querystring() and "user_id=ann" in pf.api_querystring()
    mtd = parse({"range": "mtd"}, now=now)
    hour_end = datetime(2026, 3, 15, 13, tzinfo=UTC)  # presets end with the current hour, like the usage API
    assert mtd.start == datetime(2026, 3, 1, tzinfo=UTC) and mtd.end == hour_end and mtd.interval == "day"
    month = parse({"range": "30d"}, now=now)
    assert (month.start, month.end) == (hour_end - timedelta(days=30), hour_end)
    assert parse({"range": "custom", "from": "2026-03-01"}, now=now).end == hour_end
    assert parse({"range": "24h"}, now=now).interval == "hour"
    assert parse({"range": "90d"}, now=now).interval == "day"
    assert parse({}, now=now).range_key == "30d"
    backwards = parse({"range": "custom", "from": "2026-03-07", "to": "2026-03-01"}, now=now)
    assert backwards.range_key == "30d" and "must end after it starts" in backwards.errors[0]


def test_number_formats() -> None:
    from dashboards.templatetags import tm_format as f

    assert f.usd(Decimal("1234.5")) == "$1,234.50"
    assert f.usd("0.01234") == "$0.0123"
    assert f.usd(0.00001) == "<$0.0001"
    assert f.usd(None) == "—"
    assert f.rate("0.075000") == "$0.075" and f.rate("15.000000") == "$15.00" and f.rate("1.1") == "$1.10"
    assert f.num(1234567) == "1,234,567"
    assert f.pct(0.1234) == "12.3%"
    assert f.ms(850) == "850 ms" and f.ms(2480) == "2.48 s" and f.ms(74_000) == "74.0 s"


def test_breakdowns_fold_one_grouped_query_into_each_dimension() -> None:
    import numpy as np

    from dashboards.page_data import TOTAL_COLUMNS, _breakdown, frame_totals

    rows = [("acme", 1, "m1", 1.0), ("acme", 2, "m2", 5.0), ("globex", 2, "m3", 3.0), ("acme", 0, "other", 0.5),
            ("other", "other", "other", 2.0)]
    other = np.array([False] * 4 + [True])
    values = np.array([[r[3]] * len(TOTAL_COLUMNS) for r in rows])

    def fold(dim: int, name: str, names: dict[str, str], limit: int) -> Any:
        return _breakdown([r[dim] for r in rows], other, values, name, names, limit)

    by_tier = fold(1, "tier", {}, limit=2)
    assert list(by_tier["label"]) == ["tier 2", "tier 1", "other"]
    assert list(by_tier["cost_total"]) == [8.0, 1.0, 2.5]  # untiered 0.5 + the query's own "other" 2.0
    assert by_tier["requests"].dtype == "int64" and list(by_tier["requests"])[:2] == [8, 1]  # whole numbers
    by_model = fold(2, "model", {}, limit=10)
    # a model really named "other" stays apart from the groups past the query's limit
    assert sorted(by_model["label"]) == ["m1", "m2", "m3", "other", "other"]
    by_project = fold(0, "project", {"acme": "Acme Corp"}, limit=10)
    assert list(by_project["label"]) == ["Acme Corp", "globex", "other"]
    assert frame_totals(by_project)["cost_total"] == frame_totals(by_tier)["cost_total"] == 11.5
