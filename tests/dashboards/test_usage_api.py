"""``GET /api/v1/usage`` (DESIGN.md §5) against known LLM calls sent through ``POST /v1/traces``.

Covers every dimension as a grouping and as a filter, the time buckets, CSV, top N plus
"other", the 400 answers, tenant isolation, and correctness while duplicates are
unmerged (a batch sent three times, one call reported by two instrumentations) through
each source: the daily and hourly rollups, the daily user rollups, raw spans and
rollups+spans; and that a usage query reads each table once and ranks groups only when
there are more than the limit.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from dashboards import queries
from tests.dashboards.api_support import (
    base_time,
    call,
    cost_parts,
    issue_key,
    key_client,
    money,
    new_span_id,
    new_trace_id,
    person_client,
    priced_catalog,
    root,
    send,
)

pytestmark = pytest.mark.django_db

MEASURE_KEYS = ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
                "reasoning_tokens", "visible_output_tokens", "cost_usd", "cost_input_usd", "cost_cache_usd",
                "cost_output_usd", "cost_reasoning_usd")


def calls_dataset(base: datetime) -> list[dict[str, Any]]:
    """Three calls with every dimension known (operation is "chat", provider "openai", project "acme")."""
    return [
        {"model": "tm-reasoner", "start": base + timedelta(minutes=15), "task_type": "support", "tier": 2,
         "user": "alice", "session": "s1", "service": "svc-a", "environment": "prod",
         "usage": {"input_tokens": 1000, "cache_read": 200, "cache_write": 100, "output_tokens": 500,
                   "reasoning_tokens": 300}},
        {"model": "tm-fast", "start": base + timedelta(hours=1, minutes=40), "task_type": "support", "tier": 1,
         "user": "bob", "session": "s2", "service": "svc-a", "environment": "prod",
         "usage": {"input_tokens": 2000, "output_tokens": 100}},
        {"model": "tm-reasoner", "start": base + timedelta(hours=23), "task_type": "code", "tier": 3,
         "user": "alice", "session": "s3", "service": "svc-b", "environment": "staging",
         "usage": {"input_tokens": 4000, "output_tokens": 3000, "reasoning_tokens": 2500}},
    ]


def dims_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"project": "acme", "service": item["service"], "environment": item["environment"], "provider": "openai",
            "model": item["model"], "tier": item["tier"], "task_type": item["task_type"], "user_id": item["user"],
            "session_id": item["session"], "operation": "chat"}


def expected_measures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What a usage row over ``items`` must say, computed by hand."""
    out: dict[str, Any] = dict.fromkeys(MEASURE_KEYS[:7], 0)
    money_sums: defaultdict[str, Decimal] = defaultdict(lambda: Decimal(0))
    for item in items:
        u = item["usage"]
        out["requests"] += 1
        out["input_tokens"] += u["input_tokens"]
        out["cache_read_tokens"] += u.get("cache_read", 0)
        out["cache_write_tokens"] += u.get("cache_write", 0)
        out["output_tokens"] += u["output_tokens"]
        out["reasoning_tokens"] += u.get("reasoning_tokens", 0)
        out["visible_output_tokens"] += u["output_tokens"] - u.get("reasoning_tokens", 0)
        parts = cost_parts(item["model"], u["input_tokens"], u["output_tokens"], u.get("reasoning_tokens", 0),
                           u.get("cache_read", 0), u.get("cache_write", 0))
        for name, key in (("total", "cost_usd"), ("input", "cost_input_usd"), ("cache", "cost_cache_usd"),
                          ("output", "cost_output_usd"), ("reasoning", "cost_reasoning_usd")):
            money_sums[key] += parts[name]
    out.update({key: money(value) for key, value in money_sums.items()})
    for key in ("cost_usd", "cost_input_usd", "cost_cache_usd", "cost_output_usd", "cost_reasoning_usd"):
        out.setdefault(key, money(Decimal(0)))
    return out


def send_dataset(key: str, items: list[dict[str, Any]]) -> None:
    by_resource: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        trace_id, root_id = new_trace_id(), new_span_id()
        spans = [root(item["start"] - timedelta(milliseconds=5), trace_id, root_id),
                 call(item["model"], item["start"], task_type=item["task_type"], tier=item["tier"],
                      user=item["user"], session=item["session"], trace_id=trace_id, parent_span_id=root_id,
                      **item["usage"])]
        by_resource[(item["service"], item["environment"])].extend(spans)
    for (service, environment), spans in by_resource.items():
        send(key, spans, service=service, environment=environment)


@pytest.fixture
def priced(project: Any, other_project: Any) -> Iterator[None]:
    yield from priced_catalog(project, other_project)


@pytest.fixture
def dataset(ch: ModuleType, priced: None, project_key: str) -> list[dict[str, Any]]:
    items = calls_dataset(base_time())
    send_dataset(project_key, items)
    return items


def get_usage(key: str, **params: Any) -> Any:
    return key_client(key).get("/api/v1/usage?" + urlencode(params, doseq=True))


def rows_of(key: str, **params: Any) -> list[dict[str, Any]]:
    response = get_usage(key, **params)
    assert response.status_code == 200, response.content
    return response.json()["rows"]


def measures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in MEASURE_KEYS}


# ---------------------------------------------------------------- totals and parts

def test_totals_match_hand_computed_costs_and_parts_add_up(dataset: list[dict[str, Any]], project_key: str) -> None:
    rows = rows_of(project_key)
    assert len(rows) == 1
    assert measures(rows[0]) == expected_measures(dataset)
    row = rows[0]
    parts = sum(Decimal(row[k]) for k in ("cost_input_usd", "cost_cache_usd", "cost_output_usd",
                                          "cost_reasoning_usd"))
    assert parts == Decimal(row["cost_usd"]) > 0
    assert row["visible_output_tokens"] == row["output_tokens"] - row["reasoning_tokens"]


def test_group_by_task_type_and_tier(dataset: list[dict[str, Any]], project_key: str) -> None:
    rows = rows_of(project_key, group_by="task_type,tier")
    got = {(r["task_type"], r["tier"]): measures(r) for r in rows}
    expected = {(i["task_type"], i["tier"]): expected_measures([i]) for i in dataset}
    assert got == expected
    # ordered by cost, largest first
    costs = [Decimal(r["cost_usd"]) for r in rows]
    assert costs == sorted(costs, reverse=True)


def test_every_dimension_groups_and_filters(dataset: list[dict[str, Any]], project_key: str) -> None:
    for dimension in queries.DIMENSIONS:
        rows = rows_of(project_key, group_by=dimension)
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for item in dataset:
            groups[dims_of(item)[dimension]].append(item)
        got = {r[dimension]: measures(r) for r in rows}
        assert got == {v: expected_measures(i) for v, i in groups.items()}, dimension
        if dimension == "project":
            continue  # the project is the scope: ?project=<slug> (test_tenant_isolation)
        value = dims_of(dataset[0])[dimension]
        matching = [i for i in dataset if dims_of(i)[dimension] == value]
        assert measures(rows_of(project_key, **{dimension: value})[0]) == expected_measures(matching), dimension
        nothing = rows_of(project_key, **{dimension: "7" if dimension == "tier" else "no-such-value"})
        assert (nothing[0]["requests"], nothing[0]["cost_usd"]) == (0, "0.000000000"), dimension


def test_filters_take_several_values_and_combine(dataset: list[dict[str, Any]], project_key: str) -> None:
    comma = rows_of(project_key, tier="1,3", group_by="tier")
    repeated = rows_of(project_key, tier=["1", "3"], group_by="tier")
    assert comma == repeated
    assert {r["tier"] for r in comma} == {1, 3}
    both = rows_of(project_key, user_id="alice", task_type="support")
    assert measures(both[0]) == expected_measures([dataset[0]])


def test_interval_buckets(dataset: list[dict[str, Any]], project_key: str) -> None:
    for interval in queries.INTERVALS:
        check_buckets(dataset, project_key, interval)


def check_buckets(dataset: list[dict[str, Any]], project_key: str, interval: str) -> None:
    def bucket(moment: datetime) -> datetime:
        if interval == "hour":
            return moment.replace(minute=0, second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if interval == "day":
            return day
        if interval == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in dataset:
        expected[bucket(item["start"]).strftime("%Y-%m-%dT%H:%M:%SZ")].append(item)
    rows = rows_of(project_key, interval=interval)
    assert [r["bucket"] for r in rows] == sorted(expected)
    assert {r["bucket"]: measures(r) for r in rows} == {b: expected_measures(i) for b, i in expected.items()}
    grouped = rows_of(project_key, interval=interval, group_by="model")
    assert sum(r["requests"] for r in grouped) == 3
    assert all("bucket" in r and "model" in r for r in grouped)


def test_csv_format(dataset: list[dict[str, Any]], project_key: str) -> None:
    response = get_usage(project_key, group_by="task_type,tier", interval="day", format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    records = list(csv.DictReader(io.StringIO(response.content.decode())))
    json_rows = rows_of(project_key, group_by="task_type,tier", interval="day")
    assert list(records[0]) == ["bucket", "task_type", "tier", *MEASURE_KEYS]
    assert records == [{k: str(v) for k, v in row.items()} for row in json_rows]


def test_csv_errors_are_json(project_key: str, ch: ModuleType) -> None:
    response = get_usage(project_key, group_by="colour", format="csv")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "colour" in response.json()["detail"]


def test_top_n_plus_other(dataset: list[dict[str, Any]], project_key: str) -> None:
    rows = rows_of(project_key, group_by="session_id", limit=1)
    top = max(dataset, key=lambda i: Decimal(expected_measures([i])["cost_usd"]))
    rest = [i for i in dataset if i is not top]
    assert [r["session_id"] for r in rows] == [top["session"], "other"]
    assert measures(rows[0]) == expected_measures([top])
    assert rows[1]["other"] is True and "other" not in rows[0]
    assert measures(rows[1]) == expected_measures(rest)
    # per bucket: each day has its own "other" row, ranked by cost over the whole range
    daily = rows_of(project_key, group_by="session_id", limit=1, interval="day")
    assert sum(r["requests"] for r in daily) == 3
    assert {r["session_id"] for r in daily} <= {top["session"], "other"}
    csv_text = get_usage(project_key, group_by="session_id", limit=1, format="csv").content.decode()
    header = csv_text.splitlines()[0].split(",")
    assert header[:3] == ["session_id", "other", "requests"]


def test_groups_are_ranked_only_past_the_limit(dataset: list[dict[str, Any]], project: Any) -> None:
    """With no more groups than the limit the plain grouped query answers (the ranking
    query's rows, in its order); with more, the ranking query with its "other" row."""
    from thinkmeter import clickhouse

    start, end = queries.time_range(None, None)

    def rows(sql: str, params: dict[str, Any], group_by: list[str]) -> list[tuple[Any, ...]]:
        got = clickhouse.execute(sql, params, tag="tests.usage", projects=[project.pk])
        return [(bool(r["is_top"]), *(r[f"g_{d}"] for d in group_by), *(r[m] for m in queries.MEASURES)) for r in got]

    for group_by, limit in ((["task_type", "tier"], 50), (["session_id"], 3), (["model", "user_id"], 3)):
        query = queries.UsageQuery([project.pk], start, end, group_by=group_by, limit=limit)
        ranked = rows(*queries.usage_sql(query), group_by)
        assert rows(*queries.few_groups_sql(query), group_by) == ranked and all(r[0] for r in ranked), group_by
    table = queries.usage_table(queries.UsageQuery([project.pk], start, end, group_by=["session_id"], limit=2))
    assert [bool(v) for v in table.column("is_top").to_pylist()] == [True, True, False]
    assert sum(table.column("requests").to_pylist()) == 3


@pytest.mark.parametrize("params, message", [
    ({"group_by": "colour"}, "colour"),
    ({"group_by": "task_type,colour"}, "colour"),
    ({"interval": "minute"}, "interval"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2025-13-45"}, "to"),
    ({"from": "2025-02-01", "to": "2025-01-01"}, "before"),
    ({"tier": "high"}, "tier"),
    ({"limit": "0"}, "limit"),
    ({"limit": "lots"}, "limit"),
    ({"interval": "hour", "from": "2024-01-01", "to": "2024-12-01"}, "hour"),
])
def test_bad_parameters_are_400_with_a_reason(project_key: str, ch: ModuleType, params: dict[str, str],
                                              message: str) -> None:
    response = get_usage(project_key, **params)
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]


def test_default_range_is_last_30_days_and_dates_work(ch: ModuleType, priced: None, project_key: str) -> None:
    now = datetime.now(UTC)
    old = {"model": "tm-fast", "start": now - timedelta(days=40), "task_type": "t", "tier": 1, "user": "u",
           "session": "s", "service": "svc-a", "environment": "prod",
           "usage": {"input_tokens": 10, "output_tokens": 10}}
    recent = {**old, "start": now - timedelta(hours=2), "usage": {"input_tokens": 20, "output_tokens": 20}}
    send_dataset(project_key, [old, recent])
    assert rows_of(project_key)[0]["input_tokens"] == 20
    since = (now - timedelta(days=41)).date().isoformat()
    assert rows_of(project_key, **{"from": since})[0]["input_tokens"] == 30
    until = (now - timedelta(days=39)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows_of(project_key, **{"from": since, "to": until})[0]["input_tokens"] == 10
    with_offset = (now - timedelta(days=39)).astimezone().isoformat()
    assert rows_of(project_key, **{"from": since, "to": with_offset})[0]["input_tokens"] == 10
    response = get_usage(project_key)
    start, end = (datetime.fromisoformat(response.json()[k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert end - start == timedelta(days=30) and end >= now


# ---------------------------------------------------------------- duplicates and sources

SOURCE_QUERIES: dict[str, dict[str, str]] = {
    "daily and hourly rollups": {"group_by": "task_type"},
    "hourly rollup": {"group_by": "task_type", "interval": "hour"},
    "daily user totals": {"group_by": "user_id", "interval": "day"},
    "daily user rollup": {"group_by": "user_id,model", "interval": "week"},
    "raw spans": {"group_by": "session_id"},
}


def test_plan_picks_rollups_and_covers_ragged_edges() -> None:
    start = datetime(2025, 3, 1, 10, 30, tzinfo=UTC)
    end = datetime(2025, 3, 4, 7, 15, tzinfo=UTC)

    def at(day: int, hour: int = 0) -> datetime:
        return datetime(2025, 3, day, hour, tzinfo=UTC)

    def tables(**kwargs: Any) -> list[tuple[str, datetime, datetime]]:
        return [(s.table, s.start, s.end) for s in queries.plan(queries.UsageQuery([1], start, end, **kwargs))]

    assert tables(group_by=["task_type", "tier"]) == [
        ("spans", start, at(1, 11)), ("usage_hourly", at(1, 11), at(2)), ("usage_daily", at(2), at(4)),
        ("usage_hourly", at(4), at(4, 7)), ("spans", at(4, 7), end),
    ]
    assert tables(group_by=["task_type"], interval="hour") == [
        ("spans", start, at(1, 11)), ("usage_hourly", at(1, 11), at(4, 7)), ("spans", at(4, 7), end),
    ]
    assert tables(group_by=["user_id"], interval="day") == [
        ("spans", start, at(2)), ("usage_daily_user_totals", at(2), at(4)), ("spans", at(4), end),
    ]
    assert tables(group_by=["user_id", "model"]) == [
        ("spans", start, at(2)), ("usage_daily_users", at(2), at(4)), ("spans", at(4), end),
    ]
    assert tables(group_by=["user_id"], interval="hour") == [("spans", start, end)]
    assert tables(filters={"session_id": "s"}) == [("spans", start, end)]
    assert tables(group_by=["user_id", "service"]) == [("spans", start, end)]
    assert [s.table for s in queries.plan(queries.UsageQuery([1], at(1), at(2)))] == ["usage_daily"]
    assert [s.table for s in queries.plan(queries.UsageQuery([1], at(1, 3), at(1, 5)))] == ["usage_hourly"]


def test_month_to_date_reads_rollups_only_and_counts_this_hour(ch: ModuleType, priced: None, project: Any,
                                                               project_key: str) -> None:
    """The Finance page's month to date ends with the current hour, read from the hourly
    rollup: ending at "now" read the hour's ragged end from spans, every span stored this
    hour on every page load."""
    now = datetime.now(UTC)
    first = queries.floor_day(now) - timedelta(days=28)
    segments = queries.plan(queries.mtd_query([project.pk], now.replace(minute=37, second=12), first))
    assert segments and {seg.table for seg in segments} <= {"usage_daily", "usage_hourly"}
    item = {**calls_dataset(now)[0], "start": now - timedelta(seconds=30)}
    send_dataset(project_key, [item])
    mtd = queries.mtd_spend_and_daily([project.pk], now=now)
    in_month = [item] if item["start"] >= mtd["month_start"] else []
    assert mtd["mtd_cost"] == pytest.approx(float(expected_measures(in_month)["cost_usd"]) if in_month else 0.0)


def test_measures_read_only_what_is_asked() -> None:
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    narrow = queries.UsageQuery([1], start, end, interval="day", measures=("cost_total", "requests"))
    assert narrow.measures == ("requests", "cost_total")  # in MEASURES order
    sql, _ = queries.usage_sql(narrow)
    assert "cost_input" not in sql and "sum(m_cost_total) AS cost_total" in sql
    assert queries.UsageQuery([1], start, end, group_by=["model"], measures=("requests",)).measures == (
        "requests", "cost_total")  # groups are ranked by cost
    with pytest.raises(ValueError, match="measures"):
        queries.UsageQuery([1], start, end, measures=("cost_usd",))


def test_each_table_is_read_once() -> None:
    """The two ragged ends of a range are one scan of their table (OR-ed time ranges)."""
    query = queries.UsageQuery([1], datetime(2025, 3, 1, 10, 30, tzinfo=UTC), datetime(2025, 3, 4, 7, 15, tzinfo=UTC),
                               group_by=["task_type"])
    sql, params = queries.usage_sql(query)
    assert [sql.count(f"FROM {table} ") for table in ("spans", "usage_hourly", "usage_daily")] == [1, 1, 1]
    assert {params[f"s{i}_{k}_start"] for i, k in ((0, 0), (0, 1))} == {query.start, datetime(2025, 3, 4, 7,
                                                                                             tzinfo=UTC)}


def test_sources_agree(dataset: list[dict[str, Any]], project_key: str) -> None:
    total = expected_measures(dataset)
    for name, params in SOURCE_QUERIES.items():
        rows = rows_of(project_key, **params)
        assert sum(r["requests"] for r in rows) == 3, name
        assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal(total["cost_usd"]), name
        assert sum(r["reasoning_tokens"] for r in rows) == total["reasoning_tokens"], name
    ragged = (base_time() - timedelta(minutes=1, seconds=3)).isoformat()
    rows = rows_of(project_key, **{"from": ragged, "group_by": "task_type"})
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal(total["cost_usd"])


def test_correct_while_duplicates_are_unmerged(ch: ModuleType, priced: None, project: Any,
                                               project_key: str) -> None:
    base = base_time()
    items = calls_dataset(base)
    spans: list[dict[str, Any]] = []
    for item in items:
        spans.append(call(item["model"], item["start"], task_type=item["task_type"], tier=item["tier"],
                          user=item["user"], session=item["session"], **item["usage"]))
    # one provider response reported by two instrumentations, in two traces
    twice: dict[str, Any] = {"model": "tm-fast", "start": base + timedelta(hours=2, minutes=5), "task_type": "support", "tier": 1,
             "user": "bob", "session": "s9", "service": "svc-a", "environment": "prod",
             "usage": {"input_tokens": 700, "output_tokens": 70}}
    for _ in range(2):
        spans.append(call("tm-fast", twice["start"], task_type="support", tier=1, user="bob", session="s9",
                          response_id="chatcmpl-shared-1", **twice["usage"]))
    for _ in range(3):  # the exporter retried the whole batch twice
        send(project_key, spans)
    stored = ch.execute("SELECT count() AS n, countIf(counted = 1) AS counted FROM spans "
                        "WHERE project_id IN {project_ids:Array(UInt32)}", tag="tests", projects=project.pk)[0]
    assert stored == {"n": 15, "counted": 4}  # duplicates are stored (unmerged) but count once
    expected = expected_measures([*items, twice])
    assert measures(rows_of(project_key)[0]) == expected
    for name, params in SOURCE_QUERIES.items():
        rows = rows_of(project_key, **params)
        assert sum(r["requests"] for r in rows) == 4, name
        assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal(expected["cost_usd"]), name
        assert sum(r["reasoning_tokens"] for r in rows) == expected["reasoning_tokens"], name
    ragged = (base - timedelta(minutes=1, seconds=3)).isoformat()
    assert measures(rows_of(project_key, **{"from": ragged})[0]) == expected


# ---------------------------------------------------------------- scope

def test_tenant_isolation(dataset: list[dict[str, Any]], project_key: str, other_project_key: str,
                          django_user_model: Any, project: Any, other_project: Any) -> None:
    other = rows_of(other_project_key)
    assert other[0]["requests"] == 0
    assert rows_of(other_project_key, group_by="user_id") == []
    assert get_usage(other_project_key, project="acme").status_code == 404
    assert get_usage(project_key, project="globex").status_code == 404
    assert rows_of(project_key, project="acme")[0]["requests"] == 3
    outsider = person_client(django_user_model, "outsider", other_project, "admin")
    assert outsider.get("/api/v1/usage?project=acme").status_code == 404
    assert outsider.get("/api/v1/usage").json()["rows"][0]["requests"] == 0


def test_a_person_sees_the_projects_of_their_organizations(dataset: list[dict[str, Any]], other_project_key: str,
                                                           django_user_model: Any, project: Any,
                                                           other_project: Any) -> None:
    send_dataset(other_project_key, dataset[:1])
    from thinkmeter.models import Membership

    client = person_client(django_user_model, "both", project, "viewer")
    user = django_user_model.objects.get(username="both")
    Membership.objects.create(user=user, organization=other_project.organization, role="finance")
    rows = client.get("/api/v1/usage?group_by=project").json()["rows"]
    assert {r["project"]: r["requests"] for r in rows} == {"acme": 3, "globex": 1}
    narrowed = client.get("/api/v1/usage?group_by=project&project=globex").json()["rows"]
    assert [r["project"] for r in narrowed] == ["globex"]
    admin = person_client(django_user_model, "root", superuser=True)
    assert {r["project"] for r in admin.get("/api/v1/usage?group_by=project").json()["rows"]} == {"acme", "globex"}


def test_keys_need_the_read_scope(ch: ModuleType, project: Any) -> None:
    assert key_client(issue_key(project, "ingest")).get("/api/v1/usage").status_code == 403
    assert key_client(issue_key(project, "read")).get("/api/v1/usage").status_code == 200
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/usage").status_code in (401, 403)
    assert key_client("tm_not-a-real-key").get("/api/v1/usage").status_code in (401, 403)


def test_page_functions_match_the_api(dataset: list[dict[str, Any]], project: Any, project_key: str) -> None:
    start, end = queries.time_range(None, None)
    over_time = queries.spend_over_time([project.pk], start, end, "day")
    api = rows_of(project_key, interval="day")
    assert [round(c, 9) for c in over_time["cost_total"]] == [float(r["cost_usd"]) for r in api]
    parts = over_time[["cost_input", "cost_cache", "cost_output", "cost_reasoning"]].sum(axis=1)
    assert list(parts.round(9)) == list(over_time["cost_total"].round(9))
    by_model = queries.spend_by([project.pk], start, end, "model", limit=1)
    assert list(by_model["label"]) == ["tm-reasoner", "other"]
    assert list(by_model["other"]) == [False, True]
    users = queries.top_users([project.pk], start, end, n=5)
    assert list(users["user_id"]) == ["alice", "bob"]
    share = queries.reasoning_share([project.pk], start, end)
    total = expected_measures(dataset)
    assert share["share"][0] == pytest.approx(float(total["cost_reasoning_usd"]) / float(total["cost_usd"]))
    mtd = queries.mtd_spend_and_daily([project.pk])
    in_month = [i for i in dataset if i["start"] >= mtd["month_start"]]
    assert mtd["mtd_cost"] == pytest.approx(float(expected_measures(in_month)["cost_usd"]) if in_month else 0.0)
    assert list(mtd["daily"]["day"])[-1] == datetime.now(UTC).date()
