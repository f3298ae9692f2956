"""What each request would have produced under a configuration (tier, thinking budget).

For request *i* and configuration *c*:

1. **Observed evidence first.** If the request itself ran *c* (its first attempt, an
   escalation attempt, exploration traffic), its own tokens, latency and quality at *c* are
   used (an attempt that carries no quality — apps often score only the final answer —
   gets the class estimate for its quality). A request that carries no quality at all
   gets none anywhere: simulated and actual quality average the same requests.
2. **Otherwise its quantile carries over.** Within its class (task type × the
   configuration it ran first), the request sits at a quantile *u* of each measure (visible
   output tokens, reasoning tokens, latency, quality): how hard it was, how long it
   thought. Its estimate at *c* is the same quantile of that measure's distribution in the
   class (task type × *c*): ``Q_c(u)``. The prompt (input, cache read and cache write
   tokens) is the request's own: it does not depend on the configuration.
3. **The reference distributions** of a class are the *first* attempts that ran it: they
   were routed before anyone saw the answer, while later attempts were chosen because an
   earlier one failed (a harder-than-average sample). A class that only escalations
   reached is used with a warning; one with fewer than ``min_samples`` observations (or
   none) is **unsupported**: the result says so rather than inventing a number.

Quantiles are computed with ties spread at random (fixed seed), and ``Q`` is the Hazen
piecewise-linear quantile, so the mean of the estimates equals the class sample's mean:
for a policy that sends a whole task type to *c*, the estimated total is the class mean
times the requests, unbiased. ``dependence`` (per measure, default 1 = the quantile is
carried exactly) may be lowered below 1 to let a request's estimate regress towards the
class median (a Gaussian copula with that correlation).

Costs are tokens × the rates of the tier's model (plain numbers from the caller, USD per
million tokens): input = (input − cache read − cache write) × input rate, and so on as
DESIGN.md §5 prices a call.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from simulator.engine import stats
from simulator.engine.policies import Config
from simulator.engine.requests import RequestTable

DIRECT, CLASS, ESCALATION, UNSUPPORTED = 0, 1, 2, 3
STATUS_NAMES = {DIRECT: "observed", CLASS: "estimated", ESCALATION: "estimated from escalations",
                UNSUPPORTED: "unsupported"}
MEASURES = ("visible_tokens", "reasoning_tokens", "latency_ms", "quality")
COST_PARTS = ("cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning")
TRACKED_CONFIGS = 63  # configurations whose estimated use is tracked in a 64-bit mask (for intervals)


@dataclass(frozen=True)
class TierPrice:
    """The model a tier stands for and its rates, USD per million tokens."""

    model: str
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def rates(self) -> tuple[float, float, float, float, float]:
        return (self.input, self.input if self.cache_read is None else self.cache_read,
                self.input if self.cache_write is None else self.cache_write, self.output,
                self.output if self.reasoning is None else self.reasoning)

    def as_dict(self) -> dict[str, Any]:
        rates = self.rates()
        return {"model": self.model, "input": rates[0], "cache_read": rates[1], "cache_write": rates[2],
                "output": rates[3], "reasoning": rates[4]}


@dataclass
class Outcomes:
    """Per-request results (arrays of one length): what the requests cost, took and scored.

    Additive fields sum over the steps a request tried (a cascade); ``quality`` and
    ``config`` are the last step's; ``status`` is the worst step's; ``used`` has bit *k* set
    when a step ran configuration *k*, ``estimated`` when that step was estimated rather
    than observed (configurations past the 63rd are not tracked there).
    """

    input_tokens: np.ndarray
    cache_read_tokens: np.ndarray
    cache_write_tokens: np.ndarray
    visible_tokens: np.ndarray
    reasoning_tokens: np.ndarray
    latency_ms: np.ndarray
    cost_input: np.ndarray
    cost_cache_read: np.ndarray
    cost_cache_write: np.ndarray
    cost_output: np.ndarray
    cost_reasoning: np.ndarray
    quality: np.ndarray
    config: np.ndarray
    steps: np.ndarray
    status: np.ndarray
    estimated: np.ndarray
    used: np.ndarray
    strong: np.ndarray

    ADDITIVE = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "visible_tokens", "reasoning_tokens",
                "latency_ms", *COST_PARTS)

    @classmethod
    def empty(cls, n: int) -> Outcomes:
        return cls(
            **{name: np.zeros(n) for name in cls.ADDITIVE},
            quality=np.full(n, np.nan), config=np.full(n, -1, dtype=np.int32), steps=np.zeros(n, dtype=np.int16),
            status=np.zeros(n, dtype=np.int8), estimated=np.zeros(n, dtype=np.uint64), used=np.zeros(n, dtype=np.uint64),
            strong=np.zeros(n, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.quality)

    @property
    def cost_total(self) -> np.ndarray:
        return self.cost_input + self.cost_cache_read + self.cost_cache_write + self.cost_output + self.cost_reasoning

    def take(self, positions: np.ndarray) -> Outcomes:
        return Outcomes(**{f.name: getattr(self, f.name)[positions] for f in fields(self)})

    def put(self, positions: np.ndarray, other: Outcomes) -> None:
        """Overwrite the requests at ``positions`` with ``other`` (aligned with ``positions``)."""
        for f in fields(self):
            getattr(self, f.name)[positions] = getattr(other, f.name)

    def put_from(self, positions: np.ndarray, source: Outcomes, source_positions: np.ndarray) -> None:
        """Overwrite the requests at ``positions`` with ``source``'s at ``source_positions`` (no copy between)."""
        for f in fields(self):
            getattr(self, f.name)[positions] = getattr(source, f.name)[source_positions]

    def add_step(self, positions: np.ndarray, step: Outcomes) -> None:
        """Requests at ``positions`` also tried ``step`` (aligned with ``positions``)."""
        for name in self.ADDITIVE:
            getattr(self, name)[positions] += getattr(step, name)
        self.quality[positions] = step.quality
        self.config[positions] = step.config
        self.steps[positions] += step.steps
        self.status[positions] = np.maximum(self.status[positions], step.status)
        self.estimated[positions] |= step.estimated
        self.used[positions] |= step.used


@dataclass
class ClassRef:
    """The reference sample of one class (task type × configuration)."""

    n_first: int
    n_all: int
    source: int  # CLASS (first attempts), ESCALATION (all attempts) or UNSUPPORTED
    sorted: dict[str, np.ndarray]
    rows: np.ndarray  # attempt rows of the sample


GRID = 1024


def bootstrap_grid(sorted_values: np.ndarray, rng: np.random.Generator | None, points: int = GRID) -> np.ndarray:
    """A bootstrap resample of a sorted sample, summarized by its quantiles at ``points`` evenly spaced ranks.

    The resample's k-th smallest value is ``sorted_values[⌊n·U₍ₖ₎⌋]`` with U₍ₖ₎ the k-th
    order statistic of n uniforms; those at the grid's ranks are drawn exactly from gamma
    spacings, so a replicate costs O(points), not O(n). ``rng=None``: the sample's own
    values at those ranks. Samples of at most ``points`` values are resampled whole.
    """
    n = len(sorted_values)
    if n == 0:
        return sorted_values
    if n <= points:
        if rng is None:
            return sorted_values
        return np.repeat(sorted_values, np.bincount(rng.integers(0, n, n), minlength=n))
    ranks = np.floor((np.arange(points) + 0.5) / points * n).astype(np.int64) + 1  # 1..n, increasing
    if rng is None:
        return sorted_values[ranks - 1]
    spacings = rng.standard_gamma(np.diff(np.concatenate([[0], ranks, [n + 1]])).astype(np.float64))
    cumulative = np.cumsum(spacings)
    uniform = cumulative[:-1] / cumulative[-1]
    return sorted_values[np.minimum((uniform * n).astype(np.int64), n - 1)]


class Counterfactual:
    """Estimates each request's outcome under any configuration, from the observed attempts.

    ``prices`` maps tier → :class:`TierPrice` (``None`` when the tier's model has no price).
    Outcomes per configuration are computed once and cached: a sweep re-uses them.
    """

    def __init__(self, table: RequestTable, prices: dict[int, TierPrice | None], *, min_samples: int = 10,
                 seed: int = 0, dependence: dict[str, float] | None = None) -> None:
        if min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        self.table = table
        self.prices = dict(prices)
        self.min_samples = min_samples
        self.seed = seed
        self.dependence = {m: 1.0 for m in MEASURES} | dict(dependence or {})
        self.n = table.n
        req = table.requests
        att = table.attempts
        self.task_names: list[str] = [str(c) for c in req["task_type"].cat.categories]
        self.req_task = req["task_type"].cat.codes.to_numpy(np.int64)

        tiers = att["tier"].to_numpy(np.int64)
        budgets = att["thinking_budget"].to_numpy(np.int64)
        pair_key, inverse = np.unique(tiers * (1 << 32) + budgets, return_inverse=True)
        self.configs: list[Config] = [Config(int(v >> 32), int(v & 0xFFFFFFFF)) for v in pair_key]
        self._index = {c: i for i, c in enumerate(self.configs)}
        self.att_config = inverse.astype(np.int64).reshape(-1)  # configs sorted by (tier, budget): ids follow
        self.att_req = att["request"].to_numpy(np.int64)
        self.att_task = self.req_task[self.att_req] if len(att) else np.zeros(0, dtype=np.int64)
        first = att["attempt"].to_numpy() == 1
        self.first_row = np.flatnonzero(first)  # one per request, in request order
        self._prompt = {name: att[name].to_numpy(np.float64)
                        for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens")}
        self._resample: np.random.Generator | None = None
        self._gridded = False
        self._measures = {
            "visible_tokens": np.maximum(att["output_tokens"].to_numpy(np.float64)
                                         - att["reasoning_tokens"].to_numpy(np.float64), 0.0),
            "reasoning_tokens": att["reasoning_tokens"].to_numpy(np.float64),
            "latency_ms": att["latency_ms"].to_numpy(np.float64),
            "quality": att["quality"].to_numpy(np.float64),
        }
        self._refs: dict[tuple[int, int], ClassRef] = {}
        self._resampled: set[tuple[int, int]] = set()
        self._columns: dict[str, np.ndarray] = {}
        self._build_refs(first)
        self._direct: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._build_direct()
        self.u = self._quantiles()
        self._cache: dict[int, Outcomes] = {}
        self.warnings: list[str] = []

    # ---------------------------------------------------------------- set-up

    def _build_refs(self, first: np.ndarray) -> None:
        if not len(self.att_config):
            return
        k_count = len(self.configs)
        key = self.att_task * k_count + self.att_config
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        for rows in np.split(order, bounds):
            t, k = divmod(int(key[rows[0]]), k_count)
            first_rows = rows[first[rows]]
            n_first, n_all = len(first_rows), len(rows)
            if n_first >= self.min_samples:
                source, sample = CLASS, first_rows
            elif n_all >= self.min_samples:
                source, sample = ESCALATION, rows
            else:
                source, sample = UNSUPPORTED, rows
            sorted_values = {}
            for m, values in self._measures.items():
                v = values[sample]
                sorted_values[m] = np.sort(v[~np.isnan(v)])
            self._refs[(t, k)] = ClassRef(n_first, n_all, source, sorted_values, sample)

    def _build_direct(self) -> None:
        """Per configuration: the requests observed there and the attempt row (their first at it)."""
        if not len(self.att_config):
            return
        order = np.lexsort((np.arange(len(self.att_config)), self.att_req, self.att_config))
        cfg, req = self.att_config[order], self.att_req[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = (cfg[1:] != cfg[:-1]) | (req[1:] != req[:-1])
        order, cfg = order[keep], cfg[keep]
        bounds = np.flatnonzero(np.diff(cfg)) + 1
        for rows in np.split(order, bounds):
            self._direct[int(self.att_config[rows[0]])] = (self.att_req[rows], rows)

    def _quantiles(self) -> dict[str, np.ndarray]:
        """Each request's quantile of each measure within the class of the attempt that measured it.

        Quality comes first: 1 − its quantile is the request's *difficulty*. For the other
        measures, a value shared by many requests (every "0 reasoning tokens" at budget 0)
        says nothing about where the request sits, so its place within the tie follows
        its difficulty, as strongly as the two go together where the measure does vary
        (the normal-score correlation ``self.tie_dependence[measure]``; 0 = at random).
        """
        rng = np.random.default_rng(self.seed)
        n = self.n
        u: dict[str, np.ndarray] = {}
        self.quality_known = np.zeros(n, dtype=bool)
        self.tie_dependence: dict[str, float] = {}
        z_difficulty = np.zeros(n)
        first_groups = self._class_groups(self.first_row)
        for m in ("quality", "visible_tokens", "reasoning_tokens", "latency_ms"):
            values = self._measures[m]
            noise = rng.standard_normal(n)
            out = rng.random(n)  # no observation at all: unknown, uniformly at random
            if m == "quality":  # the earliest attempt that carries a quality
                cand = np.flatnonzero(~np.isnan(values))
                rows = cand[np.unique(self.att_req[cand], return_index=True)[1]] if len(cand) else cand
                groups = self._class_groups(rows)
                self.quality_known[self.att_req[rows]] = True
            else:
                known = ~np.isnan(values[self.first_row])
                rows = self.first_row if known.all() else self.first_row[known]
                groups = first_groups if known.all() else self._class_groups(rows)
            placed = []
            for t, k, group in groups:
                ref = self._refs[(t, k)].sorted[m]
                if len(ref):
                    r = self.att_req[rows[group]]
                    placed.append((r, *stats.tie_bounds(ref, values[rows[group]]), len(ref)))
            if m == "quality":
                jitter = rng.random(n)
                for r, left, right, size in placed:
                    out[r] = stats.pit_from_bounds(left, right, size, jitter[r])
                u[m] = out
                z_difficulty = stats.norm_ppf(1.0 - out)
                continue
            rho = self._tie_rho(placed, z_difficulty)
            self.tie_dependence[m] = round(rho, 4)
            jitter = stats.norm_cdf(rho * z_difficulty + np.sqrt(1.0 - rho * rho) * noise)
            for r, left, right, size in placed:
                out[r] = stats.pit_from_bounds(left, right, size, jitter[r])
            u[m] = out
        return u

    def _class_groups(self, rows: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """Positions in ``rows`` (attempt rows) grouped by class: (task, config, positions)."""
        if not len(rows):
            return []
        k_count = max(len(self.configs), 1)
        key = self.att_task[rows] * k_count + self.att_config[rows]
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        out = []
        for group in np.split(order, bounds):
            t, k = divmod(int(key[group[0]]), k_count)
            out.append((t, k, group))
        return out

    def _tie_rho(self, placed: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]],
                 z_difficulty: np.ndarray) -> float:
        """Normal-score correlation of a measure with difficulty, over values that are not widely shared."""
        zs: list[np.ndarray] = []
        zd: list[np.ndarray] = []
        for r, left, right, size in placed:
            if size < 2:
                continue
            keep = ((right - left) <= 0.01 * size) & self.quality_known[r]
            if keep.sum() < 2:
                continue
            zs.append(stats.norm_ppf(stats.pit_from_bounds(left[keep], right[keep], size, np.full(int(keep.sum()), 0.5))))
            zd.append(z_difficulty[r[keep]])
        if not zs:
            return 0.0
        a, b = np.concatenate(zs), np.concatenate(zd)
        if len(a) < 30 or a.std() == 0 or b.std() == 0:
            return 0.0
        return float(np.clip(np.corrcoef(a, b)[0, 1], -0.99, 0.99))

    # ---------------------------------------------------------------- public

    def config_id(self, config: Config) -> int:
        """The index of ``config`` (a configuration never observed gets a new one)."""
        index = self._index.get(config)
        if index is None:
            index = self._index[config] = len(self.configs)
            self.configs.append(config)
        return index

    def ref(self, task: int, config: int) -> ClassRef | None:
        """The class sample of (task, config); in a replicate, its (resampled) quantile grid, made on first use."""
        ref = self._refs.get((task, config))
        if ref is None or not self._gridded or ref.source == UNSUPPORTED or (task, config) in self._resampled:
            return ref
        grids = {m: bootstrap_grid(values, self._resample) for m, values in ref.sorted.items()}
        ref = self._refs[(task, config)] = ClassRef(ref.n_first, ref.n_all, ref.source, grids, ref.rows)
        self._resampled.add((task, config))
        return ref

    def observed_configs(self, task: int) -> list[int]:
        """Configurations (ids) with enough observations for ``task`` to estimate from."""
        return sorted(k for (t, k), ref in self._refs.items() if t == task and ref.source != UNSUPPORTED)

    def difficulty(self) -> np.ndarray:
        """Per request, 1 − its quality quantile within its class (hard requests near 1)."""
        return 1.0 - self.u["quality"]

    def request_values(self, name: str) -> np.ndarray:
        """A per-request column as numbers (cached): ``prompt_tokens_rank`` (percentile) or ``attr:<key>``
        (not numeric → NaN)."""
        cached = self._columns.get(name)
        if cached is None:
            req = self.table.requests
            if name == "prompt_tokens_rank":
                cached = req["prompt_tokens"].rank(method="average", pct=True).to_numpy(np.float64)
            elif name in req.columns:
                cached = pd.to_numeric(pd.Series(req[name].to_numpy(dtype=object)), errors="coerce").to_numpy(np.float64)
            else:
                cached = np.full(self.n, np.nan)
            self._columns[name] = cached
        return cached

    def outcome(self, config: Config | int) -> Outcomes:
        """Every request's outcome under ``config`` (cached)."""
        k = config if isinstance(config, int) else self.config_id(config)
        cached = self._cache.get(k)
        if cached is None:
            cached = self._cache[k] = self._compute(k)
        return cached

    def tier_price(self, tier: int) -> TierPrice | None:
        return self.prices.get(tier)

    # ---------------------------------------------------------------- estimation

    def _compute(self, k: int) -> Outcomes:
        n = self.n
        cfg = self.configs[k]
        out = Outcomes.empty(n)
        out.config[:] = k
        out.steps[:] = 1
        status = np.full(n, UNSUPPORTED, dtype=np.int8)
        first = self.first_row
        # The prompt is the request's own, whatever the configuration.
        for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens"):
            getattr(out, name)[:] = self._prompt[name][first]
        for name in ("visible_tokens", "reasoning_tokens", "latency_ms"):
            getattr(out, name)[:] = np.nan

        observed = np.zeros(n, dtype=bool)
        direct = self._direct.get(k)
        if direct is not None:
            req, rows = direct
            observed[req] = True
            status[req] = DIRECT
            for name in ("input_tokens", "cache_read_tokens", "cache_write_tokens"):
                getattr(out, name)[req] = self._prompt[name][rows]
            for name in MEASURES:
                getattr(out, name)[req] = self._measures[name][rows]

        rng = np.random.default_rng([self.seed, k + 1])
        # Observed attempts without a quality (an app that scores only the final answer) get the
        # class estimate for their quality; their tokens and latency stay their own.
        unscored = observed & np.isnan(out.quality) & self.quality_known
        for t in range(len(self.task_names)):
            in_task = self.req_task == t
            idx = np.flatnonzero(in_task & ~observed)
            fill = np.flatnonzero(in_task & unscored)
            if not len(idx) and not len(fill):
                continue
            ref = self.ref(t, k)
            if ref is None or ref.source == UNSUPPORTED:
                continue
            status[idx] = ref.source
            for m in MEASURES:
                sample = ref.sorted[m]
                if not len(sample):
                    continue  # e.g. quality never recorded for this class: unknown
                if len(idx):
                    getattr(out, m)[idx] = stats.hazen_quantile(sample, self._carry(self.u[m][idx], m, rng))
                if m == "quality" and len(fill):
                    out.quality[fill] = stats.hazen_quantile(sample, self._carry(self.u[m][fill], m, rng))
        # A request that never carried a quality has none under any configuration either, so the
        # simulated and the actual quality average the same requests.
        out.quality[~self.quality_known] = np.nan
        out.status = status
        if k < TRACKED_CONFIGS:
            out.used[:] = np.uint64(1 << k)
            out.estimated[(status == CLASS) | (status == ESCALATION)] = np.uint64(1 << k)
        self._price(out, cfg.tier)
        unsupported = status == UNSUPPORTED
        for name in Outcomes.ADDITIVE:
            getattr(out, name)[unsupported] = np.nan
        out.quality[unsupported] = np.nan
        return out

    def _carry(self, u: np.ndarray, measure: str, rng: np.random.Generator) -> np.ndarray:
        rho = self.dependence.get(measure, 1.0)
        if rho >= 1.0:
            return u
        z = stats.norm_ppf(u)
        return stats.norm_cdf(rho * z + np.sqrt(max(0.0, 1 - rho * rho)) * rng.standard_normal(len(u)))

    def _price(self, out: Outcomes, tier: int) -> None:
        price = self.prices.get(tier)
        if price is None:
            for name in COST_PARTS:
                getattr(out, name)[:] = np.nan
            return
        r_in, r_cr, r_cw, r_out, r_reason = (r / 1e6 for r in price.rates())
        uncached = np.maximum(out.input_tokens - out.cache_read_tokens - out.cache_write_tokens, 0.0)
        out.cost_input[:] = uncached * r_in
        out.cost_cache_read[:] = out.cache_read_tokens * r_cr
        out.cost_cache_write[:] = out.cache_write_tokens * r_cw
        out.cost_output[:] = out.visible_tokens * r_out
        out.cost_reasoning[:] = out.reasoning_tokens * r_reason

    def replicate(self, rng: np.random.Generator | None, subset: np.ndarray,
                  base: Counterfactual | None = None) -> Counterfactual:
        """This model restricted to the requests ``subset``, with every class sample bootstrap-resampled.

        Requests keep their quantiles and their own observations; only the class
        distributions they are mapped through change: each becomes, when first used, the
        quantile grid of a bootstrap resample (:func:`bootstrap_grid`). ``rng=None``
        resamples nothing (the grid of the sample itself): the base the replicates are
        compared with. Pass that ``base`` (built for the same subset) to build replicates cheaply.
        """
        clone = object.__new__(Counterfactual)
        if base is not None:
            clone.__dict__.update(base.__dict__)
        else:
            clone.__dict__.update(self.__dict__)
            subset = np.asarray(subset, dtype=np.int64)
            clone.n = len(subset)
            requests = self.table.requests.iloc[subset].reset_index(drop=True)
            clone.table = RequestTable(requests=requests, attempts=self.table.attempts)
            clone.req_task = self.req_task[subset]
            clone.first_row = self.first_row[subset]
            clone.u = {m: values[subset] for m, values in self.u.items()}
            clone.quality_known = self.quality_known[subset]
            position = np.full(self.n, -1, dtype=np.int64)
            position[subset] = np.arange(len(subset))
            clone._direct = {}
            for k, (req, rows) in self._direct.items():
                keep = position[req] >= 0
                if keep.any():
                    clone._direct[k] = (position[req[keep]], rows[keep])
            clone._columns = {}
        clone._cache = {}
        clone._index = dict(clone._index)
        clone.configs = list(clone.configs)
        clone._refs = dict(clone._refs)
        clone._resample = rng
        clone._gridded = True
        clone._resampled = set()
        return clone

    def class_table(self) -> pd.DataFrame:
        """Observations per task type and configuration (first attempts and all attempts)."""
        rows = [
            {"task_type": self.task_names[t], "tier": self.configs[k].tier,
             "thinking_budget": self.configs[k].thinking_budget, "first_attempts": ref.n_first,
             "attempts": ref.n_all, "source": STATUS_NAMES[ref.source]}
            for (t, k), ref in sorted(self._refs.items())
        ]
        return pd.DataFrame(rows)
