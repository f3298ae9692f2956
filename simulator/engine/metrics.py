"""Results of a replay: totals, intervals, support, and the routing-benchmark metrics.

- :func:`summarize` / :func:`summarize_actual`: cost split by token type, quality, p50/p95
  latency, share of requests per tier and per configuration.
- :func:`bootstrap_ci`: 95% intervals on total cost and mean quality. Requests are
  resampled in blocks (1,000 blocks of requests, 1,000 replicates: a million requests cost
  a matrix product, not a million draws per replicate), and the class samples the
  estimates come from are resampled too (the caller passes how the result moved on
  those replicates), so the interval covers the counterfactual model's own
  uncertainty, not only the traffic's. They do not cover the model's own assumption
  (that a request keeps its quantile from one configuration to another): where a policy
  selects requests on something that predicts their outcome better than what was
  observed of them, expect a bias the interval does not show.
- :func:`pareto_frontier`: the points no other point beats on both cost and quality.
- :func:`apgr`, :func:`cpt`, :func:`routellm_auc`: as RouteLLM defines them (Ong et al.,
  "RouteLLM: Learning to Route LLMs with Preference Data", arXiv:2406.18665, §5;
  reference code ``routellm/evals/evaluate.py`` in github.com/lm-sys/RouteLLM).
- :func:`non_decreasing_convex_hull`, :func:`aiq`: as RouterBench defines them (Hu et al.,
  "RouterBench: A Benchmark for Multi-LLM Routing System", arXiv:2403.12031, §3;
  reference code ``evaluation/AIQ.py`` in github.com/withmartian/routerbench).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from simulator.engine import stats
from simulator.engine.counterfactual import DIRECT, TRACKED_CONFIGS, UNSUPPORTED, Counterfactual, Outcomes

PART_NAMES = {"cost_input": "input", "cost_cache_read": "cache_read", "cost_cache_write": "cache_write",
              "cost_output": "output", "cost_reasoning": "reasoning"}
ACTUAL_PARTS = {"actual_cost_input": "input", "actual_cost_cache_read": "cache_read",
                "actual_cost_cache_write": "cache_write", "actual_cost_output_visible": "output",
                "actual_cost_reasoning": "reasoning"}


def _num(value: float | None, digits: int = 9) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """∫ y dx by the trapezoid rule (numpy's ``trapz``, renamed ``trapezoid`` in numpy 2)."""
    if len(x) < 2:
        return 0.0
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def _mean(values: np.ndarray) -> float | None:
    known = values[~np.isnan(values)]
    return float(np.mean(known)) if len(known) else None


def _percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    known = values[~np.isnan(values)]
    if not len(known):
        return None, None
    p50, p95 = np.percentile(known, [50, 95])
    return float(p50), float(p95)


def _shares(tiers: np.ndarray, budgets: np.ndarray) -> tuple[dict[str, float], list[dict[str, Any]]]:
    n = len(tiers)
    if not n:
        return {}, []
    by_tier = {str(int(t)): round(float(c) / n, 6) for t, c in zip(*np.unique(tiers, return_counts=True), strict=True)}
    keys, counts = np.unique(tiers.astype(np.int64) * (1 << 32) + budgets.astype(np.int64), return_counts=True)
    by_config = [{"tier": int(k >> 32), "thinking_budget": int(k & 0xFFFFFFFF), "share": round(float(c) / n, 6)}
                 for k, c in zip(keys, counts, strict=True)]
    return by_tier, by_config


def _config_shares(counts: np.ndarray, configs: Sequence[Any], n: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Shares per tier and per configuration from request counts per configuration id."""
    if not n:
        return {}, []
    by_tier: dict[str, float] = {}
    by_config = []
    for k in sorted((int(i) for i in np.flatnonzero(counts)), key=lambda i: (configs[i].tier, configs[i].thinking_budget)):
        share = float(counts[k]) / n
        tier = str(configs[k].tier)
        by_tier[tier] = by_tier.get(tier, 0.0) + share
        by_config.append({"tier": configs[k].tier, "thinking_budget": configs[k].thinking_budget,
                          "share": round(share, 6)})
    return {t: round(s, 6) for t, s in sorted(by_tier.items())}, by_config


# ---------------------------------------------------------------- totals

def summarize_actual(model: Counterfactual, mask: np.ndarray | None = None) -> dict[str, Any]:
    """What actually happened (the requests in ``mask``, default all)."""
    req = model.table.requests
    m = np.ones(len(req), dtype=bool) if mask is None else mask
    parts = {name: float(req[col].to_numpy(np.float64)[m].sum()) for col, name in ACTUAL_PARTS.items()}
    p50, p95 = _percentiles(req["actual_latency_ms"].to_numpy(np.float64)[m])
    quality = req["actual_quality"].to_numpy(np.float64)[m]
    by_tier, by_config = _shares(req["final_tier"].to_numpy(np.int64)[m], req["final_budget"].to_numpy(np.int64)[m])
    return {
        "requests": int(m.sum()),
        "cost_usd": _num(float(req["actual_cost_total"].to_numpy(np.float64)[m].sum())),
        "cost_by_token_type_usd": {k: _num(v) for k, v in parts.items()},
        "quality": _num(_mean(quality)),
        "quality_requests": int((~np.isnan(quality)).sum()),
        "latency_p50_ms": _num(p50, 3),
        "latency_p95_ms": _num(p95, 3),
        "share_by_tier": by_tier,
        "share_by_config": by_config,
        "unpriced_requests": int((~req["priced"].to_numpy(bool)[m]).sum()),
    }


def summarize(out: Outcomes, model: Counterfactual, mask: np.ndarray | None = None) -> dict[str, Any]:
    """The replay's totals over the requests in ``mask`` (default all)."""
    m = np.ones(len(out), dtype=bool) if mask is None else mask
    n = int(m.sum())
    cost = out.cost_total[m]
    parts = {name: float(getattr(out, col)[m].sum()) for col, name in PART_NAMES.items()}
    p50, p95 = _percentiles(out.latency_ms[m])
    configs = model.configs
    counts = np.bincount(out.config[m] + 1, minlength=len(configs) + 1)  # config −1 (none) first
    by_tier, by_config = _config_shares(counts[1:], configs, n)
    priced = bool(np.isfinite(cost).all())
    n_cost = n if n else 1
    return {
        "requests": n,
        "cost_usd": _num(float(cost.sum())) if priced else None,
        "cost_by_token_type_usd": {k: _num(v) if priced else None for k, v in parts.items()},
        "cost_per_request_usd": _num(float(cost.sum()) / n_cost) if priced and n else None,
        "quality": _num(_mean(out.quality[m])),
        "quality_requests": int((~np.isnan(out.quality[m])).sum()),
        "latency_p50_ms": _num(p50, 3),
        "latency_p95_ms": _num(p95, 3),
        "share_by_tier": by_tier,
        "share_by_config": by_config,
        "steps_per_request": _num(float(out.steps[m].mean()), 4) if n else None,
        "strong_share": _num(float(out.strong[m].mean()), 6) if n and out.strong[m].any() else (0.0 if n else None),
        "tokens": {
            "input": _num(float(out.input_tokens[m].sum()), 1),
            "cache_read": _num(float(out.cache_read_tokens[m].sum()), 1),
            "cache_write": _num(float(out.cache_write_tokens[m].sum()), 1),
            "visible_output": _num(float(out.visible_tokens[m].sum()), 1),
            "reasoning": _num(float(out.reasoning_tokens[m].sum()), 1),
        },
    }


# ---------------------------------------------------------------- support

def support(out: Outcomes, model: Counterfactual) -> dict[str, Any]:
    """How much of the result rests on observed data.

    ``support``: share of requests whose every step has observed data for its task type
    and configuration (the request's own, or the class's); ``support_direct``: share
    whose every step the request itself ran. ``by_class``: per task type and
    configuration the policy used, how many requests ran it observed, estimated or unsupported.
    """
    n = len(out)
    unsupported = out.status == UNSUPPORTED
    rows = []
    tasks = model.req_task
    n_tasks = len(model.task_names)
    for k, config in enumerate(model.configs[:TRACKED_CONFIGS]):
        bit = np.uint64(1 << k)
        used_k = (out.used & bit) != 0
        if not used_k.any():
            continue
        total = np.bincount(tasks[used_k], minlength=n_tasks)
        est = np.bincount(tasks[(out.estimated & bit) != 0], minlength=n_tasks)
        miss = np.bincount(tasks[used_k & unsupported & (out.config == k)], minlength=n_tasks)
        for t in np.flatnonzero(total):
            ref = model.ref(int(t), k)
            rows.append({
                "task_type": model.task_names[int(t)], "tier": config.tier, "thinking_budget": config.thinking_budget,
                "requests": int(total[t]), "observed": int(total[t] - est[t] - miss[t]), "estimated": int(est[t]),
                "unsupported": int(miss[t]),
                "reference_first_attempts": ref.n_first if ref else 0, "reference_attempts": ref.n_all if ref else 0,
            })
    rows.sort(key=lambda r: (r["task_type"], r["tier"], r["thinking_budget"]))
    return {
        "support": round(float((~unsupported).mean()), 6) if n else None,
        "support_direct": round(float(((out.status == DIRECT) & (out.estimated == 0)).mean()), 6) if n else None,
        "unsupported_requests": int(unsupported.sum()),
        "by_class": rows,
    }


# ---------------------------------------------------------------- intervals

def bootstrap_ci(out: Outcomes, mask: np.ndarray | None = None, *, replicates: int = 1000, blocks: int = 1000,
                 seed: int = 0, reference: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, list[float] | None]:
    """95% percentile intervals on total cost and mean quality.

    Requests are resampled in blocks; ``reference`` holds, per replicate of the class
    samples (see :func:`simulator.engine.run.reference_shifts`), how far the total cost
    and the mean quality moved — added to the request replicates in turn, so the
    interval covers both the traffic's sampling and the counterfactual model's own.
    """
    m = np.ones(len(out), dtype=bool) if mask is None else mask
    cost = out.cost_total[m]
    quality = out.quality[m]
    n = len(cost)
    if n == 0:
        return {"cost_usd": None, "quality": None}
    g = min(blocks, n)
    block_of, weights = _resampling(n, g, replicates, seed)
    known = ~np.isnan(quality)
    cost_b = weights @ stats.block_sums(np.nan_to_num(cost), block_of, g)
    with np.errstate(invalid="ignore", divide="ignore"):
        q_b = (weights @ stats.block_sums(np.where(known, quality, 0.0), block_of, g)) / (
            weights @ stats.block_sums(known.astype(np.float64), block_of, g))
    if reference is not None and len(reference[0]):
        shift = np.arange(replicates) % len(reference[0])
        cost_b = cost_b + reference[0][shift]
        q_b = q_b + reference[1][shift]
    result: dict[str, list[float] | None] = {"cost_usd": None, "quality": None}
    if np.isfinite(cost).all():
        lo, hi = np.percentile(cost_b, [2.5, 97.5])
        result["cost_usd"] = [round(float(lo), 9), round(float(hi), 9)]
    q_b = q_b[np.isfinite(q_b)]
    if known.any() and len(q_b):
        lo, hi = np.percentile(q_b, [2.5, 97.5])
        result["quality"] = [round(float(lo), 6), round(float(hi), 6)]
    return result


_RESAMPLING: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _resampling(n: int, blocks: int, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each request's block and the replicates' block weights (cached: a sweep reuses them)."""
    key = (n, blocks, replicates, seed)
    cached = _RESAMPLING.get(key)
    if cached is None:
        rng = np.random.default_rng([seed, 7])
        cached = (rng.permutation(n) % blocks, stats.block_weights(blocks, replicates, rng))
        if len(_RESAMPLING) > 8:
            _RESAMPLING.clear()
        _RESAMPLING[key] = cached
    return cached


# ---------------------------------------------------------------- curves

def pareto_frontier(costs: Sequence[float | None], qualities: Sequence[float | None]) -> list[int]:
    """Indices of the points that no other point beats (cheaper or as cheap, and better), cheapest first."""
    points = [(float(c), -float(q), i) for i, (c, q) in enumerate(zip(costs, qualities, strict=True))
              if c is not None and q is not None and np.isfinite(c) and np.isfinite(q)]
    points.sort()
    frontier: list[int] = []
    best = -np.inf
    for _, neg_q, i in points:
        if -neg_q > best:
            frontier.append(i)
            best = -neg_q
    return frontier


def routellm_auc(strong_pct: Sequence[float], quality: Sequence[float]) -> float:
    """Area under quality vs strong-call share (as a fraction), points ordered by share (RouteLLM ``auc_metric``)."""
    x = np.asarray(strong_pct, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    return _trapezoid(y[order], x[order] / 100.0)


def apgr(strong_pct: Sequence[float], quality: Sequence[float], weak_quality: float, strong_quality: float) -> float:
    """Average performance gap recovered (RouteLLM §5).

    PGR(r) = (quality(r) − weak) / (strong − weak); APGR is its average over the
    strong-call share, computed as in RouteLLM's ``apgr_metric``: (AUC − AUC_weak) /
    (AUC_strong − AUC_weak), every area taken by the trapezoid rule over the same
    shares (strong-call percentages / 100).
    """
    x = np.sort(np.asarray(strong_pct, dtype=np.float64)) / 100.0
    span = x[-1] - x[0] if len(x) else 0.0
    weak_auc, strong_auc = weak_quality * span, strong_quality * span
    if strong_auc == weak_auc:
        raise ValueError("APGR is undefined when the strong and weak qualities are equal or the shares span nothing")
    return (routellm_auc(strong_pct, quality) - weak_auc) / (strong_auc - weak_auc)


def cpt(strong_pct: Sequence[float], quality: Sequence[float], weak_quality: float, strong_quality: float,
        pgr: float) -> float | None:
    """Call-performance threshold CPT(pgr): the strong-call percentage needed to reach that PGR (RouteLLM §5).

    The paper defines it as the *minimum* share of strong calls at which quality reaches
    weak + pgr × (strong − weak); RouteLLM's ``pct_call_metric`` computes it with
    ``np.interp(target, quality, strong_pct)`` over the points ordered by share, which is
    that minimum when quality rises with the share. This walks the same piecewise-linear
    curve and returns its first crossing, so it equals the reference code on rising
    curves and stays the minimum on curves that dip. None when the curve never reaches it.
    """
    x = np.asarray(strong_pct, dtype=np.float64)
    y = np.asarray(quality, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    target = pgr * (strong_quality - weak_quality) + weak_quality
    if not len(x):
        return None
    if y[0] >= target:
        return float(x[0])
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == y[i - 1]:
                return float(x[i])
            return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    return None


def non_decreasing_convex_hull(costs: Sequence[float], qualities: Sequence[float]) -> np.ndarray:
    """RouterBench's non-decreasing convex hull of (cost, quality) points, as an (m, 2) array by cost.

    The upper convex hull from the cheapest point (best quality at that cost) to the
    point of highest quality (the cheapest such): every point on it is reachable by
    mixing two routers' decisions at random, and no point above it is.
    """
    pts = sorted({(float(c), float(q)) for c, q in zip(costs, qualities, strict=True)
                  if np.isfinite(c) and np.isfinite(q)}, key=lambda p: (p[0], -p[1]))
    if not pts:
        return np.zeros((0, 2))
    best_per_cost: list[tuple[float, float]] = []
    for c, q in pts:
        if not best_per_cost or best_per_cost[-1][0] != c:
            best_per_cost.append((c, q))
    top = max(q for _, q in best_per_cost)
    stop = next(i for i, (_, q) in enumerate(best_per_cost) if q == top)
    candidates = best_per_cost[: stop + 1]
    hull: list[tuple[float, float]] = []
    for p in candidates:  # Andrew's monotone chain, upper hull
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:  # hull[-1] on or below the chord
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array(hull)


def aiq(costs: Sequence[float], qualities: Sequence[float], c_min: float | None = None,
        c_max: float | None = None) -> float | None:
    """Average improvement in quality (RouterBench §3.3).

    AIQ = 1/(c_max − c_min) · ∫_{c_min}^{c_max} R̃(c) dc, where R̃ is the router's
    non-decreasing convex hull, flat at its highest quality up to c_max and 0 below its
    cheapest point. ``c_min``/``c_max`` default to the cheapest and dearest point (pass
    the same bounds to compare routers). RouterBench's ``calc_AIQ`` integrates the hull
    from its first point to the common maximum cost and divides by that maximum, i.e.
    it takes c_min = 0: pass ``c_min=0`` for its numbers.
    """
    hull = non_decreasing_convex_hull(costs, qualities)
    if not len(hull):
        return None
    lo = float(hull[0, 0]) if c_min is None else float(c_min)
    finite = [float(c) for c in costs if c is not None and np.isfinite(c)]
    hi = max(finite) if c_max is None else float(c_max)
    if hi <= lo:
        return None
    xs = list(hull[:, 0])
    ys = list(hull[:, 1])
    if xs[-1] < hi:
        xs.append(hi)
        ys.append(ys[-1])
    x = np.array(xs)
    y = np.array(ys)
    # Below the cheapest point there is no router: quality 0 there, so integrate from it.
    a = max(lo, float(x[0]))
    if a >= hi:
        return 0.0
    grid = np.unique(np.concatenate([x[(x > a) & (x < hi)], [a, hi]]))
    return _trapezoid(np.interp(grid, x, y), grid) / (hi - lo)
