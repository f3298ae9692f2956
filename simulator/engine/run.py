"""The whole simulation for one policy (and optionally a sweep), as one JSON-able dict.

:func:`simulate` takes the request table, the tier prices and the policy as plain data
and returns the result that ``manage.py simulate`` prints and the API stores: at least
``requests, cost_usd, actual_cost_usd, quality, actual_quality, latency_p50_ms,
latency_p95_ms, share_by_tier, support, ci95 {cost_usd, quality}, warnings``.

When some requests need a configuration that was never (or too rarely) observed for
their task type, ``cost_usd``, ``quality`` and the latencies are ``null`` — the
simulator does not invent them — and ``supported_only`` gives the same comparison over
the requests it can estimate, with a warning naming what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from simulator.engine import metrics
from simulator.engine.counterfactual import ESCALATION, UNSUPPORTED, Counterfactual, Outcomes, TierPrice
from simulator.engine.policies import (
    Config,
    Policy,
    Route,
    Static,
    Sweep,
    Threshold,
    configs_of,
    parse_policy,
    with_value,
)
from simulator.engine.replay import Replayer
from simulator.engine.requests import RequestTable

Progress = Callable[[float, str], None]
REQUIRED_KEYS = ("requests", "cost_usd", "actual_cost_usd", "quality", "actual_quality", "latency_p50_ms",
                 "latency_p95_ms", "share_by_tier", "support", "ci95", "warnings")


def _quiet(fraction: float, message: str) -> None:
    return None


def simulate(table: RequestTable, prices: dict[int, TierPrice | None], policy_data: Any, *,
             sweep: Sweep | None = None, min_samples: int = 10, seed: int = 0, replicates: int = 1000,
             reference_replicates: int = 30, progress: Progress | None = None,
             model: Counterfactual | None = None) -> dict[str, Any]:
    """Replay ``policy_data`` (plain JSON/YAML data) over ``table``; see the module docstring."""
    report = progress or _quiet
    started = time.perf_counter()
    policy = parse_policy(policy_data)
    if sweep is not None:  # validate every point before any work
        for value in sweep.values():
            parse_policy(with_value(policy_data, sweep, value))
    report(0.05, f"estimating outcomes for {table.n:,} requests")
    if model is None:
        model = Counterfactual(table, prices, min_samples=min_samples, seed=seed)
    replayer = Replayer(model)
    out = replayer.run(policy)
    report(0.2, "resampling the class samples for the intervals")
    replicas = Replicas(model, reference_replicates, seed)
    report(0.3 if sweep else 0.7, "summarizing")
    result = _result(model, replayer, policy, policy_data, out, replicas, replicates=replicates, seed=seed)
    if sweep is not None:
        result["sweep"] = _sweep(model, policy, policy_data, sweep, replicas, replicates=replicates, seed=seed,
                                 report=report)
        for message in replayer.warnings:
            if message not in result["warnings"]:
                result["warnings"].append(message)
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    report(1.0, "done")
    return result


class Replicas:
    """Models whose class samples are bootstrap-resampled, on a fixed subsample of requests.

    :meth:`shifts` runs a policy on each and on the unresampled base (same requests), and
    returns how far total cost and mean quality moved: the counterfactual model's own
    uncertainty, which :func:`metrics.bootstrap_ci` adds to the traffic's. Outcomes are
    cached per replicate, so a sweep re-uses them. (On the subsample a quota's daily
    tallies are the subsample's; base and replicates share them, so the shift is still fair.)
    """

    SUBSAMPLE = 10_000

    def __init__(self, model: Counterfactual, count: int, seed: int) -> None:
        self.n = model.n
        rng = np.random.default_rng([seed, 11])
        size = min(model.n, self.SUBSAMPLE)
        subset = np.sort(rng.choice(model.n, size=size, replace=False)) if size < model.n else np.arange(model.n)
        self.base = model.replicate(None, subset) if count and model.n else None
        self.models = [model.replicate(np.random.default_rng([seed, 12, i]), subset, base=self.base)
                       for i in range(count)] if self.base is not None else []

    def shifts(self, policy: Route, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if self.base is None or not self.models:
            return None
        base = Replayer(self.base).run(policy)
        scale = self.n / len(base)
        base_cost = float(np.sum(base.cost_total)) * scale
        base_quality = base.quality[~np.isnan(base.quality)]
        if not np.isfinite(base_cost):
            return None
        d_cost, d_quality = [], []
        for replica in self.models:
            out = Replayer(replica).run(policy)
            cost = float(np.sum(out.cost_total)) * scale
            known = out.quality[~np.isnan(out.quality)]
            if not np.isfinite(cost):
                continue
            d_cost.append(cost - base_cost)
            d_quality.append(float(known.mean() - base_quality.mean()) if len(known) and len(base_quality) else 0.0)
        if not d_cost:
            return None
        return np.array(d_cost), np.array(d_quality)


def _result(model: Counterfactual, replayer: Replayer, policy: Policy, policy_data: Any, out: Outcomes,
            replicas: Replicas, *, replicates: int, seed: int) -> dict[str, Any]:
    n = model.n
    actual = metrics.summarize_actual(model)
    simulated = metrics.summarize(out, model)
    sup = metrics.support(out, model)
    supported = out.status != UNSUPPORTED
    complete = bool(supported.all())
    ci = (metrics.bootstrap_ci(out, replicates=replicates, seed=seed, reference=replicas.shifts(policy))
          if n and complete else {"cost_usd": None, "quality": None})
    warnings = _warnings(model, replayer, policy, out, sup, actual)

    def value(key: str) -> Any:
        return simulated[key] if complete else None

    cost = value("cost_usd")
    actual_cost = actual["cost_usd"]
    result: dict[str, Any] = {
        "requests": n,
        "cost_usd": cost,
        "actual_cost_usd": actual_cost,
        "savings_usd": metrics._num(actual_cost - cost) if cost is not None and actual_cost is not None else None,
        "savings_pct": (round(100.0 * (actual_cost - cost) / actual_cost, 4)
                        if cost is not None and actual_cost else None),
        "quality": value("quality"),
        "actual_quality": actual["quality"],
        "latency_p50_ms": value("latency_p50_ms"),
        "latency_p95_ms": value("latency_p95_ms"),
        "actual_latency_p50_ms": actual["latency_p50_ms"],
        "actual_latency_p95_ms": actual["latency_p95_ms"],
        "cost_by_token_type_usd": simulated["cost_by_token_type_usd"] if complete else None,
        "actual_cost_by_token_type_usd": actual["cost_by_token_type_usd"],
        "cost_per_request_usd": value("cost_per_request_usd"),
        "actual_cost_per_request_usd": metrics._num(actual_cost / n) if actual_cost is not None and n else None,
        "share_by_tier": simulated["share_by_tier"],
        "actual_share_by_tier": actual["share_by_tier"],
        "share_by_config": simulated["share_by_config"],
        "actual_share_by_config": actual["share_by_config"],
        "strong_share": simulated["strong_share"],
        "steps_per_request": simulated["steps_per_request"],
        "quality_requests": simulated["quality_requests"],
        "actual_quality_requests": actual["quality_requests"],
        "support": sup["support"],
        "support_direct": sup["support_direct"],
        "unsupported_requests": sup["unsupported_requests"],
        "support_by_class": sup["by_class"],
        "ci95": ci if complete else {"cost_usd": None, "quality": None},
        "tokens": simulated["tokens"],
        "warnings": warnings,
        "policy": policy_data,
        "prices": {str(t): (p.as_dict() if p else None) for t, p in sorted(model.prices.items())},
        "min_samples": model.min_samples,
    }
    if replayer.thresholds:
        result["threshold"] = replayer.thresholds[0] if len(replayer.thresholds) == 1 else replayer.thresholds
    if not complete and n:
        sub_actual = metrics.summarize_actual(model, supported)
        sub_sim = metrics.summarize(out, model, supported)
        sub_ci = metrics.bootstrap_ci(out, supported, replicates=replicates, seed=seed)
        result["supported_only"] = {
            "requests": int(supported.sum()),
            "cost_usd": sub_sim["cost_usd"], "actual_cost_usd": sub_actual["cost_usd"],
            "quality": sub_sim["quality"], "actual_quality": sub_actual["quality"],
            "latency_p50_ms": sub_sim["latency_p50_ms"], "latency_p95_ms": sub_sim["latency_p95_ms"],
            "actual_latency_p50_ms": sub_actual["latency_p50_ms"],
            "actual_latency_p95_ms": sub_actual["latency_p95_ms"],
            "ci95": sub_ci,
        }
    return result


def _warnings(model: Counterfactual, replayer: Replayer, policy: Policy, out: Outcomes, sup: dict[str, Any],
              actual: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    n = model.n
    if n == 0:
        return ["no requests in the chosen window: nothing to simulate"]
    for row in sup["by_class"]:
        where = f"{row['task_type']!r} at tier {row['tier']}, budget {row['thinking_budget']:,}"
        if row["unsupported"]:
            seen = row["reference_attempts"]
            why = "was never observed" if seen == 0 else f"was observed only {seen} times (fewer than {model.min_samples})"
            warnings.append(f"{where} {why}: {row['unsupported']:,} requests need it, and no number is made up "
                            "for them (cost, quality and latency are left empty; see supported_only)")
    for row in sup["by_class"]:
        ref = None
        for t, name in enumerate(model.task_names):
            if name == row["task_type"]:
                k = model.config_id(Config(row["tier"], row["thinking_budget"]))
                ref = model.ref(t, k)
        if ref is not None and ref.source == ESCALATION and row["estimated"]:
            warnings.append(
                f"{row['task_type']!r} at tier {row['tier']}, budget {row['thinking_budget']:,} is estimated from "
                f"escalation attempts only ({ref.n_all}): those were harder than average, so expect more tokens "
                "and lower quality than a fair sample would show")
    used_tiers = sorted({c.tier for c in configs_of(policy)} | {
        model.configs[k].tier for k in np.unique(out.config) if k >= 0})
    for tier in used_tiers:
        if model.prices.get(tier) is None:
            warnings.append(f"tier {tier} has no priced model: the cost of requests routed there is unknown")
    att = model.table.attempts
    for tier in used_tiers:
        price = model.prices.get(tier)
        if price is None:
            continue
        counts = att.loc[att["tier"] == tier, "model"].value_counts()
        counts = counts[counts > 0]
        if len(counts) > 1:
            shares = ", ".join(f"{m} {c / counts.sum():.0%}" for m, c in counts.head(4).items())
            warnings.append(f"tier {tier} ran several models ({shares}); simulated costs price tier {tier} "
                            f"as {price.model}")
    missing_quality = n - actual["quality_requests"]
    if actual["quality_requests"] == 0:
        warnings.append("no request carries a quality (a 'quality' score or thinkmeter.quality): quality is unknown")
    elif missing_quality:
        warnings.append(f"{missing_quality:,} of {n:,} requests carry no quality; quality averages the rest")
    if actual["unpriced_requests"]:
        warnings.append(f"{actual['unpriced_requests']:,} requests ran a model without a price: actual cost counts "
                        "them at $0 while the simulation prices them at their tier's model")
    warnings.extend(replayer.warnings)
    return warnings


def _sweep(model: Counterfactual, policy: Policy, policy_data: Any, sweep: Sweep, replicas: Replicas, *,
           replicates: int, seed: int, report: Progress) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    values = sweep.values()
    for i, v in enumerate(values):
        point_policy = parse_policy(with_value(policy_data, sweep, v))
        replayer = Replayer(model)
        out = replayer.run(point_policy)
        summary = metrics.summarize(out, model)
        sup = metrics.support(out, model)
        complete = sup["unsupported_requests"] == 0
        ci = (metrics.bootstrap_ci(out, replicates=replicates, seed=seed, reference=replicas.shifts(point_policy))
              if complete else None)
        points.append({
            "value": round(v, 9),
            "cost_usd": summary["cost_usd"] if complete else None,
            "quality": summary["quality"] if complete else None,
            "latency_p50_ms": summary["latency_p50_ms"] if complete else None,
            "latency_p95_ms": summary["latency_p95_ms"] if complete else None,
            "strong_share": summary["strong_share"],
            "share_by_tier": summary["share_by_tier"],
            "support": sup["support"],
            "threshold": replayer.thresholds[0] if len(replayer.thresholds) == 1 else None,
            "ci95": ci,
        })
        report(0.3 + 0.65 * (i + 1) / len(values), f"sweep {sweep.name} point {i + 1}/{len(values)}")
    costs = [p["cost_usd"] for p in points]
    qualities = [p["quality"] for p in points]
    usable = [i for i, (c, q) in enumerate(zip(costs, qualities, strict=True)) if c is not None and q is not None]
    result: dict[str, Any] = {
        "parameter": sweep.name, "points": points,
        "pareto": metrics.pareto_frontier(costs, qualities),
        "aiq": metrics.aiq([costs[i] for i in usable], [qualities[i] for i in usable]) if len(usable) >= 2 else None,
    }
    result.update(_routellm(model, policy, sweep, points))
    return result


def _routellm(model: Counterfactual, policy: Route, sweep: Sweep, points: list[dict[str, Any]]) -> dict[str, Any]:
    """APGR and CPT(50%), CPT(80%) for a sweep of a threshold policy's threshold (weak vs strong)."""
    if not isinstance(policy, Threshold) or sweep.path != ("threshold",):
        return {"apgr": None, "cpt50": None, "cpt80": None,
                "routellm_note": "APGR and CPT need a sweep of a threshold policy's threshold"}
    replayer = Replayer(model)
    weak = metrics.summarize(replayer.run(Static(policy.weak)), model)
    strong = metrics.summarize(replayer.run(Static(policy.strong)), model)
    usable = [p for p in points if p["quality"] is not None and p["strong_share"] is not None]
    out: dict[str, Any] = {"weak": {"cost_usd": weak["cost_usd"], "quality": weak["quality"]},
                           "strong": {"cost_usd": strong["cost_usd"], "quality": strong["quality"]},
                           "apgr": None, "cpt50": None, "cpt80": None}
    wq, sq = weak["quality"], strong["quality"]
    if wq is None or sq is None or len(usable) < 2 or wq == sq:
        out["routellm_note"] = "APGR and CPT need known weak and strong qualities that differ, and two points"
        return out
    pct = [100.0 * p["strong_share"] for p in usable]
    qual = [p["quality"] for p in usable]
    if max(pct) == min(pct):
        out["routellm_note"] = "every point routes the same share to the strong configuration"
        return out
    out["apgr"] = round(metrics.apgr(pct, qual, wq, sq), 6)
    for key, level in (("cpt50", 0.5), ("cpt80", 0.8)):
        value = metrics.cpt(pct, qual, wq, sq, level)
        out[key] = round(value, 4) if value is not None else None
    return out
