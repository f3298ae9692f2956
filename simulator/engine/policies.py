"""Routing policies as JSON or YAML: parsing and validation with errors that say what and where.

A **configuration** is ``{"tier": 1|2|3, "thinking_budget": <tokens ≥ 0>}``; a tier means the
project's model for that tier. Where a policy expects a route, it takes a configuration
or another policy (an object with ``kind``). Kinds:

``static``
    ``{"kind": "static", "tier": 1, "thinking_budget": 0}`` — every request.
``task_map``
    ``{"kind": "task_map", "routes": {"code_generation": <route>}, "default": <route>}``.
``classifier``
    ordered rules → a complexity → a route, like a keyword router::

        {"kind": "classifier",
         "rules": [{"when": {"task_type": ["code_generation"]}, "complexity": "high"},
                   {"when": {"keywords": ["prove", "step by step"]}, "complexity": "high"},
                   {"when": {"prompt_tokens": {"gte": 4000}}, "complexity": "medium"},
                   {"when": {"attributes": {"app.plan": ["pro", "team"]}}, "complexity": "medium"}],
         "default": "low",
         "routes": {"low": <route>, "medium": <route>, "high": <route>}}

    A rule's conditions (``task_type``, ``service``, ``environment``: a value or a list;
    ``prompt_tokens``: ``{"gte": n, "lt": n}``; ``keywords``: any of, case-insensitive, in
    the prompt; ``attributes``: key → value or list) must all hold; the first rule that
    matches decides.
``threshold``
    the strong configuration when a per-request score ≥ ``threshold``, else the weak one;
    ``"calibrate": {"strong_share": 0.3}`` instead of ``threshold`` picks the threshold that
    sends that share of requests to the strong configuration (the (1 − share) quantile of
    the scores, as RouteLLM's ``calibrate_threshold.py`` does). ``score``: ``"difficulty"``
    (the request's estimated difficulty: 1 − its quality quantile within its task type —
    known only after the fact, so an upper bound for a difficulty classifier),
    ``"prompt_tokens"`` (the prompt length's percentile rank) or ``{"attribute": "<key>"}``
    (a number the app logged, e.g. a router's score).
``cascade``
    ``{"kind": "cascade", "steps": [<config>, <config>, ...], "accept": {"min_quality": 0.5}}``:
    try each step until the answer's quality reaches ``min_quality``; cost and latency
    accumulate over the steps tried; the quality is the last step's.
``quota``
    ``{"kind": "quota", "policy": <route>, "per": "user"|"session", "daily_reasoning_tokens": 200000,
    "downgrade": <config>}``: replayed in time order; once a user's (session's) reasoning
    tokens that UTC day reach the cap, their later requests run the downgrade configuration.
``oracle``
    per request the candidate with the best quality (ties: the cheapest); with
    ``"min_quality"``, the cheapest candidate that reaches it (else the best). ``candidates``
    defaults to every configuration observed for the request's task type.
``random``
    ``{"kind": "random", "choices": [{"tier": 1, "thinking_budget": 0, "weight": 3}, ...], "seed": 0}``.

:func:`parse_policy` raises :class:`PolicyError` listing every problem as
``policy.routes.code_generation.tier: must be 1, 2 or 3``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

TIERS = (1, 2, 3)
MAX_BUDGET = 1_000_000
SCORES = ("difficulty", "prompt_tokens")
KINDS = ("static", "task_map", "classifier", "threshold", "cascade", "quota", "oracle", "random")
CONDITIONS = ("task_type", "service", "environment", "prompt_tokens", "keywords", "attributes")


class PolicyError(ValueError):
    """A policy that cannot be simulated; ``errors`` lists each problem with its place."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True, order=True)
class Config:
    tier: int
    thinking_budget: int

    @property
    def label(self) -> str:
        return f"tier {self.tier} · budget {self.thinking_budget:,}"

    def as_dict(self) -> dict[str, int]:
        return {"tier": self.tier, "thinking_budget": self.thinking_budget}


@dataclass(frozen=True)
class Policy:
    """Base of the policy kinds."""

    kind: str = field(init=False, default="")

    def children(self) -> Iterator[Route]:
        return iter(())


Route = Config | Policy


@dataclass(frozen=True)
class Static(Policy):
    config: Config
    kind: str = field(init=False, default="static")


@dataclass(frozen=True)
class TaskMap(Policy):
    routes: dict[str, Route]
    default: Route
    kind: str = field(init=False, default="task_map")

    def children(self) -> Iterator[Route]:
        yield from self.routes.values()
        yield self.default


@dataclass(frozen=True)
class Rule:
    task_type: tuple[str, ...] | None = None
    service: tuple[str, ...] | None = None
    environment: tuple[str, ...] | None = None
    prompt_gte: float | None = None
    prompt_lt: float | None = None
    keywords: tuple[str, ...] | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    complexity: str = ""


@dataclass(frozen=True)
class Classifier(Policy):
    rules: tuple[Rule, ...]
    default: str
    routes: dict[str, Route]
    kind: str = field(init=False, default="classifier")

    def children(self) -> Iterator[Route]:
        yield from self.routes.values()


@dataclass(frozen=True)
class Threshold(Policy):
    score: str  # "difficulty", "prompt_tokens" or "attr:<key>"
    strong: Config
    weak: Config
    threshold: float | None = None
    strong_share: float | None = None
    kind: str = field(init=False, default="threshold")

    def children(self) -> Iterator[Route]:
        yield self.strong
        yield self.weak


@dataclass(frozen=True)
class Cascade(Policy):
    steps: tuple[Config, ...]
    min_quality: float
    kind: str = field(init=False, default="cascade")

    def children(self) -> Iterator[Route]:
        yield from self.steps


@dataclass(frozen=True)
class Quota(Policy):
    policy: Route
    per: str
    daily_reasoning_tokens: float
    downgrade: Config
    kind: str = field(init=False, default="quota")

    def children(self) -> Iterator[Route]:
        yield self.policy
        yield self.downgrade


@dataclass(frozen=True)
class Oracle(Policy):
    candidates: tuple[Config, ...] | None = None
    min_quality: float | None = None
    kind: str = field(init=False, default="oracle")

    def children(self) -> Iterator[Route]:
        yield from self.candidates or ()


@dataclass(frozen=True)
class Random(Policy):
    choices: tuple[Config, ...]
    weights: tuple[float, ...]
    seed: int = 0
    kind: str = field(init=False, default="random")

    def children(self) -> Iterator[Route]:
        yield from self.choices


# ---------------------------------------------------------------- reading text

def load_text(text: str) -> Any:
    """JSON or YAML text → plain data (JSON is valid YAML, but JSON errors read better)."""
    stripped = text.strip()
    if not stripped:
        raise PolicyError(["policy: empty; write a JSON or YAML object with a 'kind'"])
    if stripped[0] in "{[":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError([f"policy: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"policy: not valid YAML{where}: {problem}"]) from exc


def parse_text(text: str) -> Policy:
    return parse_policy(load_text(text))


# ---------------------------------------------------------------- validation

class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def obj(self, data: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.error(where, f"must be an object, not {_typename(data)}")
            return None
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            self.error(where, f"keys must be strings, not {bad[0]!r}")
            return None
        return data

    def keys(self, data: dict[str, Any], where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        for key in required:
            if key not in data:
                self.error(f"{where}.{key}", "required")
        allowed = set(required) | set(optional) | {"kind"}
        for key in data:
            if key not in allowed:
                self.error(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed - {'kind'}))})")

    def integer(self, value: Any, where: str, low: int, high: int, what: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()
        ):
            self.error(where, f"must be {what}, not {value!r}")
            return None
        if not low <= value <= high:
            self.error(where, f"must be {what}, not {value!r}")
            return None
        return int(value)

    def number(self, value: Any, where: str, low: float, high: float, what: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(where, f"must be {what}, not {value!r}")
            return None
        if not low <= value <= high:
            self.error(where, f"must be {what}, not {value!r}")
            return None
        return float(value)

    def strings(self, value: Any, where: str) -> tuple[str, ...] | None:
        values = value if isinstance(value, list) else [value]
        if not values:
            self.error(where, "must name at least one value")
            return None
        out = []
        for i, item in enumerate(values):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.error(f"{where}[{i}]" if isinstance(value, list) else where,
                           f"must be a string, not {_typename(item)}")
                return None
            out.append(str(item))
        return tuple(out)

    # ---- configurations and routes

    def config(self, data: Any, where: str, extra: tuple[str, ...] = ()) -> Config | None:
        d = self.obj(data, where)
        if d is None:
            return None
        if "kind" in d:
            self.error(where, "must be a configuration {\"tier\": ..., \"thinking_budget\": ...}, not a policy")
            return None
        self.keys(d, where, ("tier", "thinking_budget"), extra)
        tier = self.integer(d["tier"], f"{where}.tier", 1, 3, "1, 2 or 3") if "tier" in d else None
        budget = (self.integer(d["thinking_budget"], f"{where}.thinking_budget", 0, MAX_BUDGET,
                               f"a whole number of tokens from 0 to {MAX_BUDGET:,}")
                  if "thinking_budget" in d else None)
        if tier is None or budget is None:
            return None
        return Config(tier, budget)

    def route(self, data: Any, where: str) -> Route | None:
        if isinstance(data, dict) and "kind" in data:
            return self.policy(data, where)
        return self.config(data, where)

    def policy(self, data: Any, where: str) -> Policy | None:
        d = self.obj(data, where)
        if d is None:
            return None
        kind = d.get("kind")
        if kind is None:
            self.error(f"{where}.kind", f"required (one of {', '.join(KINDS)})")
            return None
        if kind not in KINDS:
            self.error(f"{where}.kind", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
            return None
        method = getattr(self, "_" + kind)
        result: Policy | None = method(d, where)
        return result

    # ---- kinds

    def _static(self, d: dict[str, Any], where: str) -> Policy | None:
        config = self.config({k: v for k, v in d.items() if k != "kind"}, where)
        return Static(config) if config else None

    def _task_map(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("routes", "default"))
        routes: dict[str, Route] = {}
        raw = self.obj(d.get("routes"), f"{where}.routes") if "routes" in d else None
        if raw is not None:
            if not raw:
                self.error(f"{where}.routes", "must map at least one task type to a route")
            for task, value in raw.items():
                route = self.route(value, f"{where}.routes.{task}")
                if route is not None:
                    routes[task] = route
        default = self.route(d["default"], f"{where}.default") if "default" in d else None
        if raw is None or default is None or len(routes) != len(raw):
            return None
        return TaskMap(routes, default)

    def _classifier(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("rules", "default", "routes"))
        routes: dict[str, Route] = {}
        raw_routes = self.obj(d.get("routes"), f"{where}.routes") if "routes" in d else None
        if raw_routes is not None:
            for name, value in raw_routes.items():
                route = self.route(value, f"{where}.routes.{name}")
                if route is not None:
                    routes[name] = route
        rules: list[Rule] = []
        raw_rules = d.get("rules")
        if "rules" in d and not isinstance(raw_rules, list):
            self.error(f"{where}.rules", f"must be a list of rules, not {_typename(raw_rules)}")
        elif isinstance(raw_rules, list):
            for i, raw in enumerate(raw_rules):
                rule = self.rule(raw, f"{where}.rules[{i}]", raw_routes)
                if rule is not None:
                    rules.append(rule)
        default = d.get("default")
        if "default" in d:
            if not isinstance(default, str):
                self.error(f"{where}.default", f"must name a complexity, not {default!r}")
            elif raw_routes is not None and default not in raw_routes:
                self.error(f"{where}.default", f"complexity {default!r} has no entry in {where}.routes")
        if raw_routes is None or not isinstance(raw_rules, list) or len(rules) != len(raw_rules) \
                or not isinstance(default, str) or len(routes) != len(raw_routes) or default not in routes:
            return None
        return Classifier(tuple(rules), default, routes)

    def rule(self, data: Any, where: str, routes: dict[str, Any] | None) -> Rule | None:
        d = self.obj(data, where)
        if d is None:
            return None
        self.keys(d, where, ("when", "complexity"))
        complexity = d.get("complexity")
        ok = True
        if "complexity" in d:
            if not isinstance(complexity, str):
                self.error(f"{where}.complexity", f"must be a name, not {complexity!r}")
                ok = False
            elif routes is not None and complexity not in routes:
                self.error(f"{where}.complexity", f"{complexity!r} has no entry in the policy's routes")
                ok = False
        when = self.obj(d.get("when"), f"{where}.when") if "when" in d else None
        if when is None:
            return None
        if not when:
            self.error(f"{where}.when", f"must hold at least one condition ({', '.join(CONDITIONS)})")
            return None
        values: dict[str, Any] = {}
        for key, value in when.items():
            at = f"{where}.when.{key}"
            if key in ("task_type", "service", "environment"):
                values[key] = self.strings(value, at)
                ok = ok and values[key] is not None
            elif key == "keywords":
                words = self.strings(value, at)
                if words is not None and any(not w.strip() for w in words):
                    self.error(at, "keywords must not be empty")
                    words = None
                values[key] = tuple(w.lower() for w in words) if words else None
                ok = ok and words is not None
            elif key == "prompt_tokens":
                bounds = self.obj(value, at)
                if bounds is None:
                    ok = False
                    continue
                self.keys(bounds, at, (), ("gte", "lt"))
                if not bounds:
                    self.error(at, "give gte and/or lt")
                    ok = False
                for bound in ("gte", "lt"):
                    if bound in bounds:
                        number = self.number(bounds[bound], f"{at}.{bound}", 0, 1e12, "a number of tokens ≥ 0")
                        values["prompt_" + bound] = number
                        ok = ok and number is not None
            elif key == "attributes":
                attrs = self.obj(value, at)
                if attrs is None or not attrs:
                    if attrs is not None:
                        self.error(at, "must name at least one attribute")
                    ok = False
                    continue
                pairs = []
                for name, wanted in attrs.items():
                    strings = self.strings(wanted, f"{at}.{name}")
                    ok = ok and strings is not None
                    pairs.append((name, strings or ()))
                values["attributes"] = tuple(pairs)
            else:
                self.error(at, f"unknown condition (one of {', '.join(CONDITIONS)})")
                ok = False
        if not ok or not isinstance(complexity, str):
            return None
        return Rule(complexity=complexity, **values)

    def _threshold(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("strong", "weak"), ("score", "threshold", "calibrate"))
        strong = self.config(d["strong"], f"{where}.strong") if "strong" in d else None
        weak = self.config(d["weak"], f"{where}.weak") if "weak" in d else None
        score = self.score(d.get("score", "difficulty"), f"{where}.score")
        threshold = share = None
        if ("threshold" in d) == ("calibrate" in d):
            self.error(where, "give either threshold or calibrate: {\"strong_share\": 0..1}")
        elif "threshold" in d:
            threshold = self.number(d["threshold"], f"{where}.threshold", -1e12, 1e12, "a number")
        else:
            cal = self.obj(d["calibrate"], f"{where}.calibrate")
            if cal is not None:
                self.keys(cal, f"{where}.calibrate", ("strong_share",))
                if "strong_share" in cal:
                    share = self.number(cal["strong_share"], f"{where}.calibrate.strong_share", 0, 1,
                                        "a share from 0 to 1")
        if strong is None or weak is None or score is None or (threshold is None and share is None):
            return None
        return Threshold(score=score, strong=strong, weak=weak, threshold=threshold, strong_share=share)

    def score(self, value: Any, where: str) -> str | None:
        if isinstance(value, str):
            if value in SCORES:
                return value
            self.error(where, f"unknown score {value!r} (one of {', '.join(SCORES)}, or {{\"attribute\": \"<key>\"}})")
            return None
        d = self.obj(value, where)
        if d is None:
            return None
        self.keys(d, where, ("attribute",))
        name = d.get("attribute")
        if not isinstance(name, str) or not name:
            if "attribute" in d:
                self.error(f"{where}.attribute", "must be an attribute key")
            return None
        return "attr:" + name

    def _cascade(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("steps", "accept"))
        steps: list[Config] = []
        raw = d.get("steps")
        if "steps" in d:
            if not isinstance(raw, list) or len(raw) < 2:
                self.error(f"{where}.steps", "must list at least two configurations, cheapest first")
                raw = raw if isinstance(raw, list) else []
            for i, item in enumerate(raw):
                config = self.config(item, f"{where}.steps[{i}]")
                if config is not None:
                    steps.append(config)
            if len(set(steps)) != len(steps):
                self.error(f"{where}.steps", "lists the same configuration twice")
        min_quality = None
        accept = self.obj(d["accept"], f"{where}.accept") if "accept" in d else None
        if accept is not None:
            self.keys(accept, f"{where}.accept", ("min_quality",))
            if "min_quality" in accept:
                min_quality = self.number(accept["min_quality"], f"{where}.accept.min_quality", 0, 1,
                                          "a quality from 0 to 1")
        if min_quality is None or not isinstance(raw, list) or len(steps) != len(raw) or len(steps) < 2 \
                or len(set(steps)) != len(steps):
            return None
        return Cascade(tuple(steps), min_quality)

    def _quota(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("policy", "daily_reasoning_tokens", "downgrade"), ("per",))
        inner = self.route(d["policy"], f"{where}.policy") if "policy" in d else None
        cap = (self.number(d["daily_reasoning_tokens"], f"{where}.daily_reasoning_tokens", 1, 1e15,
                           "a number of tokens ≥ 1") if "daily_reasoning_tokens" in d else None)
        downgrade = self.config(d["downgrade"], f"{where}.downgrade") if "downgrade" in d else None
        per = d.get("per", "user")
        if per not in ("user", "session"):
            self.error(f"{where}.per", f"must be 'user' or 'session', not {per!r}")
            return None
        if inner is None or cap is None or downgrade is None:
            return None
        return Quota(inner, per, cap, downgrade)

    def _oracle(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, (), ("candidates", "min_quality"))
        candidates: tuple[Config, ...] | None = None
        ok = True
        if "candidates" in d:
            raw = d["candidates"]
            if not isinstance(raw, list) or not raw:
                self.error(f"{where}.candidates", "must list at least one configuration")
                return None
            found = [self.config(item, f"{where}.candidates[{i}]") for i, item in enumerate(raw)]
            ok = all(c is not None for c in found)
            candidates = tuple(dict.fromkeys(c for c in found if c is not None))
        min_quality = None
        if "min_quality" in d:
            min_quality = self.number(d["min_quality"], f"{where}.min_quality", 0, 1, "a quality from 0 to 1")
            ok = ok and min_quality is not None
        return Oracle(candidates, min_quality) if ok else None

    def _random(self, d: dict[str, Any], where: str) -> Policy | None:
        self.keys(d, where, ("choices",), ("seed",))
        raw = d.get("choices")
        if "choices" in d and (not isinstance(raw, list) or not raw):
            self.error(f"{where}.choices", "must list at least one configuration")
            return None
        choices: list[Config] = []
        weights: list[float] = []
        for i, item in enumerate(raw or []):
            config = self.config(item, f"{where}.choices[{i}]", extra=("weight",))
            weight = 1.0
            if isinstance(item, dict) and "weight" in item:
                weight = self.number(item["weight"], f"{where}.choices[{i}].weight", 0, 1e12, "a weight ≥ 0") or 0.0
            if config is not None:
                choices.append(config)
                weights.append(weight)
        seed = d.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            self.error(f"{where}.seed", f"must be a whole number ≥ 0, not {seed!r}")
            return None
        if raw is None or len(choices) != len(raw):
            return None
        if sum(weights) <= 0:
            self.error(f"{where}.choices", "the weights must not all be 0")
            return None
        return Random(tuple(choices), tuple(weights), seed)


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def parse_policy(data: Any, where: str = "policy") -> Policy:
    """Validate plain data (from JSON or YAML) into a :class:`Policy`; raise :class:`PolicyError` if it is wrong."""
    checker = _Checker()
    policy = checker.policy(data, where)
    if checker.errors or policy is None:
        raise PolicyError(checker.errors or [f"{where}: not a policy"])
    return policy


# ---------------------------------------------------------------- what a policy needs

def walk(route: Route) -> Iterator[Route]:
    yield route
    if isinstance(route, Policy):
        for child in route.children():
            yield from walk(child)


def configs_of(route: Route) -> set[Config]:
    """Every configuration the policy names (an oracle without candidates names none)."""
    return {node for node in walk(route) if isinstance(node, Config)} | {
        node.config for node in walk(route) if isinstance(node, Static)
    }


def attributes_of(route: Route) -> set[str]:
    """Attribute keys the policy reads (classifier conditions, threshold scores)."""
    keys: set[str] = set()
    for node in walk(route):
        if isinstance(node, Classifier):
            for rule in node.rules:
                keys.update(name for name, _ in rule.attributes)
        elif isinstance(node, Threshold) and node.score.startswith("attr:"):
            keys.add(node.score[5:])
    return keys


def keyword_sets_of(route: Route) -> set[tuple[str, ...]]:
    return {rule.keywords for node in walk(route) if isinstance(node, Classifier)
            for rule in node.rules if rule.keywords}


def keyword_column(words: tuple[str, ...]) -> str:
    """The request-table column the loader fills with "the prompt contains one of ``words``"."""
    return "kw:" + json.dumps(sorted(words), ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- sweeps

@dataclass(frozen=True)
class Sweep:
    """``threshold:0..1:20``: a parameter (a dotted path in the policy) over ``points`` evenly spaced values."""

    path: tuple[str, ...]
    low: float
    high: float
    points: int

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def values(self) -> list[float]:
        if self.points == 1:
            return [self.low]
        step = (self.high - self.low) / (self.points - 1)
        return [self.low + i * step for i in range(self.points)]


def parse_sweep(text: str) -> Sweep:
    """``PARAM:LOW..HIGH:POINTS`` (e.g. ``threshold:0..1:20``)."""
    usage = "sweep: write PARAM:LOW..HIGH:POINTS, e.g. threshold:0..1:20"
    parts = text.strip().split(":")
    if len(parts) != 3 or ".." not in parts[1]:
        raise PolicyError([f"{usage} (got {text!r})"])
    name, span, count = parts
    low_text, _, high_text = span.partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise PolicyError([f"sweep: LOW and HIGH must be numbers (got {span!r})"]) from None
    try:
        points = int(count)
    except ValueError:
        raise PolicyError([f"sweep: POINTS must be a whole number (got {count!r})"]) from None
    if not 1 <= points <= 200:
        raise PolicyError([f"sweep: POINTS must be from 1 to 200 (got {points})"])
    if not name or any(not p for p in name.split(".")):
        raise PolicyError([f"sweep: name the parameter to vary (got {name!r})"])
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise PolicyError([f"sweep: need LOW ≤ HIGH (got {low}..{high})"])
    return Sweep(tuple(name.split(".")), low, high, points)


def with_value(data: Any, sweep: Sweep, value: float) -> Any:
    """A copy of the policy data with the swept parameter set to ``value``.

    Setting ``threshold`` on a threshold policy drops its ``calibrate`` (a sweep replaces it).
    """
    out = copy.deepcopy(data)
    node = out
    for i, key in enumerate(sweep.path[:-1]):
        if not isinstance(node, dict) or key not in node:
            raise PolicyError([f"sweep: the policy has no {'.'.join(sweep.path[: i + 1])!r}"])
        node = node[key]
    last = sweep.path[-1]
    if not isinstance(node, dict):
        raise PolicyError([f"sweep: the policy has no {sweep.name!r}"])
    if last == "threshold" and node.get("kind") == "threshold":
        node.pop("calibrate", None)
    elif last not in node:
        raise PolicyError([f"sweep: the policy has no {sweep.name!r}"])
    elif isinstance(node[last], bool) or not isinstance(node[last], int | float):
        raise PolicyError([f"sweep: {sweep.name!r} is not a number"])
    node[last] = int(round(value)) if isinstance(node.get(last), int) and not isinstance(node.get(last), bool) \
        and last in ("thinking_budget", "tier") else value
    return out
