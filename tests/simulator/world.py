"""A synthetic world where every request's outcome under every configuration is known.

Each request has a task type, a prompt, a latent difficulty and, for each of the nine
configurations (tier 1–3 × thinking budget 0/4,000/10,000), its tokens, latency and
quality — the ground truth. The *traffic* is what an app would have logged: a routing
policy picks the first configuration (a share of requests explores a random one),
failed answers (quality < 0.5) escalate a tier up, and only the attempts that ran become
span rows. :func:`truth` evaluates a policy on the ground truth (a straightforward
per-request implementation, independent of the engine) for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.engine.counterfactual import TierPrice

TIERS = (1, 2, 3)
BUDGETS = (0, 4000, 10000)
CONFIGS = [(t, b) for t in TIERS for b in BUDGETS]
TASKS = {  # name: (difficulty offset, input median, visible median)
    "classification": (-1.0, 700, 20),
    "summarization": (0.0, 5000, 350),
    "code_generation": (1.0, 3000, 800),
}
SKILL = {1: 0.0, 2: 0.8, 3: 1.5}
BONUS = {0: 0.0, 4000: 0.4, 10000: 0.6}
TPS = {1: 150.0, 2: 90.0, 3: 50.0}
PRICES = {
    1: TierPrice("mini-1", input=0.4, output=1.6, cache_read=0.1),
    2: TierPrice("mid-2", input=1.1, output=4.4, cache_read=0.275),
    3: TierPrice("big-3", input=2.0, output=8.0, cache_read=0.5, reasoning=8.0),
}
DAY_NS = 86_400 * 1_000_000_000
START_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
ROUTES = {  # the app's policy for the first attempt: (config, probability) per task type
    "classification": [((1, 0), 1.0)],
    "summarization": [((1, 4000), 0.5), ((2, 0), 0.5)],
    "code_generation": [((2, 4000), 0.5), ((3, 10000), 0.5)],
}
FIXED_ROUTES = {"classification": (1, 0), "summarization": (1, 4000), "code_generation": (2, 4000)}


@dataclass
class World:
    """Ground truth (arrays requests × configurations) and what the traffic logged."""

    n: int
    task: np.ndarray  # task names
    user: np.ndarray
    session: np.ndarray
    start_ns: np.ndarray
    score: np.ndarray  # a router's noisy difficulty score, logged as attribute router.score
    input_tokens: np.ndarray
    cache_read: np.ndarray
    visible: np.ndarray  # (n, 9)
    reasoning: np.ndarray  # (n, 9)
    latency: np.ndarray  # (n, 9)
    quality: np.ndarray  # (n, 9)
    spans: pd.DataFrame

    def cost(self, c: int, idx: np.ndarray | None = None) -> np.ndarray:
        sel = slice(None) if idx is None else idx
        rates = PRICES[CONFIGS[c][0]].rates()
        inp, cr = self.input_tokens[sel], self.cache_read[sel]
        return ((inp - cr) * rates[0] + cr * rates[1] + self.visible[sel, c] * rates[3]
                + self.reasoning[sel, c] * rates[4]) / 1e6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_world(n: int = 30_000, *, seed: int = 1, explore: float = 0.2, fixed_routes: bool = False,
               escalate_below: float = 0.5, requests_per_trace: int = 1) -> World:
    """Generate a world of ``n`` requests; ``explore`` of them start at a random configuration.

    ``fixed_routes``: each task type always starts at :data:`FIXED_ROUTES` (no random
    choice), so the traffic's policy is exactly a task map of cascades.
    """
    rng = np.random.default_rng(seed)
    names = list(TASKS)
    task_idx = rng.choice(len(names), size=n, p=[0.4, 0.35, 0.25])
    task = np.array(names, dtype=object)[task_idx]
    offset = np.array([TASKS[t][0] for t in names])[task_idx]
    d = rng.standard_normal(n)
    users = np.array([f"user-{i:02d}" for i in range(30)], dtype=object)
    user_w = 1.0 / np.arange(1, 31) ** 0.8
    user = users[rng.choice(30, size=n, p=user_w / user_w.sum())]
    session = np.array([f"{u}-s{rng.integers(0, 3)}" for u in user], dtype=object)
    start = START_NS + np.sort(rng.integers(0, 7 * DAY_NS, size=n))
    score = d + rng.normal(0, 0.5, n)

    in_median = np.array([TASKS[t][1] for t in names], dtype=float)[task_idx]
    vis_median = np.array([TASKS[t][2] for t in names], dtype=float)[task_idx]
    input_tokens = np.maximum(20, np.round(in_median * np.exp(0.5 * rng.standard_normal(n))))
    cached = rng.random(n) < 0.5
    cache_read = np.where(cached, np.round(input_tokens * 0.6), 0.0)

    k = len(CONFIGS)
    visible = np.empty((n, k))
    reasoning = np.empty((n, k))
    latency = np.empty((n, k))
    quality = np.empty((n, k))
    for c, (tier, budget) in enumerate(CONFIGS):
        visible[:, c] = np.maximum(1, np.round(vis_median * (1 + 0.1 * (tier - 1))
                                               * np.exp(0.2 * d + 0.45 * rng.standard_normal(n))))
        if budget:
            median = budget * 0.25 * np.exp(0.3 * offset)
            reasoning[:, c] = np.round(np.minimum(budget, median * np.exp(0.4 * d + 0.5 * rng.standard_normal(n))))
        else:
            reasoning[:, c] = 0.0
        x = 0.6 + SKILL[tier] + BONUS[budget] - offset - 1.0 * d + 0.4 * rng.standard_normal(n)
        quality[:, c] = np.round(np.clip(_sigmoid(x), 0, 1), 3)
        tps = TPS[tier] * np.exp(0.1 * rng.standard_normal(n))
        latency[:, c] = np.round(300 + input_tokens / 30 + (reasoning[:, c] + visible[:, c]) / tps * 1000, 3)

    world = World(n, task, user, session, start, score, input_tokens, cache_read, visible, reasoning, latency,
                  quality, pd.DataFrame())
    world.spans = _traffic(world, rng, explore=explore, fixed_routes=fixed_routes, escalate_below=escalate_below,
                           requests_per_trace=requests_per_trace)
    return world


def _next_config(c: int) -> int | None:
    tier, budget = CONFIGS[c]
    if tier == 3:
        return None
    return CONFIGS.index((tier + 1, BUDGETS[min(BUDGETS.index(budget) + 1, 2)]))


def _traffic(w: World, rng: np.random.Generator, *, explore: float, fixed_routes: bool, escalate_below: float,
             requests_per_trace: int) -> pd.DataFrame:
    """The span rows the app would have logged: one per attempt, escalating while quality < ``escalate_below``."""
    exploring = rng.random(w.n) < explore
    pick = rng.random(w.n)
    config = rng.integers(0, len(CONFIGS), size=w.n)
    for task, routes in ROUTES.items():
        mine = (w.task == task) & ~exploring
        if fixed_routes:
            config[mine] = CONFIGS.index(FIXED_ROUTES[task])
            continue
        cum = 0.0
        for route, p in routes:
            chosen = mine & (pick >= cum) & (pick < cum + p)
            config[chosen] = CONFIGS.index(route)
            cum += p
    nxt = np.array([_next_config(c) if _next_config(c) is not None else -1 for c in range(len(CONFIGS))])
    tiers = np.array([c[0] for c in CONFIGS])
    budgets = np.array([c[1] for c in CONFIGS])
    frames = []
    active = np.arange(w.n)
    current = config.copy()
    t = w.start_ns.astype(np.int64).copy()
    for attempt in range(1, len(TIERS) + 1):
        c = current[active]
        tier = tiers[c]
        rates = np.array([PRICES[x].rates() for x in tier]).reshape(-1, 5)
        inp, cr = w.input_tokens[active], w.cache_read[active]
        vis, rea = w.visible[active, c], w.reasoning[active, c]
        parts = [np.round((inp - cr) * rates[:, 0] / 1e6, 9), np.round(cr * rates[:, 1] / 1e6, 9),
                 np.zeros(len(active)), np.round(vis * rates[:, 3] / 1e6, 9), np.round(rea * rates[:, 4] / 1e6, 9)]
        q = w.quality[active, c]
        latency_ns = np.round(w.latency[active, c] * 1e6).astype(np.int64)
        frames.append(pd.DataFrame({
            "trace_id": [f"{i // requests_per_trace:032x}" for i in active],
            "span_id": [f"{i:08x}{attempt:08x}" for i in active],
            "request_id": [f"req-{i}" for i in active] if requests_per_trace > 1 else "",
            "attempt": attempt, "start_ns": t[active], "duration_ns": latency_ns, "task_type": w.task[active],
            "tier": tier, "thinking_budget": budgets[c], "model": [PRICES[x].model for x in tier],
            "user_id": w.user[active], "session_id": w.session[active], "service": "app",
            "environment": "production", "input_tokens": inp.astype(np.int64), "cache_read_tokens": cr.astype(np.int64),
            "cache_write_tokens": 0, "output_tokens": (vis + rea).astype(np.int64),
            "reasoning_tokens": rea.astype(np.int64), "cost_input": parts[0], "cost_cache_read": parts[1],
            "cost_cache_write": parts[2], "cost_output_visible": parts[3], "cost_reasoning": parts[4],
            "cost_total": parts[0] + parts[1] + parts[2] + parts[3] + parts[4], "priced": True, "quality": q,
            "attr:router.score": [f"{s:.6f}" for s in w.score[active]],
        }))
        again = (q < escalate_below) & (nxt[c] >= 0)
        t[active] += latency_ns + 1_000_000
        active = active[again]
        current[active] = nxt[current[active]]
        if not len(active):
            break
    return pd.concat(frames, ignore_index=True).sort_values(["start_ns", "span_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- ground truth of a policy

def truth(w: World, policy: dict[str, Any]) -> dict[str, float]:
    """Total cost and mean quality of ``policy`` on the ground truth (per request, in plain loops)."""
    cost = np.zeros(w.n)
    quality = np.zeros(w.n)
    reasoning = np.zeros(w.n)
    idx = np.arange(w.n)
    _apply(w, policy, idx, cost, quality, reasoning)
    return {"cost_usd": float(cost.sum()), "quality": float(quality.mean())}


def _config_index(d: dict[str, Any]) -> int:
    return CONFIGS.index((d["tier"], d["thinking_budget"]))


def _apply(w: World, route: dict[str, Any], idx: np.ndarray, cost: np.ndarray, quality: np.ndarray,
           reasoning: np.ndarray) -> None:
    kind = route.get("kind", "config")
    if kind in ("config", "static"):
        c = _config_index(route)
        cost[idx] = w.cost(c, idx)
        quality[idx] = w.quality[idx, c]
        reasoning[idx] = w.reasoning[idx, c]
    elif kind == "task_map":
        rest = np.ones(len(idx), dtype=bool)
        for task, sub in route["routes"].items():
            mask = w.task[idx] == task
            rest &= ~mask
            _apply(w, sub, idx[mask], cost, quality, reasoning)
        _apply(w, route["default"], idx[rest], cost, quality, reasoning)
    elif kind == "cascade":
        steps = [_config_index(s) for s in route["steps"]]
        pending = idx
        cost[idx] = 0.0
        reasoning[idx] = 0.0
        for j, c in enumerate(steps):
            cost[pending] += w.cost(c, pending)
            reasoning[pending] += w.reasoning[pending, c]
            quality[pending] = w.quality[pending, c]
            if j < len(steps) - 1:
                pending = pending[w.quality[pending, c] < route["accept"]["min_quality"]]
    elif kind == "threshold":
        scores = w.score[idx]
        if "threshold" in route:
            threshold = route["threshold"]
        else:
            threshold = float(np.quantile(scores, 1 - route["calibrate"]["strong_share"]))
        strong = scores >= threshold
        _apply(w, route["strong"], idx[strong], cost, quality, reasoning)
        _apply(w, route["weak"], idx[~strong], cost, quality, reasoning)
    elif kind == "quota":
        _apply(w, route["policy"], idx, cost, quality, reasoning)
        key = w.user if route.get("per", "user") == "user" else w.session
        used: dict[tuple[str, int], float] = {}
        down = _config_index(route["downgrade"])
        for i in sorted(idx, key=lambda j: (w.start_ns[j], j)):
            k = (key[i], int(w.start_ns[i] // DAY_NS))
            if used.get(k, 0.0) >= route["daily_reasoning_tokens"]:
                cost[i] = float(w.cost(down, np.array([i]))[0])
                quality[i] = w.quality[i, down]
                reasoning[i] = w.reasoning[i, down]
            used[k] = used.get(k, 0.0) + reasoning[i]
    else:
        raise ValueError(f"truth() does not implement {kind!r}")


def relative_error(estimate: float, true: float) -> float:
    return abs(estimate - true) / abs(true) if true else math.inf
