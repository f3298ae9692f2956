"""Benchmark of the routing-policy simulator on a synthetic table of a million requests.

    .venv/bin/python bench/simulator.py [--requests 1000000] [--points 20] [--seed 1]

Prints one JSON object: seconds (wall clock, and CPU seconds of this process) to build the
request table from span rows, to replay one policy (the counterfactual model and the
intervals included), to run a 20-point threshold sweep (a fresh model included), and
the process's peak memory. Targets (issue 6): one policy ≤ 10 s, the
sweep ≤ 60 s, peak memory ≤ 4 GiB. Span rows are generated vectorized: task types,
latent difficulty, a task-based first configuration with 10% exploration, and escalation
a tier up while quality < 0.5 (so ~1.2 attempts per request).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.engine.counterfactual import Counterfactual, TierPrice  # noqa: E402
from simulator.engine.policies import parse_sweep  # noqa: E402
from simulator.engine.requests import build_requests  # noqa: E402
from simulator.engine.run import simulate  # noqa: E402

PRICES = {
    1: TierPrice("mini-1", input=0.4, output=1.6, cache_read=0.1),
    2: TierPrice("mid-2", input=1.1, output=4.4, cache_read=0.275),
    3: TierPrice("big-3", input=2.0, output=8.0, cache_read=0.5),
}
BUDGETS = np.array([0, 4000, 10000])
TASKS = ["classification", "extraction", "summarization", "customer_support", "code_generation", "math_reasoning"]
OFFSET = np.array([-1.2, -0.6, 0.0, 0.2, 0.9, 1.3])
INPUT_MEDIAN = np.array([700, 2400, 6000, 2800, 4200, 900])
VISIBLE_MEDIAN = np.array([15, 280, 380, 260, 850, 450])
SKILL = np.array([0.0, 0.0, 0.8, 1.5])  # by tier (index 0 unused)
BONUS = np.array([0.0, 0.4, 0.6])  # by budget index


def synthetic_spans(n: int, seed: int) -> pd.DataFrame:
    """Span rows (one per attempt) for ``n`` requests, vectorized."""
    rng = np.random.default_rng(seed)
    task = rng.choice(len(TASKS), size=n, p=[0.2, 0.15, 0.2, 0.2, 0.15, 0.1])
    d = rng.standard_normal(n)
    start = 1_767_225_600 * 10**9 + np.sort(rng.integers(0, 30 * 86_400 * 10**9, size=n))
    user = rng.integers(0, 200, size=n)
    inp = np.maximum(20, np.round(INPUT_MEDIAN[task] * np.exp(0.5 * rng.standard_normal(n))))
    cache = np.where(rng.random(n) < 0.4, np.round(inp * 0.6), 0)
    score = d + rng.normal(0, 0.5, n)
    # First configuration: easy tasks tier 1 budget 0, middle tier 1-2 budget 4000, hard tier 2-3 budget 10000.
    tier = np.where(OFFSET[task] < -0.3, 1, np.where(OFFSET[task] < 0.5, 1 + (rng.random(n) < 0.4), 2 + (rng.random(n) < 0.5)))
    bidx = np.where(OFFSET[task] < -0.3, 0, np.where(OFFSET[task] < 0.5, 1, 2))
    explore = rng.random(n) < 0.1
    tier = np.where(explore, rng.integers(1, 4, size=n), tier)
    bidx = np.where(explore, rng.integers(0, 3, size=n), bidx)

    frames = []
    active = np.arange(n)
    t = start.copy()
    for attempt in (1, 2, 3):
        k = len(active)
        tr, bi = tier[active], bidx[active]
        budget = BUDGETS[bi]
        visible = np.maximum(1, np.round(VISIBLE_MEDIAN[task[active]] * np.exp(0.2 * d[active] + 0.45 * rng.standard_normal(k))))
        reasoning = np.where(budget > 0, np.round(np.minimum(budget, budget * 0.25 * np.exp(0.4 * d[active] + 0.5 * rng.standard_normal(k)))), 0)
        x = 0.6 + SKILL[tr] + BONUS[bi] - OFFSET[task[active]] - d[active] + 0.4 * rng.standard_normal(k)
        quality = np.round(1 / (1 + np.exp(-x)), 3)
        latency_ms = 300 + inp[active] / 30 + (reasoning + visible) / np.array([0, 150, 90, 50])[tr] * 1000
        rates = np.array([[0, 0, 0], [0.4, 0.1, 1.6], [1.1, 0.275, 4.4], [2.0, 0.5, 8.0]])[tr]
        c_in = (inp[active] - cache[active]) * rates[:, 0] / 1e6
        c_cr = cache[active] * rates[:, 1] / 1e6
        c_out = visible * rates[:, 2] / 1e6
        c_re = reasoning * rates[:, 2] / 1e6
        frames.append(pd.DataFrame({
            "trace_id": active.astype(str), "span_id": [f"{a}-{attempt}" for a in active], "request_id": "",
            "attempt": attempt, "start_ns": t[active], "duration_ns": (latency_ms * 1e6).astype(np.int64),
            "task_type": pd.Categorical.from_codes(task[active], TASKS), "tier": tr, "thinking_budget": budget,
            "model": pd.Categorical.from_codes(tr - 1, ["mini-1", "mid-2", "big-3"]),
            "user_id": pd.Categorical.from_codes(user[active], [f"user-{i}" for i in range(200)]),
            "session_id": "", "service": "app", "environment": "production",
            "input_tokens": inp[active], "cache_read_tokens": cache[active], "cache_write_tokens": 0,
            "output_tokens": visible + reasoning, "reasoning_tokens": reasoning,
            "cost_input": c_in, "cost_cache_read": c_cr, "cost_cache_write": 0.0, "cost_output_visible": c_out,
            "cost_reasoning": c_re, "cost_total": c_in + c_cr + c_out + c_re, "priced": True, "quality": quality,
            "attr:router.score": score[active],
        }))
        again = (quality < 0.5) & (tr < 3)
        t[active] += (latency_ms * 1e6).astype(np.int64) + 10**6
        active = active[again]
        tier[active] = tier[active] + 1
        bidx[active] = np.minimum(bidx[active] + 1, 2)
        if not len(active):
            break
    return pd.concat(frames, ignore_index=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    figures: dict[str, Any] = {"requests": args.requests, "machine": {"cpus": os.cpu_count(),
                                                                      "python": _platform.python_version()}}
    started = time.perf_counter()
    spans = synthetic_spans(args.requests, args.seed)
    figures["generate_s"] = round(time.perf_counter() - started, 3)
    figures["span_rows"] = len(spans)

    started, cpu = time.perf_counter(), time.process_time()
    table = build_requests(spans)
    figures["build_request_table_s"] = round(time.perf_counter() - started, 3)
    figures["build_request_table_cpu_s"] = round(time.process_time() - cpu, 3)
    figures["attempts"] = len(table.attempts)
    del spans

    policy = {"kind": "cascade", "steps": [{"tier": 1, "thinking_budget": 0}, {"tier": 3, "thinking_budget": 10000}],
              "accept": {"min_quality": 0.6}}
    started, cpu = time.perf_counter(), time.process_time()
    result = simulate(table, PRICES, policy)
    figures["one_policy_s"] = round(time.perf_counter() - started, 3)
    figures["one_policy_cpu_s"] = round(time.process_time() - cpu, 3)
    figures["one_policy"] = {k: result[k] for k in ("cost_usd", "actual_cost_usd", "quality", "support", "ci95")}

    threshold = {"kind": "threshold", "score": {"attribute": "router.score"}, "threshold": 0.5,
                 "strong": {"tier": 3, "thinking_budget": 10000}, "weak": {"tier": 1, "thinking_budget": 0}}
    started, cpu = time.perf_counter(), time.process_time()
    model = Counterfactual(table, PRICES)
    swept = simulate(table, PRICES, threshold, sweep=parse_sweep(f"threshold:-2..2:{args.points}"), model=model)
    figures["sweep_points"] = args.points
    figures["sweep_s"] = round(time.perf_counter() - started, 3)
    figures["sweep_cpu_s"] = round(time.process_time() - cpu, 3)
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["sweep"] = {k: swept["sweep"][k] for k in ("apgr", "cpt50", "cpt80", "aiq")}
    figures["sweep"]["pareto_points"] = len(swept["sweep"]["pareto"])
    figures["peak_memory_mib"] = round(peak_rss_mib(), 1)
    figures["targets"] = {"one_policy_s": 10, "sweep_s": 60, "peak_memory_mib": 4096}
    figures["within_targets"] = (figures["one_policy_s"] <= 10 and figures["sweep_s"] <= 60
                                 and figures["peak_memory_mib"] <= 4096)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
