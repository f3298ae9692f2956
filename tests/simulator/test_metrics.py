"""RouteLLM's APGR and CPT, RouterBench's AIQ, the Pareto frontier and the statistics helpers, on
small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import metrics, stats


def test_apgr_as_routellm_defines_it() -> None:
    # Strong-call shares 0%, 50%, 100% with quality 0.5, 0.8, 0.9; weak 0.5, strong 0.9.
    # AUC (trapezoid over shares 0, 0.5, 1) = 0.5·(0.5+0.8)/2 + 0.5·(0.8+0.9)/2 = 0.75;
    # weak AUC = 0.5, strong AUC = 0.9 → APGR = (0.75 − 0.5) / (0.9 − 0.5) = 0.625.
    assert metrics.routellm_auc([0, 50, 100], [0.5, 0.8, 0.9]) == pytest.approx(0.75)
    assert metrics.apgr([0, 50, 100], [0.5, 0.8, 0.9], 0.5, 0.9) == pytest.approx(0.625)
    # Order of the points does not matter (RouteLLM sorts by strong percentage).
    assert metrics.apgr([100, 0, 50], [0.9, 0.5, 0.8], 0.5, 0.9) == pytest.approx(0.625)
    # A partial range: areas over the same shares (20%..60%), so the weak and strong constants cancel out.
    # AUC = 0.4·(0.6+0.7)/2 = 0.26; weak 0.5·0.4 = 0.2; strong 0.9·0.4 = 0.36 → (0.26 − 0.2)/(0.16) = 0.375.
    assert metrics.apgr([20, 60], [0.6, 0.7], 0.5, 0.9) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="undefined"):
        metrics.apgr([0, 100], [0.5, 0.5], 0.5, 0.5)


def test_cpt_as_routellm_defines_it() -> None:
    # CPT(50%): target 0.5 + 0.5·0.4 = 0.7, between (0, 0.5) and (50, 0.8) → 50·(0.2/0.3) = 33.33%.
    assert metrics.cpt([0, 50, 100], [0.5, 0.8, 0.9], 0.5, 0.9, 0.5) == pytest.approx(100 / 3)
    # CPT(80%): target 0.82, between (50, 0.8) and (100, 0.9) → 50 + 50·(0.02/0.1) = 60%.
    assert metrics.cpt([0, 50, 100], [0.5, 0.8, 0.9], 0.5, 0.9, 0.8) == pytest.approx(60.0)
    # On a rising curve it equals RouteLLM's np.interp(target, accuracy, strong_percentage).
    pct, acc = [0, 25, 50, 75, 100], [0.5, 0.62, 0.7, 0.85, 0.9]
    for pgr in (0.2, 0.5, 0.8):
        target = pgr * (0.9 - 0.5) + 0.5
        assert metrics.cpt(pct, acc, 0.5, 0.9, pgr) == pytest.approx(float(np.interp(target, acc, pct)))
    # On a curve that dips it stays the minimum share that reaches the target: the first crossing.
    assert metrics.cpt([0, 40, 70, 100], [0.5, 0.85, 0.8, 0.9], 0.5, 0.9, 0.8) == pytest.approx(40 * 0.32 / 0.35)
    assert metrics.cpt([0, 100], [0.5, 0.6], 0.5, 0.9, 0.8) is None  # never reached


def test_aiq_and_its_non_decreasing_convex_hull_as_routerbench_defines_them() -> None:
    costs, quality = [1, 2, 3, 4], [0.5, 0.6, 0.9, 0.85]
    # (2, 0.6) lies under the chord from (1, 0.5) to (3, 0.9) (0.7 there); (4, 0.85) after the best point.
    hull = metrics.non_decreasing_convex_hull(costs, quality)
    assert hull.tolist() == [[1.0, 0.5], [3.0, 0.9]]
    # The hull extended flat to c_max = 4: ∫ = (0.5+0.9)/2·2 + 0.9·1 = 2.3 over [1, 4] → 2.3/3.
    assert metrics.aiq(costs, quality) == pytest.approx(2.3 / 3)
    # RouterBench's calc_AIQ divides by the largest cost (c_min = 0, nothing below the cheapest point): 2.3/4.
    assert metrics.aiq(costs, quality, c_min=0) == pytest.approx(0.575)
    # A common c_max for comparing routers: flat from 4 to 5 → (2.3 + 0.9)/(5 − 1).
    assert metrics.aiq(costs, quality, c_max=5) == pytest.approx(3.2 / 4)
    # A router whose cheapest point is also its best: flat.
    assert metrics.aiq([1, 2], [0.9, 0.8]) == pytest.approx(0.9)
    assert metrics.aiq([1], [0.9]) is None


def test_pareto_frontier_keeps_the_points_nothing_beats() -> None:
    costs = [1, 2, 3, 4, 3, None]
    quality = [0.5, 0.6, 0.9, 0.85, 0.7, 0.99]
    assert metrics.pareto_frontier(costs, quality) == [0, 1, 2]
    assert metrics.pareto_frontier([2, 1], [0.5, 0.5]) == [1]


def test_normal_quantile_and_distribution_functions() -> None:
    p = np.array([1e-6, 0.01, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999])
    z = stats.norm_ppf(p)
    assert z[4] == pytest.approx(0.0, abs=1e-9)
    assert z[6] == pytest.approx(1.959963985, abs=1e-7)
    assert z[1] == pytest.approx(-2.326347874, abs=1e-7)
    assert z[0] == pytest.approx(-4.753424309, abs=1e-6)
    assert stats.norm_cdf(z) == pytest.approx(p, abs=2e-7)


def test_hazen_quantile_mapping_preserves_the_sample_mean() -> None:
    rng = np.random.default_rng(0)
    sample = np.sort(rng.lognormal(0, 1, size=37))
    u = (np.arange(200_000) + 0.5) / 200_000  # a fine uniform grid
    assert stats.hazen_quantile(sample, u).mean() == pytest.approx(sample.mean(), rel=1e-6)
    assert stats.hazen_quantile(np.array([3.0]), np.array([0.1, 0.9])).tolist() == [3.0, 3.0]


def test_randomized_pit_spreads_ties_uniformly() -> None:
    rng = np.random.default_rng(1)
    ref = np.sort(np.concatenate([np.zeros(600), rng.random(400) + 1]))
    values = ref.copy()
    u = stats.pit(ref, values, rng.random(len(values)))
    # Zeros fill [0, 0.6) evenly, the rest [0.6, 1): uniform overall.
    assert u[:600].max() <= 0.6 + 1e-9 and u[600:].min() >= 0.6 - 1e-9
    counts, _ = np.histogram(u, bins=10, range=(0, 1))
    assert counts.min() > 60 and counts.max() < 140
    left, right = stats.tie_bounds(ref, np.array([0.0, 5.0]))
    assert left.tolist() == [0, 1000] and right.tolist() == [600, 1000]


def test_block_bootstrap_weights_resample_every_block_count() -> None:
    w = stats.block_weights(50, 400, np.random.default_rng(2))
    assert w.shape == (400, 50) and (w.sum(axis=1) == 50).all()
    assert w.mean() == pytest.approx(1.0) and w.var() == pytest.approx(1 - 1 / 50, rel=0.1)  # multinomial
