"""The price catalog: what the migration ships, how names and dates match, per-project
overrides through the API and the admin, unpriced models, classification rules, and who
may see or change what.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from ingest import catalog as catalog_module
from ingest.catalog import Catalog
from ingest.models import ClassificationRule, ModelPrice, PriceRate
from ingest.pricing import price
from tests.ingest.api_helpers import (  # noqa: F401  (autouse fixtures)
    fresh_caches,
    issue_key,
    key_client,
    person_client,
    shipped_catalog,
)
from tests.ingest.otlp_builders import llm_span, new_trace_id, post_spans
from thinkmeter.clickhouse import PROJECT_PARAM

pytestmark = pytest.mark.django_db

PROVIDERS = {"openai", "anthropic", "google", "deepseek", "xai", "mistral"}
STORED_SQL = f"""
SELECT project_id, name, model, provider, task_type, tier, price_id, priced, cost_total, cost_cache_read,
       input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
       toDate(start_time) AS day
FROM spans WHERE project_id IN {PROJECT_PARAM} AND counted = 1 ORDER BY start_time
"""


def stored(ch: ModuleType, project_id: int) -> list[dict[str, Any]]:
    return ch.execute(STORED_SQL, tag="tests.prices.stored", projects=project_id)


def recent(days_ago: int, hour: int = 12) -> datetime:
    return datetime.combine(datetime.now(UTC).date() - timedelta(days=days_ago), time(hour), tzinfo=UTC)


def override_body(model: str = "o3", **changes: Any) -> dict[str, Any]:
    start = (datetime.now(UTC).date() - timedelta(days=60)).isoformat()
    body = {
        "model": model, "provider": "openai", "pattern": rf"^{model}(?:-\d{{4}}-\d{{2}}-\d{{2}})?$", "tier": 3,
        "reasoning": True, "source": "https://example.com/contract.pdf", "note": "negotiated",
        "rates": [{"effective_from": start, "input": "1.000000", "cache_read": "0.250000", "output": "4.000000"}],
    }
    body.update(changes)
    return body


# --- the shipped catalog ---------------------------------------------------------------


def test_migration_loads_a_catalog_of_at_least_60_models_from_six_providers() -> None:
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder.Migration.objects.filter(app="ingest").values_list("name", flat=True)
    assert "0002_load_default_catalog" in set(applied)
    entries = list(ModelPrice.objects.filter(project__isnull=True).prefetch_related("rates"))
    assert len(entries) >= 60
    assert {e.provider for e in entries} == PROVIDERS
    for entry in entries:
        assert entry.source.startswith("https://"), entry.model
        re.compile(entry.pattern)
        rates = list(entry.rates.all())
        assert rates, entry.model
        for rate in rates:
            assert rate.effective_from >= date(2020, 1, 1)
            assert rate.effective_to is None or rate.effective_to > rate.effective_from
            assert rate.input >= 0 and rate.output > 0
        assert rates[-1].effective_to is None or rates[-1].effective_to <= date.today(), entry.model
        # every model matches its own name
        assert re.search(entry.pattern, entry.model, re.IGNORECASE), entry.model
    # Models retired since the start of 2024 keep their prices: old traffic and replays need them.
    snapshot = Catalog()
    for retired in ("claude-instant-1", "claude-2", "gpt-4-32k", "grok-beta", "gemini-1.0-pro", "o1-preview"):
        entry = snapshot.match(0, retired)
        assert entry is not None and entry.rates_on(date(2024, 11, 1)) is not None, retired
    counts = {p: sum(e.provider == p for e in entries) for p in PROVIDERS}
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("o3-2025-04-16", "o3"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("deepseek-reasoner", "deepseek-reasoner"),
        ("grok-4", "grok-4"),
        ("grok-3-mini", "grok-3-mini"),
        ("mistral-large-2411", "mistral-large"),
        ("magistral-medium-2506", "magistral-medium"),
        ("some-private-finetune", None),
    ],
)
def test_snapshot_names_match_their_catalog_entry(project: Any, name: str, expected: str | None) -> None:
    entry = Catalog().match(project.pk, name)
    assert (entry.model if entry else None) == expected


@pytest.mark.parametrize(
    ("name", "day", "input_rate", "output_rate", "cache_read"),
    [
        ("gpt-4o", date(2024, 7, 1), "5.00", "15.00", None),
        ("gpt-4o-2024-08-06", date(2024, 11, 1), "2.50", "10.00", "1.25"),
        ("o3-2025-04-16", date(2025, 6, 9), "10.00", "40.00", "2.50"),
        ("o3", date(2025, 6, 10), "2.00", "8.00", "0.50"),
        ("o3", date(2025, 4, 15), None, None, None),  # before release: no price, never $0
    ],
)
def test_effective_dating_picks_the_rate_of_the_spans_day(
    project: Any, name: str, day: date, input_rate: str | None, output_rate: str | None, cache_read: str | None,
) -> None:
    entry = Catalog().match(project.pk, name)
    assert entry is not None
    rates = entry.rates_on(day)
    if input_rate is None:
        assert rates is None
        return
    assert rates is not None
    assert (rates.input, rates.output) == (Decimal(input_rate), Decimal(output_rate))
    assert rates.cache_read == (Decimal(cache_read) if cache_read else None)
    cost = price(rates, 1_000_000, 0, 0, 1_000_000, 600_000)
    assert cost.input == Decimal(input_rate) and cost.reasoning == Decimal(output_rate) * Decimal("0.6")


def test_ingest_prices_each_span_by_its_own_day(
    ch: ModuleType, client: Any, project: Any, project_key: str,
) -> None:
    """Through the real receiver: a price change between two spans' days gives each its own rate."""
    cut = datetime.now(UTC).date() - timedelta(days=10)
    entry = ModelPrice.objects.create(project=project, model="dated-model", provider="acme", pattern="^dated-model$")
    early = PriceRate.objects.create(model_price=entry, effective_from=cut - timedelta(days=30), effective_to=cut,
                                     input=Decimal("3"), output=Decimal("12"))
    late = PriceRate.objects.create(model_price=entry, effective_from=cut, input=Decimal("1.5"), output=Decimal("6"))
    post_spans(client, project_key, [
        llm_span("dated-model", provider="acme", start=recent(11, 23), input_tokens=10_000, output_tokens=2_000),
        llm_span("dated-model", provider="acme", start=recent(10, 0), input_tokens=10_000, output_tokens=2_000),
    ])
    rows = stored(ch, project.pk)
    assert [r["price_id"] for r in rows] == [early.pk, late.pk]
    assert [r["cost_total"] for r in rows] == [Decimal("0.054"), Decimal("0.027")]


# --- GET/POST /api/v1/prices -------------------------------------------------------------


def test_get_prices_lists_the_catalog_with_rates_and_filters(project_key: str) -> None:
    api = key_client(project_key)
    body = api.get("/api/v1/prices").json()
    assert len(body["results"]) >= 60
    first = body["results"][0]
    assert set(first) >= {"id", "project", "model", "provider", "pattern", "tier", "source", "rates"}
    assert set(first["rates"][0]) >= {"price_id", "effective_from", "effective_to", "input", "cache_read",
                                      "cache_write", "output", "reasoning"}
    anthropic = api.get("/api/v1/prices", {"provider": "anthropic"}).json()["results"]
    assert anthropic and {e["provider"] for e in anthropic} == {"anthropic"}
    o3 = api.get("/api/v1/prices", {"model": "o3-2025-04-16"}).json()["results"]
    assert [e["model"] for e in o3] == ["o3"]
    assert [(r["effective_from"], r["input"], r["output"]) for r in o3[0]["rates"]] == [
        ("2025-04-16", "10.000000", "40.000000"), ("2025-06-10", "2.000000", "8.000000")]
    assert api.get("/api/v1/prices", {"model": "nothing-like-this"}).json()["results"] == []


def test_an_override_wins_for_its_project_only(
    ch: ModuleType, client: Any, project: Any, project_key: str, other_project: Any, other_project_key: str,
) -> None:
    api = key_client(project_key)
    response = api.post("/api/v1/prices", override_body(), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["project"] == "acme" and created["rates"][0]["input"] == "1.000000"
    override_rate = created["rates"][0]["price_id"]

    listed = api.get("/api/v1/prices", {"model": "o3-2025-04-16"}).json()["results"]
    assert [(e["model"], e["project"]) for e in listed] == [("o3", "acme"), ("o3", None)]  # the first one applies
    other_listed = key_client(other_project_key).get("/api/v1/prices", {"model": "o3"}).json()["results"]
    assert [(e["model"], e["project"]) for e in other_listed] == [("o3", None)]
    assert all(e["project"] is None for e in key_client(other_project_key).get("/api/v1/prices").json()["results"])

    call = {"start": recent(1), "input_tokens": 1_000_000, "output_tokens": 1_000_000, "reasoning_tokens": 500_000}
    post_spans(client, project_key, [llm_span("o3-2025-04-16", **call)])
    post_spans(client, other_project_key, [llm_span("o3-2025-04-16", **call)])
    mine = stored(ch, project.pk)
    theirs = stored(ch, other_project.pk)
    assert mine[0]["price_id"] == override_rate and mine[0]["cost_total"] == Decimal("5")  # 1 + 4
    assert theirs[0]["price_id"] != override_rate and theirs[0]["cost_total"] == Decimal("10")  # 2 + 8


def test_posting_again_replaces_the_override_and_keeps_unchanged_price_ids(project: Any, project_key: str) -> None:
    api = key_client(project_key)
    first = api.post("/api/v1/prices", override_body(), format="json").json()
    start = first["rates"][0]["effective_from"]
    cut = (datetime.now(UTC).date() - timedelta(days=5)).isoformat()
    replaced = api.post("/api/v1/prices", override_body(rates=[
        {"effective_from": start, "effective_to": cut, "input": "1.000000", "output": "4.000000"},
        {"effective_from": cut, "input": "0.5", "output": "2"},
    ], tier=2), format="json")
    assert replaced.status_code == 200, replaced.content
    body = replaced.json()
    assert body["id"] == first["id"] and body["tier"] == 2
    assert body["rates"][0]["price_id"] == first["rates"][0]["price_id"]
    assert body["rates"][0]["cache_read"] is None and body["rates"][1]["input"] == "0.500000"
    assert ModelPrice.objects.filter(project=project, model="o3").count() == 1
    entry = Catalog().match(project.pk, "o3")
    assert entry is not None and entry.project_id == project.pk and len(entry.periods) == 2

    deleted = api.delete(f"/api/v1/prices/{body['id']}")
    assert deleted.status_code == 204
    assert catalog_module.catalog.match(project.pk, "o3").project_id is None  # signals: seen at once
    global_o3 = ModelPrice.objects.get(project__isnull=True, model="o3")
    refused = api.delete(f"/api/v1/prices/{global_o3.pk}")
    assert refused.status_code == 403 and "update_prices" in refused.json()["detail"]
    assert api.delete("/api/v1/prices/999999").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"pattern": "^o3(["}, "pattern", "not a valid regular expression"),
        ({"rates": [{"effective_from": "2026-01-01", "input": "1.0000001", "output": "4"}]}, "rates",
         "decimal places"),
        ({"rates": [{"effective_from": "2026-01-01", "input": "-1", "output": "4"}]}, "rates", "greater than or equal"),
        ({"rates": [{"effective_from": "2026-01-01", "input": "abc", "output": "4"}]}, "rates", "valid number"),
        ({"rates": [{"effective_from": "2026-01-01", "input": "1"}]}, "rates", "required"),
        ({"rates": []}, "rates", "at least one"),
        ({"rates": [{"effective_from": "2026-01-01", "effective_to": "2025-12-01", "input": "1", "output": "4"}]},
         "rates", "after effective_from"),
        ({"rates": [{"effective_from": "2026-01-01", "input": "1", "output": "4"},
                    {"effective_from": "2026-02-01", "input": "1", "output": "4"}]}, "rates", "overlap"),
        ({"model": "  "}, "model", "blank"),
        ({"tier": 0}, "tier", "greater than or equal"),
        ({"source": "not a url"}, "source", "valid URL"),
    ],
)
def test_bad_prices_get_400_with_a_clear_message(project_key: str, change: dict[str, Any], field: str,
                                                 message: str) -> None:
    response = key_client(project_key).post("/api/v1/prices", override_body(**change), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors and message in str(errors[field]), errors
    assert not ModelPrice.objects.filter(project__isnull=False).exists()


def test_who_may_read_and_change_prices(project: Any, other_project: Any) -> None:
    read_only = key_client(issue_key(project, "read"))
    assert read_only.get("/api/v1/prices").status_code == 200
    refused = read_only.post("/api/v1/prices", override_body(), format="json")
    assert refused.status_code == 403 and "write" in refused.json()["detail"]
    ingest_only = key_client(issue_key(project, "ingest"))
    assert ingest_only.get("/api/v1/prices").status_code == 403
    assert key_client("tm_not-a-real-key").get("/api/v1/prices").status_code in (401, 403)
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/prices").status_code in (401, 403)

    viewer = person_client(project, "viewer")
    assert viewer.get("/api/v1/prices", {"project": "acme"}).status_code == 200
    assert viewer.post("/api/v1/prices?project=acme", override_body(), format="json").status_code == 403
    assert viewer.get("/api/v1/prices", {"project": "globex"}).status_code == 404
    assert viewer.post("/api/v1/prices?project=globex", override_body(), format="json").status_code == 404
    admin = person_client(project, "admin")
    from thinkmeter.models import Membership

    Membership.objects.create(user=admin.session_user, organization=other_project.organization, role="viewer")
    assert admin.post("/api/v1/prices", override_body(), format="json").status_code == 403  # which project?
    assert admin.post("/api/v1/prices?project=globex", override_body(), format="json").status_code == 403
    created = admin.post("/api/v1/prices?project=acme", override_body(), format="json")
    assert created.status_code == 201 and created.json()["project"] == "acme"


# --- admin and signals -------------------------------------------------------------------------


def test_saving_prices_in_the_admin_reaches_ingest_at_once(project: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(user)
    assert catalog_module.catalog.match(project.pk, "house-model-1") is None  # snapshot loaded, no entry
    form = {
        "project": str(project.pk), "model": "house-model", "provider": "acme", "pattern": r"^house-model-\d+$",
        "tier": "1", "position": "0", "source": "", "note": "",
        "rates-TOTAL_FORMS": "1", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0",
        "rates-MAX_NUM_FORMS": "1000",
        "rates-0-effective_from": "2026-01-01", "rates-0-effective_to": "", "rates-0-input": "0.4",
        "rates-0-cache_read": "", "rates-0-cache_write": "", "rates-0-output": "1.6", "rates-0-reasoning": "",
    }
    response = browser.post("/admin/ingest/modelprice/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = catalog_module.catalog.match(project.pk, "house-model-1")
    assert entry is not None and entry.model == "house-model"
    rates = entry.rates_on(date(2026, 6, 1))
    assert rates is not None and rates.output == Decimal("1.6")
    listing = browser.get("/admin/ingest/modelprice/", {"provider": "acme", "q": "house"})
    assert listing.status_code == 200 and b"house-model" in listing.content
    assert browser.get("/admin/ingest/classificationrule/").status_code == 200

    rate = PriceRate.objects.get(model_price__model="house-model")
    rate.output = Decimal("2")
    rate.save()
    changed = catalog_module.catalog.match(project.pk, "house-model-1")
    assert changed is not None and changed.rates_on(date(2026, 6, 1)).output == Decimal("2")  # type: ignore[union-attr]


# --- unpriced models -----------------------------------------------------------------------------


def test_unpriced_models_are_listed_with_counts_per_project(
    ch: ModuleType, client: Any, project: Any, project_key: str, other_project_key: str,
) -> None:
    trace = new_trace_id()
    first = llm_span("acme-llm-7", provider="acme", start=recent(3, 8), trace_id=trace)
    unpriced = [first, llm_span("acme-llm-7", provider="acme", start=recent(2, 9)),
                llm_span("acme-llm-7", provider="acme", start=recent(1, 10)),
                llm_span("o4-mini", start=recent(1, 11))]
    post_spans(client, project_key, unpriced)
    post_spans(client, project_key, [first, llm_span("o4-mini", start=recent(1, 12))])  # a re-sent span
    post_spans(client, project_key, [llm_span("acme-llm-7", provider="acme", start=recent(40))])  # out of range
    post_spans(client, other_project_key, [llm_span("globex-llm", provider="globex", start=recent(1))])

    api = key_client(project_key)
    body = api.get("/api/v1/prices/unpriced").json()
    assert len(body["results"]) == 1
    row = body["results"][0]
    assert (row["project"], row["model"], row["provider"], row["spans"], row["requests"]) == (
        "acme", "acme-llm-7", "acme", 3, 3)
    assert row["input_tokens"] == 3000 and row["price_now"] is None
    assert row["first_seen"].startswith(recent(3, 8).strftime("%Y-%m-%dT%H:%M"))
    assert row["last_seen"].startswith(recent(1, 10).strftime("%Y-%m-%dT%H:%M"))
    assert datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"]) == timedelta(days=30)

    wide = api.get("/api/v1/prices/unpriced", {"from": recent(45).date().isoformat()}).json()["results"]
    assert [r["spans"] for r in wide] == [4]
    narrow = api.get("/api/v1/prices/unpriced", {"from": recent(2).date().isoformat(),
                                                  "to": recent(2).date().isoformat()}).json()["results"]
    assert [r["spans"] for r in narrow] == [1]
    assert api.get("/api/v1/prices/unpriced", {"from": "last tuesday"}).status_code == 400
    assert api.get("/api/v1/prices/unpriced", {"from": "2026-02-01", "to": "2026-01-01"}).status_code == 400

    others = key_client(other_project_key).get("/api/v1/prices/unpriced").json()["results"]
    assert [(r["project"], r["model"]) for r in others] == [("globex", "globex-llm")]
    assert key_client(other_project_key).get("/api/v1/prices/unpriced", {"project": "acme"}).status_code == 404

    # A price added later: the listing says which entry would price the model now.
    api.post("/api/v1/prices", override_body("acme-llm-7", provider="acme", pattern="^acme-llm-7$"), format="json")
    assert api.get("/api/v1/prices/unpriced").json()["results"][0]["price_now"] == "acme-llm-7"


# --- classification rules ------------------------------------------------------------------------


def test_classification_rules_api_and_effect_on_ingest(
    ch: ModuleType, client: Any, project: Any, project_key: str, other_project_key: str,
) -> None:
    api = key_client(project_key)
    # A span before any rule: the project's (empty) rule list is now cached by ingest.
    post_spans(client, project_key, [llm_span("o4-mini", name="summarize early", start=recent(0, 0))])
    first = api.post("/api/v1/classification-rules",
                     {"field": "span_name", "pattern": "^summar", "task_type": "summarize", "tier": 1}, format="json")
    assert first.status_code == 201, first.content
    second = api.post("/api/v1/classification-rules",
                      {"field": "attribute", "attribute": "app.route", "pattern": "/code", "task_type": "code"},
                      format="json")
    assert second.status_code == 201
    assert second.json()["position"] > first.json()["position"] and second.json()["tier"] is None
    listed = api.get("/api/v1/classification-rules").json()["results"]
    assert [r["task_type"] for r in listed] == ["summarize", "code"] and listed[0]["project"] == "acme"
    assert key_client(other_project_key).get("/api/v1/classification-rules").json()["results"] == []

    post_spans(client, project_key, [
        llm_span("o4-mini", name="summarize doc", start=recent(0, 0)),
        llm_span("o4-mini", start=recent(0, 0), attributes={"app.route": "/code/review"}),
        llm_span("o4-mini", start=recent(0, 0)),
    ])
    rows = stored(ch, project.pk)
    # The new rules applied at once (signals invalidated the cached empty list).
    assert sorted((r["name"], r["task_type"], r["tier"]) for r in rows) == [
        ("chat o4-mini", "code", 2), ("chat o4-mini", "unclassified", 2), ("summarize doc", "summarize", 1),
        ("summarize early", "unclassified", 2)]

    bad = api.post("/api/v1/classification-rules", {"field": "attribute", "pattern": "(", "task_type": ""},
                   format="json")
    assert bad.status_code == 400
    assert set(bad.json()) >= {"pattern", "task_type"}
    missing_key = api.post("/api/v1/classification-rules", {"field": "attribute", "pattern": "x", "task_type": "t"},
                           format="json")
    assert missing_key.status_code == 400 and "attribute" in missing_key.json()
    assert api.post("/api/v1/classification-rules", {"field": "colour", "pattern": "x", "task_type": "t"},
                    format="json").status_code == 400

    read_only = key_client(issue_key(project, "read"))
    assert read_only.post("/api/v1/classification-rules", {"field": "service", "pattern": "x", "task_type": "t"},
                          format="json").status_code == 403
    rule_id = first.json()["id"]
    assert key_client(other_project_key).delete(f"/api/v1/classification-rules/{rule_id}").status_code == 404
    assert read_only.delete(f"/api/v1/classification-rules/{rule_id}").status_code == 403
    assert api.delete(f"/api/v1/classification-rules/{rule_id}").status_code == 204
    assert list(ClassificationRule.objects.filter(project=project).values_list("task_type", flat=True)) == ["code"]


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_schema_describes_these_endpoints_without_errors(capsys: Any) -> None:
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    for path, methods in [("/api/v1/prices", {"get", "post"}), ("/api/v1/prices/unpriced", {"get"}),
                          ("/api/v1/prices/{id}", {"delete"}), ("/api/v1/scores", {"get", "post"}),
                          ("/api/v1/classification-rules", {"get", "post"}),
                          ("/api/v1/classification-rules/{id}", {"delete"})]:
        assert methods <= set(schema["paths"][path]), path
    unpriced = schema["paths"]["/api/v1/prices/unpriced"]["get"]["responses"]["200"]["content"]
    assert unpriced["application/json"]["schema"]["$ref"].endswith("/UnpricedList")
    assert set(schema["components"]["schemas"]["UnpricedList"]["properties"]) == {"from", "to", "results"}
    problems = [line for line in capsys.readouterr().err.splitlines()
                if "ingest/" in line and "could not resolve authenticator" not in line]
    assert problems == []
