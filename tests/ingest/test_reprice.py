"""``manage.py reprice``: stored costs follow a price change exactly, rollups follow the spans,
and running it twice changes nothing.

Spans go in through the real OTLP/HTTP receiver; costs are checked against
:func:`ingest.pricing.price` on the token counts read back from ClickHouse.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from types import ModuleType
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ingest import reprice
from ingest.catalog import Catalog, Entry, RatePeriod
from ingest.models import ModelPrice, PriceRate
from ingest.pricing import Rates, price
from tests.ingest.api_helpers import fresh_caches, shipped_catalog  # noqa: F401  (autouse fixtures)
from tests.ingest.otlp_builders import llm_span, post_spans
from thinkmeter.clickhouse import PROJECT_PARAM

pytestmark = pytest.mark.django_db

COST_COLUMNS = ("cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning",
                "cost_total")
SPANS_SQL = f"""
SELECT trace_id, span_id, counted, model, toDate(start_time) AS day, input_tokens, cache_read_tokens,
       cache_write_tokens, output_tokens, reasoning_tokens, {", ".join(COST_COLUMNS)}, price_id, priced
FROM spans WHERE project_id IN {PROJECT_PARAM} AND has_usage
ORDER BY trace_id, span_id, counted
"""
MEASURES = ("requests", "unpriced", "input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens",
            *COST_COLUMNS)


def _rollup_sql(table: str, time_column: str) -> str:
    sums = ", ".join(f"sum({m}) AS s_{m}" for m in MEASURES)
    return (f"SELECT project_id, {time_column} AS t, model, {sums} FROM {table} "
            f"WHERE project_id IN {PROJECT_PARAM} GROUP BY project_id, t, model ORDER BY project_id, t, model")


def _spans_rollup_sql(time_expression: str) -> str:
    sums = ", ".join(
        "count() AS s_requests" if m == "requests" else "countIf(NOT priced) AS s_unpriced" if m == "unpriced"
        else f"sum({m}) AS s_{m}" for m in MEASURES
    )
    return (f"SELECT project_id, {time_expression} AS t, model, {sums} FROM spans "
            f"WHERE project_id IN {PROJECT_PARAM} AND counted = 1 GROUP BY project_id, t, model "
            "ORDER BY project_id, t, model")


def spans(ch: ModuleType, project_id: int) -> list[dict[str, Any]]:
    return ch.execute(SPANS_SQL, tag="tests.reprice.spans", projects=project_id)


def rollups(ch: ModuleType, project_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Both rollups and the same sums computed from counted spans."""
    run = lambda sql: ch.execute(sql, tag="tests.reprice.rollups", projects=project_ids)  # noqa: E731
    return {
        "hourly": run(_rollup_sql("usage_hourly", "hour")),
        "hourly_from_spans": run(_spans_rollup_sql("toStartOfHour(start_time)")),
        "daily": run(_rollup_sql("usage_daily_users", "day")),
        "daily_from_spans": run(_spans_rollup_sql("toDate(start_time)")),
    }


def expected(rates: Rates | None, row: dict[str, Any]) -> tuple[Decimal, ...]:
    if rates is None:
        return (Decimal(0),) * 6
    cost = price(rates, row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"],
                 row["output_tokens"], row["reasoning_tokens"])
    return (cost.input, cost.cache_read, cost.cache_write, cost.output_visible, cost.reasoning, cost.total)


def identity(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["trace_id"], row["span_id"], row["counted"]


def counted_only(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["counted"]]


def costs(row: dict[str, Any]) -> tuple[Decimal, ...]:
    return tuple(row[c] for c in COST_COLUMNS)


def rates_of(rate: PriceRate) -> Rates:
    return Rates(rate.pk, Decimal(rate.input), Decimal(rate.output), rate.cache_read, rate.cache_write,
                 rate.reasoning)


def override(project: Any, model: str, *periods: tuple[date, date | None, dict[str, str]]) -> ModelPrice:
    entry = ModelPrice.objects.create(project=project, model=model, provider="acme", pattern=f"^{model}$",
                                      tier=3, reasoning=True)
    for start, end, values in periods:
        PriceRate.objects.create(model_price=entry, effective_from=start, effective_to=end, **values)
    return entry


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def random_call(rng: random.Random, model: str, start: datetime, provider: str = "openai") -> dict[str, Any]:
    input_tokens = rng.randint(1, 40_000)
    output_tokens = rng.randint(1, 20_000)
    return llm_span(
        model, provider=provider, start=start,
        input_tokens=input_tokens, cache_read=rng.randint(0, input_tokens // 2),
        cache_write=rng.choice([0, rng.randint(0, input_tokens // 4)]),
        output_tokens=output_tokens, reasoning_tokens=rng.randint(0, output_tokens),
        attributes={"user.id": rng.choice(["ann", "bob", "cy"]), "thinkmeter.task_type": "code"},
    )


@pytest.fixture
def days() -> dict[str, date]:
    today = datetime.now(UTC).date()
    return {"before": today - timedelta(days=5), "first": today - timedelta(days=4),
            "last": today - timedelta(days=3), "after": today - timedelta(days=2)}


OLD = {"input": "1.100000", "cache_read": "0.275000", "output": "4.400000"}
# Rates chosen so that many parts land exactly half-way between two nano-dollars.
NEW = {"input": "1.234567", "cache_read": "0.000500", "cache_write": "3.750000", "output": "7.500001",
       "reasoning": "12.500000"}


def test_reprice_follows_a_rate_change_exactly_and_rebuilds_rollups(
    ch: ModuleType, client: Any, project: Any, project_key: str, other_project: Any, other_project_key: str,
    days: dict[str, date],
) -> None:
    rng = random.Random(7)
    entry = override(project, "acme-reasoner", (days["before"] - timedelta(days=30), None, OLD))
    batches = []
    for name in ("before", "first", "last", "after"):
        day = days[name]
        batch = [random_call(rng, "acme-reasoner", at(day, h, 7 * h % 60)) for h in range(0, 24, 3)]
        batch += [random_call(rng, "o4-mini", at(day, 10 + h)) for h in range(2)]
        batch += [random_call(rng, "mystery-llm-7", at(day, 12 + h), provider="mystery") for h in range(2)]
        post_spans(client, project_key, batch)
        batches.append(batch)
    # Three spans sent again with a new one: stored for the trace view, never counted.
    post_spans(client, project_key, batches[1][:3] + [random_call(rng, "acme-reasoner", at(days["first"], 23, 30))])
    other = [random_call(rng, "o4-mini", at(days["first"], 9)), random_call(rng, "acme-reasoner", at(days["last"], 9))]
    post_spans(client, other_project_key, other)

    catalog_now = Catalog()
    o4_mini = catalog_now.match(project.pk, "o4-mini")
    assert o4_mini is not None and o4_mini.project_id is None
    old_rate = entry.rates.get()
    stored = spans(ch, project.pk)
    assert len(counted_only(stored)) == 4 * 12 + 1  # (the re-sent copies may be merged away already)
    for row in stored:  # ingest priced with the old override, the global o4-mini price, and no price
        rates = {"acme-reasoner": rates_of(old_rate), "o4-mini": o4_mini.rates_on(row["day"])}.get(row["model"])
        assert costs(row) == expected(rates, row)
        assert row["priced"] is (rates is not None)
    other_before = spans(ch, other_project.pk)

    # The price changes, and the unknown model gets a price.
    for name, value in NEW.items():
        setattr(old_rate, name, Decimal(value))
    old_rate.save()
    mystery = override(project, "mystery-llm-7", (days["before"] - timedelta(days=30), None,
                                                  {"input": "0.333333", "output": "0.777777"}))
    new_rates = {"acme-reasoner": rates_of(PriceRate.objects.get(pk=old_rate.pk)),
                 "mystery-llm-7": rates_of(mystery.rates.get()), "o4-mini": None}
    out, err = StringIO(), StringIO()
    call_command("reprice", "--project", "acme", "--from", days["first"].isoformat(), "--to",
                 days["last"].isoformat(), stdout=out, stderr=err)

    in_range = {days["first"], days["last"]}
    repriced = spans(ch, project.pk)
    # Merges may have collapsed the re-sent copies (ReplacingMergeTree); every counted row is there.
    stored_by_key = {identity(row): row for row in stored}
    assert {identity(r) for r in repriced if r["counted"]} == {identity(r) for r in stored if r["counted"]}
    ties = 0
    for after in repriced:
        before = stored_by_key[identity(after)]
        model_rates = new_rates.get(after["model"])
        if after["day"] in in_range and model_rates is not None:
            assert costs(after) == expected(model_rates, after), after
            assert after["price_id"] == model_rates.price_id and after["priced"] is True
            ties += after["cache_read_tokens"] % 2
        else:  # outside the range, and o4-mini (whose price did not change): exactly as before
            assert costs(after) == costs(before) and after["priced"] == before["priced"]
            assert after["price_id"] == before["price_id"]
    assert ties > 5  # half-way cases (0.0005 USD/M × odd tokens) were exercised
    assert counted_only(spans(ch, other_project.pk)) == counted_only(other_before)

    sums = rollups(ch, [project.pk, other_project.pk])
    assert sums["hourly"] == sums["hourly_from_spans"]
    assert sums["daily"] == sums["daily_from_spans"]
    counted = [r for r in repriced if r["counted"] == 1 and r["day"] in in_range]
    total = sum((expected(new_rates.get(r["model"]) or o4_mini.rates_on(r["day"]), r)[5] for r in counted),
                Decimal(0))
    rollup_total = sum((r["s_cost_total"] for r in sums["hourly"]
                        if r["project_id"] == project.pk and r["t"].date() in in_range), Decimal(0))
    assert rollup_total == total
    assert all(r["s_unpriced"] == 0 for r in sums["hourly"] if r["project_id"] == project.pk and
               r["t"].date() in in_range)
    assert any(r["s_unpriced"] > 0 for r in sums["hourly"] if r["t"].date() not in in_range)
    quantiles = ch.execute(
        f"SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(cost_q) AS q FROM usage_hourly "
        f"WHERE project_id IN {PROJECT_PARAM} AND toDate(hour) = {{day:Date}}",
        {"day": days["first"]}, tag="tests.reprice.quantiles", projects=project.pk,
    )
    assert 0 < quantiles[0]["q"][0] <= quantiles[0]["q"][3]

    progress = err.getvalue()
    assert "reprice [" in progress and "/" in progress
    steps = [line for line in progress.splitlines() if line.startswith("reprice [")]
    assert steps[-1].split("] ")[1].split()[0] == f"{len(steps)}/{len(steps)}"
    assert "acme-reasoner" in progress and "mystery-llm-7" in progress
    summary = out.getvalue()
    assert "acme" in summary and "spans repriced" in summary and "unpriced 4 -> 0" in summary

    # Idempotent: a second run leaves every span and every rollup sum as it was.
    call_command("reprice", "--project", "acme", "--from", days["first"].isoformat(), "--to",
                 days["last"].isoformat(), stdout=StringIO(), stderr=StringIO())
    assert counted_only(spans(ch, project.pk)) == counted_only(repriced)
    again = rollups(ch, [project.pk, other_project.pk])
    assert again == sums


def test_a_rate_change_inside_the_range_splits_the_repricing_by_day(
    ch: ModuleType, client: Any, project: Any, project_key: str, days: dict[str, date],
) -> None:
    rng = random.Random(11)
    cut = days["last"]
    entry = override(project, "acme-reasoner",
                     (days["before"], cut, {"input": "2.000000", "output": "8.000000"}),
                     (cut, None, {"input": "1.000000", "output": "4.000000"}))
    calls = [random_call(rng, "acme-reasoner", at(days[name], hour))
             for name in ("before", "first", "last", "after") for hour in (1, 13, 23)]
    post_spans(client, project_key, calls)
    early, late = entry.rates.order_by("effective_from")
    for row in spans(ch, project.pk):  # at ingest each span got the rate of its own day
        assert row["price_id"] == (early.pk if row["day"] < cut else late.pk)
        assert costs(row) == expected(rates_of(early if row["day"] < cut else late), row)

    early.input, late.output = Decimal("2.500000"), Decimal("3.999999")
    early.save()
    late.save()
    plan = reprice.plan(project.pk, days["before"], days["after"] + timedelta(days=1))
    assert [(g.day_from, g.day_to, g.rates.price_id if g.rates else None) for g in plan] == [
        (days["before"], cut, early.pk), (cut, days["after"] + timedelta(days=1), late.pk)]
    assert [g.spans for g in plan] == [6, 6]

    result = reprice.reprice(project.pk, days["before"], days["after"] + timedelta(days=1))
    assert result.spans == 12 and result.after is not None and result.before is not None
    for row in spans(ch, project.pk):
        rate = early if row["day"] < cut else late
        assert costs(row) == expected(rates_of(PriceRate.objects.get(pk=rate.pk)), row)
    sums = rollups(ch, [project.pk])
    assert sums["hourly"] == sums["hourly_from_spans"] and sums["daily"] == sums["daily_from_spans"]
    assert result.after.cost_total == sum((r["s_cost_total"] for r in sums["daily"]), Decimal(0))
    assert result.after.cost_total != result.before.cost_total


def test_a_removed_price_leaves_spans_unpriced_at_zero_cost(
    ch: ModuleType, client: Any, project: Any, project_key: str, days: dict[str, date],
) -> None:
    entry = override(project, "acme-reasoner", (days["before"], None, {"input": "2.000000", "output": "8.000000"}))
    post_spans(client, project_key, [random_call(random.Random(3), "acme-reasoner", at(days["first"], h))
                                     for h in (2, 4)])
    assert all(row["priced"] and row["cost_total"] > 0 for row in spans(ch, project.pk))
    entry.delete()
    result = reprice.reprice(project.pk, days["first"], days["last"])
    assert [g.rates for g in result.groups] == [None]
    for row in spans(ch, project.pk):
        assert row["priced"] is False and row["price_id"] == 0 and costs(row) == (Decimal(0),) * 6
    hourly = rollups(ch, [project.pk])["hourly"]
    assert sum(r["s_unpriced"] for r in hourly) == 2 and sum(r["s_cost_total"] for r in hourly) == 0


def test_segments_follow_rates_on_and_merge_equal_neighbours() -> None:
    import re

    a = Rates(1, Decimal(1), Decimal(2))
    b = Rates(2, Decimal(3), Decimal(4))
    d = date(2026, 3, 1)
    entry = Entry(1, None, "m", "p", 2, False, re.compile("m"), (
        RatePeriod(d, d + timedelta(days=10), a),
        RatePeriod(d + timedelta(days=10), d + timedelta(days=20), b),
        RatePeriod(d + timedelta(days=25), None, a),
    ))
    got = reprice.segments(entry, d - timedelta(days=5), d + timedelta(days=40))
    assert got == [
        (d - timedelta(days=5), d, None),
        (d, d + timedelta(days=10), a),
        (d + timedelta(days=10), d + timedelta(days=20), b),
        (d + timedelta(days=20), d + timedelta(days=25), None),
        (d + timedelta(days=25), d + timedelta(days=40), a),
    ]
    for start, end, rates in got:  # every day of a segment has the segment's rate
        assert all(entry.rates_on(start + timedelta(days=i)) == rates for i in range((end - start).days))
    assert reprice.segments(None, d, d + timedelta(days=3)) == [(d, d + timedelta(days=3), None)]
    assert reprice.rate_params(Rates(9, Decimal("0.000500"), Decimal("15")))["rate_input"] == "0.000000000500"


def test_command_rejects_bad_arguments(project: Any) -> None:
    with pytest.raises(CommandError, match="no project"):
        call_command("reprice", "--project", "nope", "--from", "2026-01-01", "--to", "2026-01-02")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("reprice", "--project", "acme", "--from", "yesterday", "--to", "2026-01-02")
    with pytest.raises(CommandError, match="before --from"):
        call_command("reprice", "--project", "acme", "--from", "2026-01-05", "--to", "2026-01-02")


FULL_SQL = {
    "usage_hourly": (
        "SELECT project_id, hour, service, environment, provider, model, operation, task_type, tier, {sums}, {qs} "
        f"FROM usage_hourly WHERE project_id IN {PROJECT_PARAM} "
        "GROUP BY project_id, hour, service, environment, provider, model, operation, task_type, tier ORDER BY ALL"
    ),
    "usage_daily_users": (
        "SELECT project_id, day, user_id, task_type, tier, model, {sums}, {qs} "
        f"FROM usage_daily_users WHERE project_id IN {PROJECT_PARAM} "
        "GROUP BY project_id, day, user_id, task_type, tier, model ORDER BY ALL"
    ),
}


def full_rollups(ch: ModuleType, project_id: int) -> dict[str, list[dict[str, Any]]]:
    quantile_states = ("reasoning_q", "cost_q", "duration_q", "ttft_q")
    sums = ", ".join(f"sum({c}) AS s_{c}" for c in reprice.rollup_columns("usage_hourly")[9:]
                     if c not in quantile_states)
    qs = ", ".join(f"quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)({c}) AS m_{c}" for c in quantile_states)
    return {table: ch.execute(sql.replace("{sums}", sums).replace("{qs}", qs), tag="tests.reprice.full",
                              projects=project_id)
            for table, sql in FULL_SQL.items()}


def test_rebuilt_rollups_equal_what_the_materialized_views_wrote(
    ch: ModuleType, client: Any, project: Any, project_key: str, days: dict[str, date],
) -> None:
    """With unchanged prices, a reprice rebuilds every rollup column as the views had it."""
    rng = random.Random(5)
    for name in ("first", "last"):
        for chunk in range(3):  # several inserts: the views saw several blocks
            calls = []
            for minute in range(0, 60, 7):
                call = random_call(rng, rng.choice(["o4-mini", "gpt-4.1", "claude-sonnet-4"]),
                                   at(days[name], 8 + chunk, minute),
                                   provider="anthropic" if chunk == 2 else "openai")
                call["attributes"].update({"thinkmeter.quality": rng.random(), "thinkmeter.thinking_budget": 4000,
                                           "gen_ai.response.time_to_first_chunk": rng.random()})
                call["status"] = 2 if minute == 7 else 0
                calls.append(call)
            post_spans(client, project_key, calls, resource={"service.name": f"svc-{chunk % 2}"})
    written = full_rollups(ch, project.pk)
    assert len(written["usage_hourly"]) >= 6 and len(written["usage_daily_users"]) >= 6
    assert any(r["s_errors"] for r in written["usage_hourly"]) and any(r["s_quality_count"] for r in
                                                                       written["usage_hourly"])
    reprice.reprice(project.pk, days["first"], days["last"] + timedelta(days=1))
    rebuilt = full_rollups(ch, project.pk)
    for table in FULL_SQL:
        assert len(rebuilt[table]) == len(written[table])
        for old, new in zip(written[table], rebuilt[table], strict=True):
            exact = {k: v for k, v in old.items() if not k.startswith("m_")}
            assert {k: new[k] for k in exact} == exact
            for key in (k for k in old if k.startswith("m_")):
                assert new[key] == pytest.approx(old[key], rel=1e-6), key
