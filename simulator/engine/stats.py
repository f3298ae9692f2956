"""Small vectorized statistics the engine needs (numpy only; no scipy dependency).

- :func:`pit`: the randomized probability integral transform of values within a sorted
  reference sample (ties spread uniformly, so the result is uniform on (0, 1) even for
  discrete measures such as "0 reasoning tokens");
- :func:`hazen_quantile`: the inverse, a piecewise-linear quantile function whose mean
  over a uniform argument is exactly the sample mean (so quantile mapping is unbiased);
- :func:`norm_ppf` / :func:`norm_cdf`: the standard normal quantile and distribution
  functions, for the Gaussian copula;
- :func:`block_weights`: multinomial bootstrap weights over blocks of requests.
"""

from __future__ import annotations

import numpy as np

# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_LOW = 0.02425


def norm_ppf(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile of probabilities in (0, 1) (values are clipped to [1e-12, 1 - 1e-12])."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    out = np.empty_like(p)
    lo = p < _LOW
    hi = p > 1 - _LOW
    mid = ~(lo | hi)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
                / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1))
    for mask, sign, values in ((lo, 1.0, p[lo]), (hi, -1.0, 1 - p[hi])):
        q = np.sqrt(-2 * np.log(values))
        out[mask] = sign * ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
                            / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1))
    return out


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal distribution function (erfc by Numerical Recipes' Chebyshev fit, error < 1.2e-7)."""
    z = np.abs(np.asarray(x, dtype=np.float64)) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    erfc = t * np.exp(poly)
    return np.where(np.asarray(x) >= 0, 1.0 - 0.5 * erfc, 0.5 * erfc)


def tie_bounds(sorted_ref: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each value, how many reference values are below it and how many are at most it.

    The values are searched in sorted order (numpy's binary search then narrows from the
    previous hit), which is several times faster on large unsorted inputs.
    """
    order = np.argsort(values)
    ordered = values[order]
    left = np.empty(len(values), dtype=np.int64)
    right = np.empty(len(values), dtype=np.int64)
    left[order] = np.searchsorted(sorted_ref, ordered, side="left")
    right[order] = np.searchsorted(sorted_ref, ordered, side="right")
    return left, right


def pit_from_bounds(left: np.ndarray, right: np.ndarray, n: int, jitter: np.ndarray) -> np.ndarray:
    """:func:`pit` from precomputed :func:`tie_bounds`."""
    return np.clip((left + jitter * (right - left)) / n, 0.5 / n, 1 - 0.5 / n)


def pit(sorted_ref: np.ndarray, values: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Randomized probability integral transform of ``values`` within ``sorted_ref``.

    A value equal to k reference values gets a position spread uniformly (by
    ``jitter`` in [0, 1)) over those k places, so a sample with many ties still maps to
    uniform positions. The result lies in [0.5/n, 1 − 0.5/n].
    """
    left, right = tie_bounds(sorted_ref, values)
    return pit_from_bounds(left, right, len(sorted_ref), jitter)


def midrank_pit(sorted_ref: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Deterministic PIT (ties get their middle position), for estimating dependence."""
    return pit(sorted_ref, values, np.full(len(values), 0.5))


def hazen_quantile(sorted_ref: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The sample's quantile at ``u``: linear between the points placed at (i + 0.5)/n, flat at the ends.

    For ``u`` uniform on (0, 1) its mean is exactly the sample mean.
    """
    n = len(sorted_ref)
    if n == 1:
        return np.full(len(u), float(sorted_ref[0]))
    pos = np.clip(np.asarray(u, dtype=np.float64) * n - 0.5, 0.0, n - 1.0)
    lo = np.minimum(pos.astype(np.int64), n - 2)
    frac = pos - lo
    ref = sorted_ref.astype(np.float64, copy=False)
    return ref[lo] + frac * (ref[lo + 1] - ref[lo])


def block_weights(blocks: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap weights (replicates × blocks): how often each block is drawn in each replicate."""
    draws = rng.integers(0, blocks, size=(replicates, blocks)) + (np.arange(replicates) * blocks)[:, None]
    return np.bincount(draws.ravel(), minlength=replicates * blocks).reshape(replicates, blocks).astype(np.float64)


def block_sums(values: np.ndarray, block_of: np.ndarray, blocks: int) -> np.ndarray:
    """Sum of ``values`` per block (``block_of`` gives each value's block)."""
    return np.bincount(block_of, weights=values, minlength=blocks)
