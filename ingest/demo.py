"""Demo traffic for ``manage.py seed_demo``: realistic spans of LLM apps, generated deterministically.

No Django and no I/O (so it also runs in a bare subprocess, see :func:`produce`).
:func:`generate` streams traces in time order (one trace at a time, so a million spans
never sit in memory together); :func:`batches` packs whole traces into requests of
about 512 spans, :func:`encode` turns them into an OTLP ``ExportTraceServiceRequest``
(protobuf bytes) and :func:`encoded_batches` gzips them. Sending is the command's business.

The traffic model, in short:

- three apps (services) — ``support-bot``, ``code-assistant``, ``analytics-pipeline`` —
  each with a root ``handle_request`` span, sometimes a tool span, LLM calls and a
  ``verify`` span after each call; production and staging environments;
- six task types of increasing difficulty, routed to tier 1 (cheap), 2 (mid) or 3
  (strong) models with thinking budgets 0/4000/10000 (``reasoning_effort`` for OpenAI);
  a few percent of requests explore a random (tier, budget) configuration;
- escalation: when the verifier fails, the request is retried one tier up inside the
  same trace, the attempts sharing ``thinkmeter.request_id`` and numbered by
  ``thinkmeter.attempt``; the final attempt carries ``thinkmeter.quality``, which grows
  with tier and budget and falls with difficulty;
- reasoning tokens are heavy-tailed, capped near the budget and scaled by difficulty;
  a few runaway requests think 6–20× the 95th percentile of their task type (at most 100k tokens);
- ~40 users with sessions, weekday and business-hour seasonality and slow growth,
  latency and time to first token consistent with the tokens, prompt-cache reads on a
  share of calls, ~1% failed calls, ~1% calls to a model without a price;
- the attribute flavours of the common instrumentors: OTel GenAI conventions,
  OpenLLMetry, OpenInference, the Vercel AI SDK (an ``ai.generateText`` parent with the
  totals above its ``doGenerate`` child) and Anthropic's raw usage shape (cache tokens
  not included in input); about 5% of requests carry no task type or tier attributes.

Same ``seed`` and ``end`` give the same traffic; span ids also depend on ``end`` so two
runs at different times never collide.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span

SERVER = Span.SPAN_KIND_SERVER
INTERNAL = Span.SPAN_KIND_INTERNAL
CLIENT = Span.SPAN_KIND_CLIENT
STATUS_ERROR = 2

BUDGETS = (0, 4000, 10000)
EFFORTS = {0: "low", 4000: "medium", 10000: "high"}
# OpenAI reasoning models have no hard budget: roughly where each effort level tops out.
EFFORT_CAPS = {0: 1500, 4000: 5000, 10000: 14000}
EFFORT_SOFT_CAP = 1.15  # effort levels are not hard limits: thinking may run a little past them
NORMAL_REASONING_MAX = int(EFFORT_CAPS[10000] * EFFORT_SOFT_CAP)  # no normal call thinks longer
TIER_SKILL = {1: 0.45, 2: 0.65, 3: 0.80}
BUDGET_BONUS = {0: 0.0, 4000: 0.07, 10000: 0.12}
ERROR_RATE = 0.01
UNPRICED_RATE = 0.01
EXPLORATION_RATE = 0.04
UNTAGGED_RATE = 0.05
RUNAWAY_RATE = 0.003
RUNAWAY_FACTOR = (6.0, 20.0)
RUNAWAY_MAX = 100_000  # the largest output an OpenAI reasoning model returns
SESSION_GAP_NS = 3 * 3600 * 1_000_000_000
STAGING_RATE = 0.10
USERS = 40
SPANS_PER_TRACE_GUESS = 4.0
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    provider: str  # openai | anthropic | google | acme
    response_model: str
    # "none": never reasons; "effort": OpenAI o-series, always reasons, effort low/medium/high;
    # "budget": thinking off at budget 0, else up to the budget; "always": reasons even at budget 0.
    thinking: str
    tokens_per_s: float


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("gpt-4.1-mini", "openai", "gpt-4.1-mini-2025-04-14", "none", 95),
        Model("o4-mini", "openai", "o4-mini-2025-04-16", "effort", 130),
        Model("o3", "openai", "o3-2025-04-16", "effort", 65),
        Model("claude-haiku-4-5", "anthropic", "claude-haiku-4-5-20251001", "budget", 140),
        Model("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5-20250929", "budget", 75),
        Model("claude-opus-4-1", "anthropic", "claude-opus-4-1-20250805", "budget", 40),
        Model("gemini-2.5-flash", "google", "gemini-2.5-flash", "budget", 220),
        Model("gemini-2.5-pro", "google", "gemini-2.5-pro", "always", 95),
        Model("acme-internal-llm", "acme", "acme-internal-llm", "none", 60),
    )
}
UNPRICED_MODEL = MODELS["acme-internal-llm"]


@dataclass(frozen=True, slots=True)
class TaskType:
    name: str
    difficulty: float  # 0 easy .. 1 hard
    input_median: int
    output_median: int


TASKS: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType("classification", 0.15, 700, 15),
        TaskType("extraction", 0.25, 2400, 280),
        TaskType("summarization", 0.45, 6000, 380),
        TaskType("customer_support", 0.55, 2800, 260),
        TaskType("code_generation", 0.75, 4200, 850),
        TaskType("math_reasoning", 0.85, 900, 450),
    )
}


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    share: float
    language: str
    version: str
    route: tuple[str, str, str]  # model per tier 1, 2, 3
    tasks: tuple[tuple[str, float], ...]
    flavours: tuple[tuple[str, float], ...]
    cache_share: float
    tool: str
    http_route: str


SERVICES: tuple[Service, ...] = (
    Service(
        "support-bot", 0.45, "python", "2.14.1", ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"),
        (("customer_support", 0.55), ("classification", 0.25), ("summarization", 0.20)),
        (("openllmetry", 0.4), ("otel_genai", 0.3), ("anthropic_raw", 0.3)),
        0.6, "retrieve_context", "/v1/conversations/{id}/reply",
    ),
    Service(
        "code-assistant", 0.30, "nodejs", "0.9.3", ("gpt-4.1-mini", "o4-mini", "o3"),
        (("code_generation", 0.7), ("math_reasoning", 0.15), ("extraction", 0.15)),
        (("vercel_ai", 0.5), ("otel_genai", 0.3), ("openinference", 0.2)),
        0.4, "load_repository_context", "/api/complete",
    ),
    Service(
        "analytics-pipeline", 0.25, "python", "1.3.0", ("gemini-2.5-flash", "o4-mini", "gemini-2.5-pro"),
        (("extraction", 0.35), ("classification", 0.25), ("summarization", 0.25), ("math_reasoning", 0.15)),
        (("openinference", 0.5), ("openllmetry", 0.3), ("otel_genai", 0.2)),
        0.2, "query_warehouse", "/jobs/{id}/run",
    ),
)

ERRORS = (
    ("RateLimitError", "Error code: 429 - rate limit reached for requests", 0.05, 0.4),
    ("APITimeoutError", "Request timed out.", 30.0, 60.0),
    ("InternalServerError", "Error code: 529 - overloaded_error: Overloaded", 0.4, 2.5),
)


@dataclass(slots=True)
class Call:
    """One provider call as planned (what the app asked for and what it got back)."""

    model: Model
    task: TaskType
    tier: int
    budget: int
    attempt: int
    explore: bool
    input_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    visible: int = 0
    reasoning: int = 0
    passed: bool = False
    quality: float | None = None
    error: tuple[str, str, float, float] | None = None


@dataclass(slots=True)
class SpanData:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    scope: str
    attributes: dict[str, Any]
    status: int = 0
    status_message: str = ""


@dataclass(slots=True)
class Trace:
    resource: tuple[tuple[str, str], ...]
    spans: list[SpanData]
    llm_calls: int = 0  # provider calls with usage (a Vercel parent/child pair is one call)
    runaway: bool = False


@dataclass(slots=True)
class _User:
    user_id: str
    weight: float
    session_id: str = ""
    last_ns: int = 0


class _Stratified:
    """A rare event at an exact long-run rate, evenly spread with a random phase.

    Firing on a coin flip could leave a small run without any event; this fires for the
    first time within ``1/rate`` draws, then every ``1/rate`` draws on average.
    """

    def __init__(self, rate: float, rng: random.Random) -> None:
        self.rate = rate
        self.level = rng.uniform(0.6, 1.0)

    def fire(self) -> bool:
        self.level += self.rate
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


def _cumulative(pairs: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    items, cum, total = [], [], 0.0
    for item, weight in pairs:
        total += weight
        items.append(item)
        cum.append(total)
    return items, cum


class _Planner:
    """Decides what a request does: route, attempts, tokens, verdicts (no ids, no times)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.services = _cumulative([(s, s.share) for s in SERVICES])
        self.tasks = {s.name: _cumulative([(TASKS[t], w) for t, w in s.tasks]) for s in SERVICES}
        self.flavours = {s.name: _cumulative(list(s.flavours)) for s in SERVICES}

    def pick(self, choices: tuple[list[Any], list[float]]) -> Any:
        return self.rng.choices(choices[0], cum_weights=choices[1])[0]

    def route(self, task: TaskType, explore: bool) -> tuple[int, int]:
        """(tier, thinking budget) of the first attempt: the app's policy, or a random configuration."""
        rng = self.rng
        if explore:
            return rng.randint(1, 3), rng.choice(BUDGETS)
        if task.difficulty < 0.3:
            return 1, (0 if rng.random() < 0.8 else 4000)
        if task.difficulty < 0.6:
            return (1 if rng.random() < 0.6 else 2), (4000 if rng.random() < 0.7 else 0)
        return (2 if rng.random() < 0.7 else 3), (10000 if rng.random() < 0.6 else 4000)

    def reasoning(self, model: Model, budget: int, task: TaskType) -> int:
        """Heavy-tailed (log-normal) thinking, scaled by difficulty, capped near the budget."""
        rng = self.rng
        if model.thinking == "none":
            return 0
        if model.thinking == "effort":
            cap, soft = EFFORT_CAPS[budget], EFFORT_SOFT_CAP
        elif budget == 0:
            if model.thinking == "budget":
                return 0
            cap, soft = 1024, 1.0  # dynamic thinking that cannot be switched off
        else:
            cap, soft = budget, 1.0
        median = cap * (0.06 + 0.34 * task.difficulty)
        value = rng.lognormvariate(math.log(median), 0.75)
        limit = cap * soft * rng.uniform(0.96, 1.0)
        return int(min(value, limit))

    def p_success(self, model: Model, tier: int, budget: int, task: TaskType, reasoning: int) -> float:
        skill = TIER_SKILL[tier] + (BUDGET_BONUS[budget] if reasoning else 0.0)
        return 1.0 / (1.0 + math.exp(-(1.0 + 5.0 * (skill - task.difficulty))))

    def call(self, service: Service, model: Model, task: TaskType, tier: int, budget: int, attempt: int,
             explore: bool, context: int) -> Call:
        rng = self.rng
        call = Call(model, task, tier, budget, attempt, explore)
        if rng.random() < ERROR_RATE:
            call.error = rng.choice(ERRORS)
            return call
        call.input_tokens = max(40, int(rng.lognormvariate(math.log(task.input_median), 0.5))) + context
        if call.input_tokens > 1024 and rng.random() < service.cache_share:
            prefix = int(call.input_tokens * rng.uniform(0.55, 0.9))
            if model.provider == "anthropic" and rng.random() < 0.12:
                call.cache_write = prefix
            else:
                call.cache_read = prefix
        call.visible = max(1, int(rng.lognormvariate(math.log(task.output_median), 0.6)))
        call.reasoning = self.reasoning(model, budget, task)
        p = self.p_success(model, tier, budget, task, call.reasoning)
        call.passed = rng.random() < p
        mean = 0.3 + 0.6 * p + (0.06 if call.passed else -0.12)
        call.quality = round(min(1.0, max(0.0, rng.gauss(mean, 0.06))), 3)
        return call

    def request(self, service: Service, task: TaskType, explore: bool, tier: int, budget: int,
                unpriced: _Stratified | None) -> list[Call]:
        """The calls of one request: attempts escalating a tier after each failed verdict.

        A failed call (error) is retried once at the same tier; a second failure ends the request.
        """
        calls: list[Call] = []
        context = 0
        failures = 0
        attempt = 1
        while True:
            model = MODELS[service.route[tier - 1]]
            if unpriced is not None and unpriced.fire():
                model = UNPRICED_MODEL
            call = self.call(service, model, task, tier, budget, attempt, explore, context)
            calls.append(call)
            if call.error is not None:
                failures += 1
                if failures >= 2:
                    return calls
                continue
            if call.passed or tier == 3:
                return calls
            tier += 1
            budget = BUDGETS[min(BUDGETS.index(budget) + 1, len(BUDGETS) - 1)]
            context = call.visible + 150
            attempt += 1


@lru_cache(maxsize=1)
def class_p95() -> dict[str, float]:
    """95th percentile of reasoning tokens per task type in normal traffic (a fixed simulation)."""
    planner = _Planner(random.Random(20250917))
    samples: dict[str, list[int]] = {name: [] for name in TASKS}
    for _ in range(8000):
        service = planner.pick(planner.services)
        task = planner.pick(planner.tasks[service.name])
        explore = planner.rng.random() < EXPLORATION_RATE
        tier, budget = planner.route(task, explore)
        for call in planner.request(service, task, explore, tier, budget, None):
            if call.error is None:
                samples[task.name].append(call.reasoning)
    out: dict[str, float] = {}
    for name, values in samples.items():
        values.sort()
        out[name] = float(values[min(len(values) - 1, int(0.95 * len(values)))]) if values else 1000.0
    return out


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


class _Generator:
    def __init__(self, seed: int, end: datetime) -> None:
        self.rng = random.Random(seed)
        end_ns = int(end.timestamp() * NS)
        # Ids come from their own stream, salted by the end time, so the traffic depends only
        # on (seed, end) while two runs never produce the same span identities.
        self.ids = random.Random(f"{seed}:{end_ns}")
        self.end_ns = end_ns
        self.planner = _Planner(self.rng)
        self.p95 = class_p95()
        self.unpriced = _Stratified(UNPRICED_RATE, self.rng)
        self.runaway = _Stratified(RUNAWAY_RATE, self.rng)
        self.runaway_pending = False
        self.users = [_User(f"user-{i + 1:02d}", 1.0 / (i + 1) ** 0.8) for i in range(USERS)]
        self.user_choices = _cumulative([(u, u.weight) for u in self.users])

    # ---- ids -----------------------------------------------------------------------------
    def trace_id(self) -> bytes:
        return (self.ids.getrandbits(128) | 1).to_bytes(16, "big")

    def span_id(self) -> bytes:
        return (self.ids.getrandbits(64) | 1).to_bytes(8, "big")

    def response_id(self, provider: str) -> str:
        if provider == "openai":
            return "chatcmpl-" + _hex(self.ids, 96)
        if provider == "anthropic":
            return "msg_01" + _hex(self.ids, 88)
        return _hex(self.ids, 64)

    def session(self, user: _User, now_ns: int) -> str:
        if not user.session_id or now_ns - user.last_ns > SESSION_GAP_NS or self.rng.random() < 0.2:
            user.session_id = "sess_" + _hex(self.ids, 48)
        user.last_ns = now_ns
        return user.session_id

    # ---- time ----------------------------------------------------------------------------
    def hour_weights(self, start_ns: int) -> list[tuple[int, int, float]]:
        """(bucket start, bucket end, weight) per hour: weekdays, business hours, daily noise, growth."""
        buckets = []
        total = self.end_ns - start_ns
        day_noise: dict[int, float] = {}
        t = start_ns
        while t < self.end_ns:
            stop = min(t + 3600 * NS, self.end_ns)
            moment = datetime.fromtimestamp((t + stop) / 2 / NS, UTC)
            day = int(t // (86400 * NS))
            if day not in day_noise:
                day_noise[day] = self.rng.lognormvariate(0.0, 0.15)
            weekday = 0.3 if moment.weekday() >= 5 else 1.0
            hour = moment.hour + moment.minute / 60
            business = 0.12 + math.exp(-(((hour - 14.5) / 3.8) ** 2))
            growth = 1.0 + 0.3 * (t - start_ns) / total
            weight = weekday * business * day_noise[day] * growth * (stop - t) / (3600 * NS)
            buckets.append((t, stop, weight))
            t = stop
        return buckets

    def run(self, spans: int, days: float) -> Iterator[Trace]:
        start_ns = self.end_ns - int(days * 86400 * NS)
        buckets = self.hour_weights(start_ns)
        remaining_weight = sum(w for _, _, w in buckets)
        emitted = traces = 0
        for index, (low, high, weight) in enumerate(buckets):
            if emitted >= spans:
                return
            last = index == len(buckets) - 1
            per_trace = emitted / traces if traces >= 50 else SPANS_PER_TRACE_GUESS
            share = weight / remaining_weight if remaining_weight > 0 else 1.0
            remaining_weight -= weight
            expected = (spans - emitted) / per_trace * share
            count = int(expected + self.rng.random())
            starts = sorted(self.rng.randrange(low, high) for _ in range(count))
            for start in starts:
                trace = self.trace(start)
                emitted += len(trace.spans)
                traces += 1
                yield trace
                if emitted >= spans and not last:
                    return
            while last and emitted < spans:
                trace = self.trace(self.rng.randrange(low, high))
                emitted += len(trace.spans)
                traces += 1
                yield trace

    # ---- one trace -----------------------------------------------------------------------
    def trace(self, start_ns: int) -> Trace:
        rng, planner = self.rng, self.planner
        service: Service = planner.pick(planner.services)
        task: TaskType = planner.pick(planner.tasks[service.name])
        explore = rng.random() < EXPLORATION_RATE
        tagged = rng.random() >= UNTAGGED_RATE
        environment = "staging" if rng.random() < STAGING_RATE else "production"
        user: _User = planner.pick(self.user_choices)
        session = self.session(user, start_ns)
        tier, budget = planner.route(task, explore)
        if self.runaway.fire():
            self.runaway_pending = True
        # A runaway needs a model without a hard thinking budget (OpenAI effort levels, Gemini Pro):
        # when this request's model has one, the next eligible request runs away instead.
        runaway = self.runaway_pending and MODELS[service.route[tier - 1]].thinking in ("effort", "always")
        if runaway:
            budget = 10000
        calls = planner.request(service, task, explore, tier, budget, self.unpriced)
        if runaway and calls[0].error is None and calls[0].model.thinking in ("effort", "always"):
            self.runaway_pending = False
            calls[0].reasoning = int(min(rng.uniform(*RUNAWAY_FACTOR) * self.p95[task.name], RUNAWAY_MAX))
        else:
            runaway = False
        request_id = "req_" + _hex(self.ids, 64)
        resource = (
            ("service.name", service.name), ("service.version", service.version),
            ("deployment.environment", environment), ("telemetry.sdk.language", service.language),
            ("telemetry.sdk.name", "opentelemetry"),
        )
        trace_id = self.trace_id()
        root_id = self.span_id()
        app_scope = service.name.replace("-", "_") + ".app"
        spans: list[SpanData] = []
        t = start_ns + rng.randint(1, 4) * 1_000_000
        if rng.random() < 0.7:
            d = int(rng.lognormvariate(math.log(0.08), 0.6) * NS)
            spans.append(SpanData(trace_id, self.span_id(), root_id, service.tool, INTERNAL, t, t + d, app_scope,
                                  {"tool.name": service.tool}))
            t += d
        llm_calls = 0
        final_index = max((i for i, c in enumerate(calls) if c.error is None), default=-1)
        for i, call in enumerate(calls):
            flavour = planner.pick(planner.flavours[service.name])
            call_spans, duration = self.llm_spans(call, flavour, trace_id, root_id, t, user.user_id, session,
                                                  request_id, tagged, final=i == final_index)
            spans.extend(call_spans)
            t += duration
            if call.error is None:
                llm_calls += 1
                d = int(rng.uniform(0.02, 0.4) * NS)
                spans.append(SpanData(trace_id, self.span_id(), root_id, "verify", INTERNAL, t, t + d, app_scope,
                                      {"thinkmeter.verifier.passed": call.passed, "thinkmeter.attempt": call.attempt}))
                t += d
            t += rng.randint(1, 20) * 1_000_000
        failed = final_index < 0 or calls[-1].error is not None
        root_attrs: dict[str, Any] = {
            "http.request.method": "POST", "http.route": service.http_route,
            "http.response.status_code": 502 if failed else 200, "user.id": user.user_id, "session.id": session,
        }
        root = SpanData(trace_id, root_id, b"", "handle_request", SERVER, start_ns, t, app_scope, root_attrs,
                        STATUS_ERROR if failed else 0, "upstream model call failed" if failed else "")
        spans.insert(0, root)
        overshoot = t - (self.end_ns - NS)
        if overshoot > 0:  # never end in the future: shift the whole trace back
            for span in spans:
                span.start_ns -= overshoot
                span.end_ns -= overshoot
        return Trace(resource, spans, llm_calls, runaway)

    # ---- one LLM call in an instrumentor's attribute flavour ---------------------------------
    def llm_spans(self, call: Call, flavour: str, trace_id: bytes, parent: bytes, t: int, user_id: str,
                  session: str, request_id: str, tagged: bool, final: bool) -> tuple[list[SpanData], int]:
        rng, model = self.rng, call.model
        cache = call.cache_read + call.cache_write
        if model is UNPRICED_MODEL or (flavour == "vercel_ai" and model.provider == "anthropic"):
            flavour = "otel_genai"
        if flavour == "anthropic_raw" and (
            model.provider != "anthropic" or call.reasoning or (cache and call.input_tokens - cache >= cache)
        ):
            # The raw shape (input without cache) is only recognisable when the cache part dominates,
            # and Anthropic's raw usage has no thinking count: use the OTel convention otherwise.
            flavour = "otel_genai"
        if call.error is not None:
            duration = int(rng.uniform(call.error[2], call.error[3]) * NS)
            ttft_ms = 0.0
        else:
            tps = model.tokens_per_s * rng.uniform(0.75, 1.25)
            ttft_s = 0.2 + rng.expovariate(4.0) + call.input_tokens / 30000 + call.reasoning / tps
            ttft_ms = ttft_s * 1000
            duration = int((ttft_s + call.visible / tps) * NS)
        response_id = self.response_id(model.provider)
        output = call.visible + call.reasoning
        # Gemini reports thoughts beside the candidates; everyone else counts them inside output.
        output_reported = call.visible if model.provider == "google" else output
        common: dict[str, Any] = {"thinkmeter.request_id": request_id, "thinkmeter.attempt": call.attempt,
                                  "thinkmeter.thinking_budget": call.budget}
        if call.explore:
            common["thinkmeter.exploration"] = True
        if final and call.quality is not None:
            common["thinkmeter.quality"] = call.quality
        tags: dict[str, Any] = {"task_type": call.task.name, "tier": call.tier} if tagged else {}
        effort = EFFORTS[call.budget] if model.thinking == "effort" else ""
        ok = call.error is None
        status = STATUS_ERROR if not ok else 0
        message = f"{call.error[0]}: {call.error[1]}" if call.error is not None else ""
        if not ok:
            common["error.type"] = call.error[0]  # type: ignore[index]
        span_id = self.span_id()

        if flavour == "otel_genai":
            provider = {"google": "gcp.gemini"}.get(model.provider, model.provider)
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model.name,
                "user.id": user_id, "gen_ai.conversation.id": session,
            }
            if effort:
                attrs["gen_ai.request.reasoning_effort"] = effort
            if model.provider == "anthropic" and call.budget:
                attrs["anthropic.thinking.budget_tokens"] = call.budget
            if ok:
                attrs.update({
                    "gen_ai.response.model": model.response_model, "gen_ai.response.id": response_id,
                    "gen_ai.response.finish_reasons": "stop", "gen_ai.usage.input_tokens": call.input_tokens,
                    "gen_ai.usage.output_tokens": output_reported,
                    "gen_ai.response.time_to_first_chunk": round(ttft_ms / 1000, 4),
                })
                if call.reasoning:
                    attrs["gen_ai.usage.reasoning.output_tokens"] = call.reasoning
                if call.cache_read:
                    attrs["gen_ai.usage.cache_read.input_tokens"] = call.cache_read
                if call.cache_write:
                    attrs["gen_ai.usage.cache_creation.input_tokens"] = call.cache_write
            for key, value in tags.items():
                attrs["thinkmeter." + key] = value
            attrs.update(common)
            scope = {"openai": "opentelemetry.instrumentation.openai_v2", "anthropic": "anthropic",
                     "google": "opentelemetry.instrumentation.google_genai"}.get(model.provider, "acme.llm_client")
            return [SpanData(trace_id, span_id, parent, f"chat {model.name}", CLIENT, t, t + duration, scope, attrs,
                             status, message)], duration

        if flavour == "anthropic_raw":
            attrs = {
                "gen_ai.system": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": model.name,
                "user.id": user_id, "session.id": session,
            }
            if ok:
                attrs.update({
                    "gen_ai.response.model": model.response_model, "gen_ai.response.id": response_id,
                    "gen_ai.usage.input_tokens": call.input_tokens - cache,
                    "gen_ai.usage.output_tokens": output,
                })
                if call.cache_read:
                    attrs["gen_ai.usage.cache_read_input_tokens"] = call.cache_read
                if call.cache_write:
                    attrs["gen_ai.usage.cache_creation_input_tokens"] = call.cache_write
            for key, value in tags.items():
                attrs["thinkmeter." + key] = value
            attrs.update(common)
            return [SpanData(trace_id, span_id, parent, "anthropic.messages.create", CLIENT, t, t + duration,
                             "support_bot.llm_wrapper", attrs, status, message)], duration

        if flavour == "openllmetry":
            system = {"openai": "openai", "anthropic": "Anthropic", "google": "Gemini"}[model.provider]
            attrs = {
                "gen_ai.system": system, "llm.request.type": "chat", "gen_ai.request.model": model.name,
                "traceloop.association.properties.user_id": user_id,
                "traceloop.association.properties.session_id": session,
                "traceloop.association.properties.request_id": request_id,
                "traceloop.association.properties.attempt": call.attempt,
                "llm.is_streaming": False,
            }
            for key, value in tags.items():
                attrs["traceloop.association.properties." + key] = value
            if effort:
                attrs["gen_ai.request.reasoning_effort"] = effort
            if ok:
                attrs.update({
                    "gen_ai.response.model": model.response_model, "gen_ai.response.id": response_id,
                    "gen_ai.usage.prompt_tokens": call.input_tokens, "gen_ai.usage.completion_tokens": output_reported,
                    "llm.usage.total_tokens": call.input_tokens + output_reported,
                })
                if call.reasoning:
                    attrs["gen_ai.usage.reasoning_tokens"] = call.reasoning
                if call.cache_read:
                    attrs["gen_ai.usage.cache_read_input_tokens"] = call.cache_read
                if call.cache_write:
                    attrs["gen_ai.usage.cache_creation_input_tokens"] = call.cache_write
            attrs.update(common)
            name = {"openai": "openai.chat", "anthropic": "anthropic.chat", "google": "gemini.generate_content"}
            scope = {"openai": "opentelemetry.instrumentation.openai.v1",
                     "anthropic": "opentelemetry.instrumentation.anthropic",
                     "google": "opentelemetry.instrumentation.google_generativeai"}[model.provider]
            return [SpanData(trace_id, span_id, parent, name[model.provider], CLIENT, t, t + duration, scope, attrs,
                             status, message)], duration

        if flavour == "openinference":
            invocation: dict[str, Any] = {"max_tokens": 16000 if call.budget else 4096}
            if effort:
                invocation = {"reasoning_effort": effort}
            elif model.provider == "anthropic" and call.budget:
                invocation["thinking"] = {"type": "enabled", "budget_tokens": call.budget}
            elif model.provider == "google" and model.thinking != "none":
                invocation["thinking_config"] = {"thinking_budget": call.budget}
            metadata: dict[str, Any] = {"user_id": user_id, "request_id": request_id, "attempt": call.attempt, **tags}
            attrs = {
                "openinference.span.kind": "LLM", "llm.provider": model.provider, "llm.system": model.provider,
                "llm.model_name": model.response_model if ok else model.name,
                "llm.invocation_parameters": json.dumps(invocation, separators=(",", ":")),
                "metadata": json.dumps(metadata, separators=(",", ":")),
                "user.id": user_id, "session.id": session,
            }
            if ok:
                attrs.update({
                    "llm.token_count.prompt": call.input_tokens, "llm.token_count.completion": output_reported,
                    "llm.token_count.total": call.input_tokens + output_reported,
                })
                if call.reasoning:
                    attrs["llm.token_count.completion_details.reasoning"] = call.reasoning
                if call.cache_read:
                    attrs["llm.token_count.prompt_details.cache_read"] = call.cache_read
                if call.cache_write:
                    attrs["llm.token_count.prompt_details.cache_write"] = call.cache_write
            attrs.update(common)
            name = {"openai": "ChatCompletion", "anthropic": "Messages", "google": "GenerateContent"}
            scope = {"openai": "openinference.instrumentation.openai",
                     "anthropic": "openinference.instrumentation.anthropic",
                     "google": "openinference.instrumentation.google_genai"}[model.provider]
            return [SpanData(trace_id, span_id, parent, name[model.provider], CLIENT, t, t + duration, scope, attrs,
                             status, message)], duration

        # vercel_ai: an ai.generateText / ai.streamText parent with the totals above its provider call.
        stream = rng.random() < 0.5
        operation = "ai.streamText" if stream else "ai.generateText"
        child_operation = operation + (".doStream" if stream else ".doGenerate")
        vendor = {"openai": "openai.responses", "anthropic": "anthropic.messages",
                  "google": "google.generative-ai"}[model.provider]
        meta = {"userId": user_id, "sessionId": session, "request_id": request_id, "attempt": str(call.attempt),
                **{k: str(v) for k, v in tags.items()}}
        base: dict[str, Any] = {
            "ai.model.id": model.name, "ai.model.provider": vendor,
            "ai.telemetry.functionId": f"{call.task.name.replace('_', '-')}",
        }
        for key, value in meta.items():
            base["ai.telemetry.metadata." + key] = value
        if effort:
            base["ai.settings.providerOptions.openai.reasoningEffort"] = effort
        usage: dict[str, Any] = {}
        if ok:
            usage = {"ai.usage.inputTokens": call.input_tokens, "ai.usage.outputTokens": output_reported,
                     "ai.usage.totalTokens": call.input_tokens + output_reported}
            if call.reasoning:
                usage["ai.usage.reasoningTokens"] = call.reasoning
            if call.cache_read:
                usage["ai.usage.cachedInputTokens"] = call.cache_read
        parent_attrs = {"operation.name": operation, "ai.operationId": operation, **base, **usage,
                        "thinkmeter.request_id": request_id, "thinkmeter.attempt": call.attempt,
                        "thinkmeter.thinking_budget": call.budget}
        child_attrs = {"operation.name": child_operation, "ai.operationId": child_operation, **base, **usage,
                       **common}
        if ok:
            child_attrs.update({"ai.response.model": model.response_model, "ai.response.id": response_id,
                                "ai.response.finishReason": "stop"})
            if stream:
                child_attrs["ai.response.msToFirstChunk"] = round(ttft_ms, 1)
        outer = duration + 2_000_000
        parent_id = span_id
        return [
            SpanData(trace_id, parent_id, parent, operation, INTERNAL, t, t + outer, "ai", parent_attrs,
                     status, message),
            SpanData(trace_id, self.span_id(), parent_id, child_operation, CLIENT, t + 1_000_000,
                     t + 1_000_000 + duration, "ai", child_attrs, status, message),
        ], outer


def generate(spans: int, days: float = 30, seed: int = 42, end: datetime | None = None) -> Iterator[Trace]:
    """Stream whole traces, in time order, over ``days`` before ``end`` (now), until ``spans`` are reached.

    The last trace may take the count a few spans past ``spans`` (traces are never cut).
    """
    if spans < 1:
        raise ValueError("spans must be at least 1")
    if days <= 0:
        raise ValueError("days must be positive")
    moment = end or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    return _Generator(seed, moment).run(spans, days)


def batches(traces: Iterable[Trace], max_spans: int = 512) -> Iterator[list[Trace]]:
    """Group whole traces into batches of at most ``max_spans`` spans (a larger trace goes alone)."""
    batch: list[Trace] = []
    size = 0
    for trace in traces:
        n = len(trace.spans)
        if batch and size + n > max_spans:
            yield batch
            batch, size = [], 0
        batch.append(trace)
        size += n
    if batch:
        yield batch


def _set_attributes(span: Span, attributes: dict[str, Any]) -> None:
    add = span.attributes.add  # filling in place is about twice as fast as building KeyValue objects
    for key, value in attributes.items():
        target = add(key=key).value
        if isinstance(value, str):
            target.string_value = value
        elif isinstance(value, bool):
            target.bool_value = value
        elif isinstance(value, int):
            target.int_value = value
        elif isinstance(value, float):
            target.double_value = value
        else:
            target.string_value = str(value)


def encode(traces: Sequence[Trace]) -> bytes:
    """One ExportTraceServiceRequest (serialized protobuf) holding the traces, grouped by resource and scope."""
    request = ExportTraceServiceRequest()
    scopes: dict[tuple[tuple[tuple[str, str], ...], str], ScopeSpans] = {}
    resources: dict[tuple[tuple[str, str], ...], Any] = {}
    for trace in traces:
        resource_spans = resources.get(trace.resource)
        if resource_spans is None:
            resource_spans = resources[trace.resource] = request.resource_spans.add()
            for k, v in trace.resource:
                resource_spans.resource.attributes.add(key=k).value.string_value = v
        for data in trace.spans:
            key = (trace.resource, data.scope)
            scope_spans = scopes.get(key)
            if scope_spans is None:
                scope_spans = scopes[key] = resource_spans.scope_spans.add()
                scope_spans.scope.name = data.scope
            span = scope_spans.spans.add(
                trace_id=data.trace_id, span_id=data.span_id, parent_span_id=data.parent_span_id, name=data.name,
                kind=data.kind, start_time_unix_nano=data.start_ns, end_time_unix_nano=data.end_ns,
            )
            _set_attributes(span, data.attributes)
            if data.status:
                span.status.code = data.status  # type: ignore[assignment]
                span.status.message = data.status_message
    return request.SerializeToString()


@dataclass
class Totals:
    """What a run sent (for the summary line)."""

    spans: int = 0
    traces: int = 0
    llm_calls: int = 0
    runaways: int = 0
    requests: int = 0
    bytes: int = 0
    rejected: int = 0

    def add(self, item: Encoded, rejected: int = 0) -> None:
        self.spans += item.spans
        self.traces += item.traces
        self.llm_calls += item.llm_calls
        self.runaways += item.runaways
        self.requests += 1
        self.bytes += len(item.body)
        self.rejected += rejected


@dataclass(frozen=True, slots=True)
class Encoded:
    """One request body (gzip'd ExportTraceServiceRequest) and what it holds."""

    body: bytes
    spans: int
    traces: int
    llm_calls: int
    runaways: int


def encoded_batches(spans: int, days: float, seed: int, end: datetime, batch_spans: int = 512) -> Iterator[Encoded]:
    """The whole run as ready-to-send request bodies, generated lazily."""
    for batch in batches(generate(spans, days, seed, end), batch_spans):
        yield Encoded(
            body=gzip.compress(encode(batch), compresslevel=1),
            spans=sum(len(t.spans) for t in batch),
            traces=len(batch),
            llm_calls=sum(t.llm_calls for t in batch),
            runaways=sum(t.runaway for t in batch),
        )


def produce(out: Any, spans: int, days: float, seed: int, end: datetime, batch_spans: int) -> None:
    """Entry point of the generator subprocess: put every :class:`Encoded` on ``out``, then None.

    Generating and encoding in a process of its own keeps it off the GIL of the process
    that serves and sends. A failure is put on the queue as its text.
    """
    try:
        for item in encoded_batches(spans, days, seed, end, batch_spans):
            out.put(item)
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        out.put(f"{type(exc).__name__}: {exc}")
        return
    out.put(None)
