"""Apply a routing policy to every request, vectorized (numpy over index arrays).

Each policy kind evaluates on a set of request positions and returns their
:class:`~simulator.engine.counterfactual.Outcomes`; nested routes (a task map of
cascades, a quota around a classifier) evaluate on the subsets their parent hands them.
Per-configuration outcomes come from the :class:`Counterfactual` cache, so a sweep over a
threshold only re-does the routing, not the estimation.

Semantics worth knowing:

- ``cascade``: a step's answer is accepted when its quality ≥ ``min_quality``; a step
  whose quality is unknown is accepted (nothing says it failed).
- ``quota``: requests replay in time order per user (or session) and UTC day; a request
  runs the wrapped policy while the reasoning tokens of the earlier requests that day are
  below the cap, else the downgrade configuration. Requests without a user (session) are
  not capped.
- ``threshold``: a request without a score (a missing attribute) goes to the weak configuration.
- ``oracle``: best quality, ties to the cheaper; unsupported candidates are never chosen
  unless every candidate is unsupported.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from simulator.engine.counterfactual import UNSUPPORTED, Counterfactual, Outcomes
from simulator.engine.policies import (
    Cascade,
    Classifier,
    Config,
    Oracle,
    Policy,
    Quota,
    Random,
    Route,
    Rule,
    Static,
    TaskMap,
    Threshold,
    keyword_column,
)

NS_PER_DAY = 86_400 * 1_000_000_000


class Replayer:
    """Evaluates policies against one :class:`Counterfactual` (and collects warnings)."""

    def __init__(self, model: Counterfactual) -> None:
        self.model = model
        self.requests = model.table.requests
        self.warnings: list[str] = []
        self.thresholds: list[float] = []  # thresholds used (calibrated or given), in evaluation order

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def run(self, policy: Route) -> Outcomes:
        return self.evaluate(policy, np.arange(self.model.n))

    def evaluate(self, route: Route, idx: np.ndarray) -> Outcomes:
        if isinstance(route, Config):
            return self.model.outcome(route).take(idx)
        method = getattr(self, "_" + route.kind)
        result: Outcomes = method(route, idx)
        return result

    # ---------------------------------------------------------------- kinds

    def _static(self, policy: Static, idx: np.ndarray) -> Outcomes:
        return self.model.outcome(policy.config).take(idx)

    def _routed(self, idx: np.ndarray, labels: np.ndarray, routes: list[Route]) -> Outcomes:
        """Requests with label j take ``routes[j]``."""
        if len(idx) == self.model.n and len(routes) == 2 and all(isinstance(r, Config | Static) for r in routes):
            # Every request (``idx`` is then 0..n−1), two configurations: select elementwise from the cache.
            first, second = (self.model.outcome(_config(r)) for r in routes)
            pick = labels.astype(bool)
            return Outcomes(**{f.name: np.where(pick, getattr(second, f.name), getattr(first, f.name))
                               for f in fields(Outcomes)})
        out = Outcomes.empty(len(idx))
        for j, route in enumerate(routes):
            positions = np.flatnonzero(labels == j)
            if not len(positions):
                continue
            if isinstance(route, Config | Static):  # straight from the cache, without an intermediate copy
                out.put_from(positions, self.model.outcome(_config(route)), idx[positions])
            else:
                out.put(positions, self.evaluate(route, idx[positions]))
        return out

    def _task_map(self, policy: TaskMap, idx: np.ndarray) -> Outcomes:
        names = self.model.task_names
        routes: list[Route] = [policy.default]
        code_to_label = np.zeros(len(names) + 1, dtype=np.int64)
        for task, route in policy.routes.items():
            routes.append(route)
            if task in names:
                code_to_label[names.index(task)] = len(routes) - 1
            else:
                self.warn(f"task_map: no request has task type {task!r}; its route is never used")
        return self._routed(idx, code_to_label[self.model.req_task[idx]], routes)

    def _classifier(self, policy: Classifier, idx: np.ndarray) -> Outcomes:
        names = list(policy.routes)
        labels = np.full(len(idx), names.index(policy.default), dtype=np.int64)
        undecided = np.ones(len(idx), dtype=bool)
        for rule in policy.rules:
            match = self._matches(rule, idx) & undecided
            labels[match] = names.index(rule.complexity)
            undecided &= ~match
        return self._routed(idx, labels, [policy.routes[name] for name in names])

    def _matches(self, rule: Rule, idx: np.ndarray) -> np.ndarray:
        req = self.requests
        match = np.ones(len(idx), dtype=bool)
        for column, wanted in (("task_type", rule.task_type), ("service", rule.service),
                               ("environment", rule.environment)):
            if wanted is not None:
                match &= req[column].isin(list(wanted)).to_numpy(bool)[idx]
        if rule.prompt_gte is not None or rule.prompt_lt is not None:
            tokens = req["prompt_tokens"].to_numpy(np.float64)[idx]
            if rule.prompt_gte is not None:
                match &= tokens >= rule.prompt_gte
            if rule.prompt_lt is not None:
                match &= tokens < rule.prompt_lt
        if rule.keywords:
            column = keyword_column(rule.keywords)
            if column in req.columns:
                match &= req[column].to_numpy(bool)[idx]
            elif "prompt_text" in req.columns:
                text = pd.Series(req["prompt_text"].to_numpy(dtype=object)[idx]).fillna("").str.lower()
                found = np.zeros(len(idx), dtype=bool)
                for word in rule.keywords:
                    found |= text.str.contains(word, regex=False).to_numpy()
                match &= found
            else:
                self.warn(f"classifier: keywords {list(rule.keywords)} never match: no prompt text is stored "
                          "(turn on the project's store_prompts to route on keywords)")
                match &= False
        for name, wanted in rule.attributes:
            column = "attr:" + name
            if column not in req.columns:
                self.warn(f"classifier: attribute {name!r} was not loaded; its rule never matches")
                match &= False
                continue
            match &= req[column].astype(str).isin(list(wanted)).to_numpy(bool)[idx]
        return match

    def _threshold(self, policy: Threshold, idx: np.ndarray) -> Outcomes:
        score = self.score(policy.score)[idx]
        threshold = policy.threshold
        if threshold is None:
            known = score[~np.isnan(score)]
            share = policy.strong_share if policy.strong_share is not None else 0.0
            if len(known):
                # RouteLLM calibrate_threshold.py: the (1 − share) quantile of the scores (linear).
                threshold = float(np.quantile(known, 1.0 - share))
            else:
                threshold = np.inf
        self.thresholds.append(float(threshold))
        with np.errstate(invalid="ignore"):
            strong = score >= threshold  # NaN (no score) → weak
        out = self._routed(idx, strong.astype(np.int64), [policy.weak, policy.strong])
        out.strong[:] = strong
        return out

    def score(self, name: str) -> np.ndarray:
        """Per-request router score: difficulty, prompt-length percentile or a numeric attribute."""
        if name == "difficulty":
            return self.model.difficulty()
        if name == "prompt_tokens":
            return self.model.request_values("prompt_tokens_rank")
        values = self.model.request_values(name)
        if name not in self.requests.columns:
            self.warn(f"threshold: attribute {name[5:]!r} was not loaded; every request goes to the weak configuration")
        else:
            missing = int(np.isnan(values).sum())
            if missing:
                self.warn(f"threshold: {missing:,} requests have no numeric {name[5:]!r}; "
                          "they go to the weak configuration")
        return values

    def _cascade(self, policy: Cascade, idx: np.ndarray) -> Outcomes:
        out = self.model.outcome(policy.steps[0]).take(idx)
        pending = np.arange(len(idx))
        for step in policy.steps[1:]:
            quality = out.quality[pending]
            with np.errstate(invalid="ignore"):
                failed = quality < policy.min_quality  # unknown quality (NaN) counts as accepted
            failed &= out.status[pending] != UNSUPPORTED
            pending = pending[failed]
            if not len(pending):
                break
            out.add_step(pending, self.model.outcome(step).take(idx[pending]))
        return out

    def _quota(self, policy: Quota, idx: np.ndarray) -> Outcomes:
        out = self.evaluate(policy.policy, idx)
        who = self.requests["user_id" if policy.per == "user" else "session_id"]
        codes = who.cat.codes.to_numpy(np.int64)[idx] if hasattr(who, "cat") else pd.factorize(who)[0][idx]
        named = np.asarray(who.to_numpy(dtype=object)[idx] != "", dtype=bool)
        day = self.requests["start_ns"].to_numpy(np.int64)[idx] // NS_PER_DAY
        start = self.requests["start_ns"].to_numpy(np.int64)[idx]
        order = np.lexsort((np.arange(len(idx)), start, day, codes))
        used = np.nan_to_num(out.reasoning_tokens[order])
        group = np.empty(len(idx), dtype=bool)
        if len(idx):
            group[0] = True
            group[1:] = (codes[order][1:] != codes[order][:-1]) | (day[order][1:] != day[order][:-1])
        running = np.cumsum(used)
        before_group = (running - used)[group]  # running total before each group's first request
        earlier = running - used - before_group[np.cumsum(group) - 1]
        over = np.zeros(len(idx), dtype=bool)
        over[order] = earlier >= policy.daily_reasoning_tokens
        over &= named
        positions = np.flatnonzero(over)
        if len(positions):
            out.put(positions, self.model.outcome(policy.downgrade).take(idx[positions]))
        return out

    def _oracle(self, policy: Oracle, idx: np.ndarray) -> Outcomes:
        model = self.model
        if policy.candidates is not None:
            candidates = {model.config_id(c) for c in policy.candidates}
            per_task = {t: sorted(candidates) for t in range(len(model.task_names))}
        else:
            per_task = {t: [k for k in model.observed_configs(t) if model.configs[k].tier in (1, 2, 3)]
                        for t in range(len(model.task_names))}
        out = Outcomes.empty(len(idx))
        out.status[:] = UNSUPPORTED
        tasks = model.req_task[idx]
        for t, ks in per_task.items():
            positions = np.flatnonzero(tasks == t)
            if not len(positions):
                continue
            if not ks:
                self.warn(f"oracle: no configuration observed for task type {model.task_names[t]!r}")
                continue
            sub = idx[positions]
            best = model.outcome(ks[0]).take(sub)
            for k in ks[1:]:
                cand = model.outcome(k).take(sub)
                better = self._better(cand, best, policy.min_quality)
                if better.any():
                    best.put(np.flatnonzero(better), cand.take(np.flatnonzero(better)))
            out.put(positions, best)
        return out

    @staticmethod
    def _better(a: Outcomes, b: Outcomes, min_quality: float | None) -> np.ndarray:
        """Where candidate ``a`` beats the best so far ``b``."""
        a_ok, b_ok = a.status != UNSUPPORTED, b.status != UNSUPPORTED
        qa, qb = np.nan_to_num(a.quality, nan=-1.0), np.nan_to_num(b.quality, nan=-1.0)
        ca, cb = np.nan_to_num(a.cost_total, nan=np.inf), np.nan_to_num(b.cost_total, nan=np.inf)
        if min_quality is None:
            wins = (qa > qb) | ((qa == qb) & (ca < cb))
        else:
            a_meets, b_meets = qa >= min_quality, qb >= min_quality
            wins = np.where(a_meets & b_meets, ca < cb,
                            np.where(a_meets | b_meets, a_meets, (qa > qb) | ((qa == qb) & (ca < cb))))
        return (a_ok & ~b_ok) | (a_ok & b_ok & wins)

    def _random(self, policy: Random, idx: np.ndarray) -> Outcomes:
        weights = np.asarray(policy.weights, dtype=np.float64)
        rng = np.random.default_rng(policy.seed)
        labels = rng.choice(len(policy.choices), size=len(idx), p=weights / weights.sum())
        return self._routed(idx, labels, list(policy.choices))


def _config(route: Route) -> Config:
    if isinstance(route, Config):
        return route
    assert isinstance(route, Static)
    return route.config


def policy_kind(route: Route) -> str:
    return route.kind if isinstance(route, Policy) else "static"
