"""The engine's correctness on synthetic worlds whose every outcome is known (issue 6, item 6).

- Replaying the policy that actually ran reproduces the actual cost (within 0.1%) and the
  actual quality exactly.
- With some exploration traffic, estimates for policies inside the support fall within
  ±5% of the true cost and ±3 points (0.03) of the true quality, where "true" is the
  policy evaluated on the ground truth by an independent implementation (``world.truth``).
- A configuration never observed for a task type gives no number, a warning and a
  supported-only comparison.
- Policy semantics on small hand-made tables (quota in time order, classifier rules,
  threshold calibration, oracle, random).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.engine.counterfactual import Counterfactual
from simulator.engine.policies import Config, parse_sweep
from simulator.engine.requests import RequestTable, build_requests
from simulator.engine.run import REQUIRED_KEYS, simulate
from tests.simulator import world as W
from tests.simulator.test_requests import T0, call

STRONG = {"tier": 3, "thinking_budget": 10000}
WEAK = {"tier": 1, "thinking_budget": 0}


def config(tier: int, budget: int) -> dict[str, int]:
    return {"tier": tier, "thinking_budget": budget}


def chain(start: tuple[int, int]) -> list[dict[str, int]]:
    """The escalation chain the world's traffic follows from ``start``."""
    c = W.CONFIGS.index(start)
    steps = [config(*W.CONFIGS[c])]
    while (c := W._next_config(c)) is not None:  # noqa: SLF001 - the world's own rule
        steps.append(config(*W.CONFIGS[c]))
    return steps


def actual_policy() -> dict[str, Any]:
    """The traffic's policy of a ``fixed_routes`` world: per task type, a cascade up the tiers at quality 0.5."""
    routes = {task: {"kind": "cascade", "steps": chain(start), "accept": {"min_quality": 0.5}}
              for task, start in W.FIXED_ROUTES.items()}
    return {"kind": "task_map", "routes": routes, "default": WEAK}


@pytest.mark.parametrize("requests_per_trace", [1, 3])
def test_replaying_the_policy_that_ran_reproduces_what_happened(requests_per_trace: int) -> None:
    world = W.make_world(12_000, seed=5, explore=0.0, fixed_routes=True, requests_per_trace=requests_per_trace)
    table = build_requests(world.spans)
    assert table.n == world.n  # one request per request id, even with several in a trace
    assert (table.requests["attempts"] > 1).mean() > 0.1  # plenty of escalations
    result = simulate(table, W.PRICES, actual_policy(), reference_replicates=5)
    assert set(REQUIRED_KEYS) <= set(result)
    assert result["actual_cost_usd"] == pytest.approx(float(world.spans["cost_total"].sum()), rel=1e-9)
    assert abs(result["cost_usd"] - result["actual_cost_usd"]) <= 0.001 * result["actual_cost_usd"]
    assert result["quality"] == result["actual_quality"]  # exactly
    assert result["latency_p50_ms"] == result["actual_latency_p50_ms"]
    assert result["latency_p95_ms"] == result["actual_latency_p95_ms"]
    assert result["share_by_tier"] == result["actual_share_by_tier"]
    assert result["share_by_config"] == result["actual_share_by_config"]
    assert result["support"] == 1.0 and result["support_direct"] == 1.0
    assert result["steps_per_request"] == pytest.approx(table.requests["attempts"].mean(), abs=1e-4)
    assert result["ci95"]["cost_usd"][0] <= result["cost_usd"] <= result["ci95"]["cost_usd"][1]


def test_unscored_attempts_and_requests_keep_actual_and_simulated_quality_comparable() -> None:
    """Apps often score only the final answer, and some requests never: both sides average the same requests."""
    world = W.make_world(12_000, seed=6, explore=0.1, fixed_routes=True)
    spans = world.spans.copy()
    last = spans.groupby("trace_id")["attempt"].transform("max")
    spans.loc[spans["attempt"] < last, "quality"] = np.nan  # only the final answer is scored
    never = spans["trace_id"].isin(spans["trace_id"].drop_duplicates().sample(frac=0.1, random_state=1))
    spans.loc[never, "quality"] = np.nan  # 10% of requests are never scored
    table = build_requests(spans)
    replay = simulate(table, W.PRICES, actual_policy(), reference_replicates=0)
    assert replay["quality_requests"] == replay["actual_quality_requests"] == int((~never).groupby(
        spans["trace_id"]).all().sum())
    weak = simulate(table, W.PRICES, {"kind": "static", **WEAK}, reference_replicates=0)
    assert weak["quality_requests"] == weak["actual_quality_requests"]
    assert any("carry no quality" in w for w in weak["warnings"])
    # Escalated requests' first attempts (unscored) still decide a cascade: by their class estimate.
    cascade = simulate(table, W.PRICES, {"kind": "cascade", "steps": [WEAK, STRONG], "accept": {"min_quality": 0.6}},
                       reference_replicates=0)
    assert cascade["steps_per_request"] > 1.1


@lru_cache(maxsize=1)
def explored_world() -> tuple[W.World, RequestTable, Counterfactual]:
    world = W.make_world(60_000, seed=101, explore=0.2)
    table = build_requests(world.spans)
    return world, table, Counterfactual(table, W.PRICES)


POLICIES_IN_SUPPORT: dict[str, dict[str, Any]] = {
    "static weak": {"kind": "static", **WEAK},
    "static strong": {"kind": "static", **STRONG},
    "static middle": {"kind": "static", "tier": 2, "thinking_budget": 4000},
    "thinking for code only": {"kind": "task_map", "routes": {"code_generation": STRONG}, "default": WEAK},
    "cascade": {"kind": "cascade", "steps": [WEAK, STRONG], "accept": {"min_quality": 0.6}},
    "three-step cascade": {"kind": "cascade", "steps": [config(1, 4000), config(2, 4000), STRONG],
                           "accept": {"min_quality": 0.5}},
    "router score, 30% strong": {"kind": "threshold", "score": {"attribute": "router.score"},
                                 "calibrate": {"strong_share": 0.3}, "strong": STRONG, "weak": WEAK},
    "daily thinking quota": {"kind": "quota", "policy": {"kind": "static", **STRONG}, "per": "user",
                             "daily_reasoning_tokens": 200_000, "downgrade": WEAK},
}


@pytest.mark.parametrize("name", list(POLICIES_IN_SUPPORT))
def test_estimates_fall_within_tolerance_of_the_truth(name: str) -> None:
    world, table, model = explored_world()
    policy = POLICIES_IN_SUPPORT[name]
    result = simulate(table, W.PRICES, policy, model=model, reference_replicates=10)
    true = W.truth(world, policy)
    assert result["support"] == 1.0
    assert W.relative_error(result["cost_usd"], true["cost_usd"]) <= 0.05, (result["cost_usd"], true)
    assert abs(result["quality"] - true["quality"]) <= 0.03, (result["quality"], true)
    lo, hi = result["ci95"]["cost_usd"]
    assert lo < result["cost_usd"] < hi
    q_lo, q_hi = result["ci95"]["quality"]
    assert q_lo < result["quality"] < q_hi
    # A policy different from what ran cannot lean on the requests' own outcomes alone.
    assert result["support_direct"] < 1.0


def test_estimates_are_not_simply_the_actual_numbers() -> None:
    """Guard against a simulator that echoes what happened: the policies differ widely in cost."""
    world, table, model = explored_world()
    weak = simulate(table, W.PRICES, POLICIES_IN_SUPPORT["static weak"], model=model, reference_replicates=0)
    strong = simulate(table, W.PRICES, POLICIES_IN_SUPPORT["static strong"], model=model, reference_replicates=0)
    assert strong["cost_usd"] > 10 * weak["cost_usd"]
    assert strong["quality"] > weak["quality"] + 0.15
    assert weak["cost_usd"] < weak["actual_cost_usd"] < strong["cost_usd"]
    assert weak["share_by_tier"] == {"1": 1.0} and strong["share_by_config"] == [
        {"tier": 3, "thinking_budget": 10000, "share": 1.0}]
    assert weak["savings_usd"] == pytest.approx(weak["actual_cost_usd"] - weak["cost_usd"], abs=1e-6)


def test_a_configuration_never_observed_gives_no_number() -> None:
    world = W.make_world(3_000, seed=9, explore=0.0, fixed_routes=True)
    table = build_requests(world.spans)
    # Classification always starts at (1, 0) and escalates to (2, 4000): (3, 0) never ran for any task type.
    result = simulate(table, W.PRICES, {"kind": "task_map", "routes": {"classification": config(3, 0),
                                                                       "code_generation": config(2, 4000)},
                                        "default": config(1, 4000)}, reference_replicates=5)
    classification = int((table.requests["task_type"] == "classification").sum())
    assert result["cost_usd"] is None and result["quality"] is None and result["latency_p95_ms"] is None
    assert result["ci95"] == {"cost_usd": None, "quality": None}
    assert result["unsupported_requests"] == classification
    assert result["support"] == pytest.approx(1 - classification / table.n, abs=1e-6)
    assert any("'classification' at tier 3, budget 0 was never observed" in w for w in result["warnings"])
    supported = result["supported_only"]
    assert supported["requests"] == table.n - classification
    assert supported["cost_usd"] > 0 and supported["actual_cost_usd"] > 0 and supported["quality"] is not None
    row = next(r for r in result["support_by_class"] if r["task_type"] == "classification" and r["tier"] == 3)
    assert row["unsupported"] == classification and row["reference_attempts"] == 0


def test_a_thin_class_is_unsupported_below_min_samples() -> None:
    world = W.make_world(3_000, seed=9, explore=0.01)
    table = build_requests(world.spans)
    policy = {"kind": "static", "tier": 3, "thinking_budget": 0}
    model = Counterfactual(table, W.PRICES, min_samples=10_000)
    result = simulate(table, W.PRICES, policy, model=model, reference_replicates=0)
    assert result["cost_usd"] is None
    assert any("was observed only" in w and "fewer than 10000" in w for w in result["warnings"])


# ---------------------------------------------------------------- semantics on small tables

def hand_table(rows: list[dict[str, Any]]) -> RequestTable:
    return build_requests(pd.DataFrame(rows))


def shares(result: dict[str, Any]) -> dict[tuple[int, int], float]:
    return {(r["tier"], r["thinking_budget"]): r["share"] for r in result["share_by_config"]}


def test_quota_downgrades_in_time_order_per_user_and_day() -> None:
    day = 86_400
    rows = []
    for i, (user, start) in enumerate([("ann", 10), ("ann", 20), ("ann", 30), ("bob", 15), ("ann", day + 5),
                                       ("", 40), ("", 50)]):
        rows.append(call(f"t{i}", f"s{i}", start, tier=3, budget=10000, user_id=user, quality=0.9))
    table = hand_table(rows)
    prices = {t: W.PRICES[t] for t in (1, 2, 3)}
    # Each request thinks 20 tokens at (3, 10000) (all observed); a cap of 30 allows two requests a day.
    policy = {"kind": "quota", "policy": {"kind": "static", "tier": 3, "thinking_budget": 10000}, "per": "user",
              "daily_reasoning_tokens": 30, "downgrade": {"tier": 3, "thinking_budget": 0}}
    model = Counterfactual(table, prices, min_samples=1)
    result = simulate(table, prices, policy, model=model, reference_replicates=0)
    # ann's third request that day is downgraded (40 tokens already used); bob, ann's next day and
    # requests without a user are not. The downgrade configuration never ran: exactly that request is unsupported.
    assert result["unsupported_requests"] == 1
    by_class = result["support_by_class"]
    assert [r for r in by_class if r["thinking_budget"] == 0][0]["requests"] == 1
    downgraded = model.table.requests.index[model.table.requests["start_ns"] == T0 + 30 * 10**9].item()
    assert np.isnan(model.outcome(Config(3, 0)).cost_total[downgraded])
    assert not np.isnan(model.outcome(Config(3, 10000)).cost_total).any()


def test_classifier_routes_by_the_first_matching_rule() -> None:
    rows = [
        call("a", "a", 1, task="code", tokens=100, **{"attr:app.plan": "free"}, prompt_text="write a parser"),
        call("b", "b", 2, task="chat", tokens=9000, **{"attr:app.plan": "free"}, prompt_text="long story"),
        call("c", "c", 3, task="chat", tokens=100, **{"attr:app.plan": "pro"}, prompt_text="hello"),
        call("d", "d", 4, task="chat", tokens=100, **{"attr:app.plan": "free"}, prompt_text="Please PROVE this"),
        call("e", "e", 5, task="chat", tokens=100, **{"attr:app.plan": "free"}, prompt_text="hi"),
    ]
    table = hand_table(rows)
    policy = {"kind": "classifier", "rules": [
        {"when": {"task_type": "code"}, "complexity": "high"},
        {"when": {"keywords": ["prove"]}, "complexity": "high"},
        {"when": {"prompt_tokens": {"gte": 4000}}, "complexity": "medium"},
        {"when": {"attributes": {"app.plan": ["pro", "team"]}}, "complexity": "medium"},
    ], "default": "low", "routes": {"low": config(1, 0), "medium": config(1, 4000), "high": config(1, 10000)}}
    # Every request ran (1, 0); the other budgets are unsupported, which makes the routing visible.
    model = Counterfactual(table, W.PRICES, min_samples=1)
    result = simulate(table, W.PRICES, policy, model=model, reference_replicates=0)
    assert shares(result) == {(1, 0): 0.2, (1, 4000): 0.4, (1, 10000): 0.4}
    assert result["unsupported_requests"] == 4


def test_threshold_calibration_sends_the_asked_share_to_the_strong_configuration() -> None:
    world, table, model = explored_world()
    policy = {"kind": "threshold", "score": {"attribute": "router.score"}, "calibrate": {"strong_share": 0.25},
              "strong": STRONG, "weak": WEAK}
    result = simulate(table, W.PRICES, policy, model=model, reference_replicates=0)
    assert result["strong_share"] == pytest.approx(0.25, abs=0.001)
    scores = pd.to_numeric(table.requests["attr:router.score"]).to_numpy()
    assert result["threshold"] == pytest.approx(float(np.quantile(scores, 0.75)))
    for score in ("difficulty", "prompt_tokens"):
        other = simulate(table, W.PRICES, {**policy, "score": score}, model=model, reference_replicates=0)
        assert other["strong_share"] == pytest.approx(0.25, abs=0.001)


def test_oracle_beats_every_single_configuration_and_random_follows_its_weights() -> None:
    world, table, model = explored_world()
    candidates = [WEAK, config(2, 4000), STRONG]
    oracle = simulate(table, W.PRICES, {"kind": "oracle", "candidates": candidates}, model=model,
                      reference_replicates=0)
    singles = [simulate(table, W.PRICES, {"kind": "static", **c}, model=model, reference_replicates=0)
               for c in candidates]
    assert oracle["quality"] >= max(s["quality"] for s in singles)
    cheap = simulate(table, W.PRICES, {"kind": "oracle", "candidates": candidates, "min_quality": 0.5},
                     model=model, reference_replicates=0)
    assert cheap["cost_usd"] < oracle["cost_usd"]
    random = simulate(table, W.PRICES, {"kind": "random", "choices": [{**WEAK, "weight": 3}, {**STRONG, "weight": 1}],
                                        "seed": 3}, model=model, reference_replicates=0)
    assert shares(random)[(1, 0)] == pytest.approx(0.75, abs=0.01)


def test_a_threshold_sweep_gives_the_curve_frontier_and_routing_metrics() -> None:
    world, table, model = explored_world()
    policy = {"kind": "threshold", "score": {"attribute": "router.score"}, "threshold": 0.0, "strong": STRONG,
              "weak": WEAK}
    result = simulate(table, W.PRICES, policy, model=model, sweep=parse_sweep("threshold:-3..3:7"),
                      reference_replicates=3)
    sweep = result["sweep"]
    points = sweep["points"]
    assert [p["value"] for p in points] == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    shares_strong = [p["strong_share"] for p in points]
    assert shares_strong == sorted(shares_strong, reverse=True) and shares_strong[0] > 0.99
    costs = [p["cost_usd"] for p in points]
    assert costs == sorted(costs, reverse=True)  # fewer strong calls, lower cost
    assert set(sweep["pareto"]) <= set(range(len(points))) and sweep["pareto"]
    assert 0.0 < sweep["apgr"] < 1.0
    assert 0.0 <= sweep["cpt50"] <= sweep["cpt80"] <= 100.0
    assert 0.0 < sweep["aiq"] <= max(p["quality"] for p in points)
    assert sweep["weak"]["quality"] < sweep["strong"]["quality"]
    # The top-level result is the policy as written (threshold 0.0), the same as that sweep point.
    assert result["cost_usd"] == pytest.approx(points[3]["cost_usd"])


def test_an_empty_table_still_answers_with_every_key() -> None:
    table = build_requests(pd.DataFrame(columns=list(pd.DataFrame([call("a", "a", 0)]).columns)))
    result = simulate(table, {}, {"kind": "static", **WEAK})
    assert set(REQUIRED_KEYS) <= set(result)
    assert result["requests"] == 0 and result["warnings"] == ["no requests in the chosen window: nothing to simulate"]
