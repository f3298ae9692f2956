"""Dashboard and analytics-API benchmark over N spans in embedded mode (issue 4, item 5).

Generates ``--spans`` realistic spans (traces of a root span, 1–4 LLM calls and maybe a
tool call, 30 days, 6 models, 6 task types, 3 tiers, 5,000 users, thinking budgets,
quality on 40% of calls and scores on 10% of traces, escalations, runaways, ~1% re-sent
duplicates with ``counted = 0``, 0.5% unpriced calls) with numpy/pyarrow and inserts
them straight into ClickHouse with :func:`thinkmeter.clickhouse.insert` in time-ordered
chunks of ``--chunk`` rows (bypassing HTTP); the materialized views fill the rollups.

Then, ``--runs`` times each, over the 30 days: every data function of
``dashboards.queries`` ("queries"), the data each page fetches as its view does
(``dashboards.page_fetch`` for Finance and Engineering, ``dashboards.page_data`` calls for
the others: "pages"), and
``GET /api/v1/usage?group_by=task_type,tier`` (the DRF view called with a project key,
URL routing aside). Each is first run :data:`WARM_UP` times unmeasured, as a running
server would have (connections open, marks loaded, ClickHouse's compiled expressions);
nothing is remembered between runs otherwise. Prints one JSON object: wall-clock
p50/p95/max and the median CPU time per run (the machine may be shared: CPU time leaves
out waiting for a core), the machine's load average and the targets (page p95 ≤ 500 ms,
usage p95 ≤ 300 ms).

    .venv/bin/python bench/dashboards.py --spans 10000000 --store /tmp/bench-store

The store directory holds its own chdb data and SQLite database (CLICKHOUSE_URL and
DATABASE_URL are set before Django starts); an existing store with the same span count
is reused (``--regenerate`` forces a fresh one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAYS = 30
WARM_UP = 3  # ClickHouse compiles a statement's expressions on its third run (min_count_to_compile_*)
MODELS = [  # provider, model, tier, reasoning model, $/M input, cache read, cache write, output
    ("openai", "gpt-4.1-mini", 1, False, 0.40, 0.10, 0.0, 1.60),
    ("google", "gemini-2.5-flash", 1, True, 0.30, 0.075, 0.0, 2.50),
    ("openai", "o4-mini", 2, True, 1.10, 0.275, 0.0, 4.40),
    ("anthropic", "claude-sonnet-4-5", 2, True, 3.00, 0.30, 3.75, 15.00),
    ("openai", "o3", 3, True, 2.00, 0.50, 0.0, 8.00),
    ("google", "gemini-2.5-pro", 3, True, 1.25, 0.31, 0.0, 10.00),
]
UNPRICED_MODEL = ("acme", "acme-finetune-v2", 2)
TASKS = ["classification", "extraction", "summarization", "customer_support", "code_generation", "math_reasoning"]
TASK_DIFFICULTY = np.array([0.2, 0.3, 0.4, 0.5, 0.8, 1.0])
SERVICES = ["support-bot", "code-assistant", "batch-summarizer"]
BUDGETS = np.array([0, 1024, 2048, 4096, 8192, 16384])
USERS = 5000
SESSIONS = 300_000
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    """n random lowercase hex strings of 2*nbytes characters, built without Python strings."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    chars = np.empty((n, nbytes * 2), dtype=np.uint8)
    chars[:, 0::2] = HEX[raw >> 4]
    chars[:, 1::2] = HEX[raw & 15]
    offsets = (np.arange(n + 1, dtype=np.int32) * (nbytes * 2)).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars.tobytes())])


def labelled(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Strings ``prefix<number>`` for an integer array."""
    return pc.binary_join_element_wise(pa.array(np.full(len(numbers), prefix, dtype=object), pa.string()),
                                       pc.cast(pa.array(numbers), pa.string()), "")


def nanos_decimal(nanos: np.ndarray) -> pa.Array:
    from ingest.rows import nanos_to_decimal_array

    return nanos_to_decimal_array(nanos.astype(np.int64))  # type: ignore[arg-type]


def chunk_table(rng: np.random.Generator, project_id: int, traces: int, t0: float, t1: float) -> tuple[pa.Table, pa.Table]:
    """One time slice [t0, t1) (unix seconds) of ``traces`` traces: the spans and their scores."""
    n_llm = rng.choice([1, 2, 3, 4], traces, p=[0.35, 0.35, 0.2, 0.1])
    n_tool = (rng.random(traces) < 0.5).astype(np.int64)
    per = 1 + n_llm + n_tool
    n = int(per.sum())
    trace_of = np.repeat(np.arange(traces), per)
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    pos = np.arange(n) - first[trace_of]
    is_root = pos == 0
    is_llm = (pos >= 1) & (pos <= n_llm[trace_of])
    is_tool = ~is_root & ~is_llm

    trace_ids = hex_ids(rng, traces, 16).take(pa.array(trace_of))
    span_ids = hex_ids(rng, n, 8)
    parents = pc.if_else(pa.array(is_root), pa.scalar("", pa.string()), span_ids.take(pa.array(first[trace_of])))

    trace_start_ns = (np.sort(rng.uniform(t0, t1, traces)) * 1e9).astype(np.int64)
    task = rng.integers(0, len(TASKS), traces)
    service = rng.integers(0, len(SERVICES), traces)
    user = np.minimum(rng.zipf(1.3, traces), USERS) - 1
    session = rng.integers(0, SESSIONS, traces)
    budget = BUDGETS[rng.integers(0, len(BUDGETS), traces)]
    escalated = (n_llm >= 2) & (rng.random(traces) < 0.3)

    # models: by task difficulty; escalated requests climb a tier per attempt
    base_model = np.clip((TASK_DIFFICULTY[task] * 4 + rng.normal(0, 1, traces)).astype(int), 0, len(MODELS) - 1)
    attempt = np.maximum(pos - 1, 0)
    model_idx = np.where(escalated[trace_of], np.minimum(base_model[trace_of] + 2 * attempt, len(MODELS) - 1),
                         base_model[trace_of])
    unpriced = is_llm & (rng.random(n) < 0.005)
    providers = np.array([m[0] for m in MODELS] + [UNPRICED_MODEL[0]], dtype=object)
    models = np.array([m[1] for m in MODELS] + [UNPRICED_MODEL[1]], dtype=object)
    tiers = np.array([m[2] for m in MODELS] + [UNPRICED_MODEL[2]], dtype=np.uint8)
    thinks = np.array([m[3] for m in MODELS] + [True])
    rates = np.array([m[4:] for m in MODELS] + [(0.0, 0.0, 0.0, 0.0)]) * 1000.0  # nano-dollars per token
    midx = np.where(unpriced, len(MODELS), model_idx)

    offset_ns = np.where(is_root, 0, (pos * 1.2e9 + rng.uniform(0, 2e8, n))).astype(np.int64)
    start_ns = trace_start_ns[trace_of] + offset_ns
    llm_ms = rng.lognormal(7.3, 0.6, n)
    duration_ns = np.where(is_llm, llm_ms * 1e6, np.where(is_tool, rng.uniform(5e6, 8e7, n), 0)).astype(np.int64)
    root_duration = np.zeros(traces, dtype=np.int64)
    np.maximum.at(root_duration, trace_of, offset_ns + duration_ns)
    duration_ns = np.where(is_root, root_duration[trace_of] + 5_000_000, duration_ns).astype(np.uint64)
    ttft = np.where(is_llm, llm_ms * rng.uniform(0.1, 0.6, n), 0).astype(np.float32)

    llm = is_llm
    input_tokens = np.where(llm, rng.lognormal(7.3, 0.9, n), 0).astype(np.int64) + llm
    cache_read = (input_tokens * np.where(rng.random(n) < 0.4, rng.uniform(0.2, 0.9, n), 0)).astype(np.int64)
    cache_write = np.where((midx == 3) & llm, (input_tokens - cache_read) * 0.1, 0).astype(np.int64)
    difficulty = TASK_DIFFICULTY[task][trace_of]
    b = budget[trace_of]
    wanted = rng.lognormal(np.log(400 + 6000 * difficulty), 0.8, n)
    runaway = llm & (rng.random(n) < 0.001)
    reasoning = np.where(b > 0, np.minimum(wanted, b * 1.05), wanted)
    reasoning = np.where(runaway, wanted * 8, reasoning)
    reasoning = np.where(llm & thinks[midx], reasoning, 0).astype(np.int64)
    visible = np.where(llm, rng.lognormal(5.7, 0.7, n), 0).astype(np.int64)
    output_tokens = reasoning + visible
    r = rates[midx]
    c_input = ((input_tokens - cache_read - cache_write) * r[:, 0]).astype(np.int64)
    c_read = (cache_read * r[:, 1]).astype(np.int64)
    c_write = (cache_write * r[:, 2]).astype(np.int64)
    c_out = (visible * r[:, 3]).astype(np.int64)
    c_reason = (reasoning * r[:, 3]).astype(np.int64)
    c_total = c_input + c_read + c_write + c_out + c_reason

    effective = np.where(b > 0, np.minimum(reasoning, b), reasoning)
    quality = np.clip(0.55 + 0.4 * (1 - np.exp(-effective / (1500 + 5000 * difficulty))) - 0.15 * difficulty
                      + rng.normal(0, 0.08, n), 0, 1).astype(np.float32)
    has_quality = llm & (rng.random(n) < 0.4)
    status = np.where(rng.random(n) < 0.01, "error", "ok")

    attempt_request = np.where(escalated[trace_of], 0, attempt)
    request_ids = pc.binary_join_element_wise(trace_ids, pc.cast(pa.array(attempt_request), pa.string()), "-")
    request_ids = pc.if_else(pa.array(llm), request_ids, pa.scalar("", pa.string()))

    model_names = pa.array(np.where(llm, models[midx], ""), pa.string())
    provider_names = pa.array(np.where(llm, providers[midx], ""), pa.string())
    names = pa.array(np.where(is_root, "handle_request", np.where(is_tool, "tool.search", "chat")), pa.string())
    names = pc.if_else(pa.array(llm), pc.binary_join_element_wise(names, model_names, " "), names)
    service_names = pa.array(np.array(SERVICES, dtype=object)[service][trace_of], pa.string())
    environment = pa.array(np.where(rng.random(n) < 0.9, "production", "staging"), pa.string())
    task_names = pa.array(np.array(TASKS, dtype=object)[task][trace_of], pa.string())
    users = labelled("user-", user[trace_of])
    sessions = labelled("sess-", session[trace_of])

    keys = pa.array(np.tile(np.array(["gen_ai.system", "gen_ai.operation.name", "http.route"], dtype=object), n),
                    pa.string())
    values = pa.array(np.column_stack([np.where(llm, providers[midx], ""), np.where(llm, "chat", ""),
                                       np.full(n, "/v1/answer", dtype=object)]).ravel(), pa.string())
    attributes = pa.MapArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * 3), keys, values)
    resource = pa.MapArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)),
                                       pa.array(np.full(n, "service.name", dtype=object), pa.string()), service_names)
    empty = pa.array(np.full(n, "", dtype=object), pa.string())
    zeros_u32 = pa.array(np.zeros(n, dtype=np.uint32))
    columns: dict[str, Any] = {
        "project_id": pa.array(np.full(n, project_id, dtype=np.uint32)),
        "trace_id": trace_ids, "span_id": span_ids, "parent_span_id": parents, "name": names,
        "kind": pa.array(np.where(is_root, "server", np.where(llm, "client", "internal")), pa.string()),
        "start_time": pa.array(start_ns, pa.timestamp("ns", tz="UTC")), "duration_ns": pa.array(duration_ns),
        "status": pa.array(status, pa.string()), "status_message": empty, "service": service_names,
        "environment": environment, "instrumentation": pa.array(np.full(n, "bench", dtype=object), pa.string()),
        "provider": provider_names, "model": model_names, "request_model": model_names,
        "operation": pa.array(np.where(llm, "chat", ""), pa.string()),
        "task_type": pc.if_else(pa.array(llm), task_names, pa.scalar("", pa.string())),
        "tier": pa.array(np.where(llm, tiers[midx], 0).astype(np.uint8)),
        "user_id": users, "session_id": sessions, "request_id": request_ids, "response_id": empty,
        "thinking_budget": pa.array(np.where(llm, b, 0).astype(np.uint32)),
        "reasoning_effort": empty, "ttft_ms": pa.array(ttft),
        "input_tokens": pa.array(input_tokens.astype(np.uint64)),
        "cache_read_tokens": pa.array(cache_read.astype(np.uint64)),
        "cache_write_tokens": pa.array(cache_write.astype(np.uint64)),
        "output_tokens": pa.array(output_tokens.astype(np.uint64)),
        "reasoning_tokens": pa.array(reasoning.astype(np.uint64)),
        "reasoning_estimated": pa.array(np.zeros(n, dtype=bool)), "has_usage": pa.array(llm),
        "counted": pa.array(llm.astype(np.uint8)),
        "cost_input": nanos_decimal(c_input), "cost_cache_read": nanos_decimal(c_read),
        "cost_cache_write": nanos_decimal(c_write), "cost_output_visible": nanos_decimal(c_out),
        "cost_reasoning": nanos_decimal(c_reason), "cost_total": nanos_decimal(c_total),
        "price_id": zeros_u32, "priced": pa.array(~unpriced),
        "quality": pa.array(quality, mask=~has_quality), "runaway": pa.array(runaway.astype(np.uint8)),
        "prompt_text": empty, "completion_text": empty, "attributes": attributes, "resource_attributes": resource,
    }
    table = pa.table(columns)
    # ~1% of LLM spans re-sent: stored again with counted = 0 (the trace view shows them once)
    resent = np.flatnonzero(llm & (rng.random(n) < 0.01))
    dupes = table.take(pa.array(resent)).set_column(
        table.schema.get_field_index("counted"), "counted", pa.array(np.zeros(len(resent), dtype=np.uint8)))
    table = pa.concat_tables([table, dupes])
    scored = np.flatnonzero(rng.random(traces) < 0.1)
    scores = pa.table({
        "project_id": pa.array(np.full(len(scored), project_id, dtype=np.uint32)),
        "trace_id": trace_ids.take(pa.array(first[scored])),
        "span_id": pa.array(np.full(len(scored), "", dtype=object), pa.string()),
        "name": pa.array(np.full(len(scored), "quality", dtype=object), pa.string()),
        "value": pa.array(rng.uniform(0.3, 1.0, len(scored))),
        "source": pa.array(np.full(len(scored), "verifier", dtype=object), pa.string()),
        "comment": pa.array(np.full(len(scored), "", dtype=object), pa.string()),
        "created_at": pa.array((trace_start_ns[scored] // 1_000_000 + 60_000), pa.timestamp("ms", tz="UTC")),
    })
    return table, scores


def generate(project_id: int, spans: int, chunk: int, now: datetime, seed: int = 7) -> dict[str, float]:
    """Insert ``spans`` spans (approximately, ±1%) over the DAYS days before ``now``, oldest first."""
    from thinkmeter import clickhouse

    rng = np.random.default_rng(seed)
    spans_per_trace = 1 + 2.05 + 0.5 + 0.0205  # root + mean LLM calls + tool + re-sent
    traces_total = int(spans / spans_per_trace)
    chunks = max(1, round(spans / chunk))
    end = now.timestamp()
    start = end - DAYS * 86400
    stored = 0
    started = time.perf_counter()
    for i in range(chunks):
        t0 = start + (end - start) * i / chunks
        t1 = start + (end - start) * (i + 1) / chunks
        table, scores = chunk_table(rng, project_id, traces_total // chunks, t0, t1)
        stored += clickhouse.insert("spans", table, tag="bench.generate", project=project_id)
        clickhouse.insert("scores", scores, tag="bench.generate", project=project_id)
        print(f"chunk {i + 1}/{chunks}: {stored:,} spans", file=sys.stderr)
    return {"spans": stored, "insert_s": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------- measuring

def setup_django(store: Path) -> None:
    """Point the settings at the bench store (before Django reads them) and migrate both databases."""
    os.environ["CLICKHOUSE_URL"] = f"chdb://{store / 'clickhouse'}"
    os.environ["DATABASE_URL"] = f"sqlite:///{store / 'django.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
    os.environ.setdefault("THINKMETER_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from thinkmeter.clickhouse import schema

    schema.migrate(schema.context_from_settings())


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    """Wall-clock p50/p95/max, and the median CPU time the process (chdb's threads included)
    spent per run: on a machine shared with other work the wall clock includes waiting for
    a core, the CPU time does not."""
    for _ in range(WARM_UP):  # a server's steady state: connections open, marks loaded, expressions compiled
        fn()
    samples, cpu = [], []
    for _ in range(runs):  # each run is a fresh page view: the dashboards keep nothing between views
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return {"p50_ms": round(float(np.percentile(samples, 50)), 1), "p95_ms": round(float(np.percentile(samples, 95)), 1),
            "max_ms": round(max(samples), 1), "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 1)}


def query_functions(ids: list[int], start: datetime, end: datetime) -> dict[str, Callable[[], Any]]:
    """Every data function of dashboards.queries, as a 30-day view calls it."""
    from dashboards import queries as q

    trace_search = q.TraceSearch(ids, start, end)
    first_trace: dict[str, str] = {}

    def search() -> Any:
        found = q.search_traces(trace_search)
        first_trace["id"] = found["traces"][0]["trace_id"]
        return found

    return {
        "spend_over_time": lambda: q.spend_over_time(ids, start, end, "day"),
        "spend_by_model": lambda: q.spend_by(ids, start, end, "model"),
        "spend_by_project_tier_model_task_type": lambda: q.usage_frame(q.UsageQuery(
            ids, start, end, group_by=["project", "tier", "model", "task_type"], limit=q.MAX_LIMIT)),
        "mtd_spend_and_daily": lambda: q.mtd_spend_and_daily(ids, now=end),
        "reasoning_share": lambda: q.reasoning_share(ids, start, end),
        "top_users": lambda: q.top_users(ids, start, end),
        "reasoning_distribution": lambda: q.reasoning_distribution(ids, start, end),
        "latency_by_tier": lambda: q.latency_by_tier(ids, start, end),
        "escalation_rate_by_task_type": lambda: q.escalation_rate_by_task_type(ids, start, end),
        "quality_vs_reasoning": lambda: q.quality_vs_reasoning(ids, start, end),
        "budget_vs_used": lambda: q.budget_vs_used(ids, start, end),
        "usage_totals": lambda: q.usage_totals(ids, start, end),
        "call_sample": lambda: q.call_sample(ids, start, end),
        "runaway_traces": lambda: q.runaway_traces(ids, start, end),
        "search_traces": search,
        "search_traces_filtered": lambda: q.search_traces(q.TraceSearch(
            ids, start, end, filters={"model": ["o3"]}, min_reasoning_tokens=5000)),
        "trace_detail": lambda: q.trace_detail(ids, first_trace["id"], include_text=True),
        "unpriced_models": lambda: q.unpriced_models(ids, start, end),
        "budget_stats_7d": lambda: q.budget_stats(ids, 7, now=end),
    }


def page_calls(ids: list[int], start: datetime, end: datetime) -> dict[str, list[Callable[[], Any]]]:
    """The data calls each page makes (dashboards.views → dashboards.page_fetch / page_data) for a
    30-day view, as a person with every role sees it (Finance and Engineering fetch theirs side by side)."""
    from dashboards import page_data as pd_
    from dashboards import page_fetch
    from dashboards.page_filters import PageFilters

    pf = PageFilters(range_key="custom", start=start, end=end)
    names, slugs = {"bench": "Bench"}, {pk: "bench" for pk in ids}
    first: dict[str, str] = {}

    def traces_page() -> Any:
        rows, _ = pd_.search_traces(ids, pf)
        first["id"] = rows[0]["trace_id"]
        return rows

    return {
        "finance": [lambda: page_fetch.finance_page(ids, pf, end, names=names, slugs=slugs, user_ids=ids)],
        "engineering": [lambda: page_fetch.engineering_page(ids, pf, slugs=slugs, trace_ids=ids)],
        "traces": [lambda: pd_.filter_options(ids, pf), traces_page],
        "trace": [lambda: pd_.trace(ids, first["id"], include_text=True)],
        "prices": [lambda: pd_.unpriced_models(ids, now=end)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/bench-store"))
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated parts to measure: queries, pages, usage_api")
    args = parser.parse_args()

    store: Path = args.store.resolve()
    marker = store / "bench.json"
    info = json.loads(marker.read_text()) if marker.exists() else {}
    if args.regenerate or info.get("requested_spans") != args.spans:
        shutil.rmtree(store, ignore_errors=True)
        info = {}
    store.mkdir(parents=True, exist_ok=True)
    setup_django(store)

    from rest_framework.test import APIRequestFactory

    from dashboards.api import UsageView
    from thinkmeter import clickhouse
    from thinkmeter.models import SCOPES, ApiKey, Organization, Project

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    project, _ = Project.objects.get_or_create(slug="bench", defaults={"organization": org, "name": "Bench"})
    if not info:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        generated = generate(project.pk, args.spans, args.chunk, now)
        info = {"requested_spans": args.spans, "now": now.isoformat(), **generated}
        marker.write_text(json.dumps(info))
    end = datetime.fromisoformat(info["now"])
    start = end - timedelta(days=DAYS)
    ids = [project.pk]
    counts = clickhouse.execute(
        "SELECT (SELECT count() FROM spans WHERE project_id IN {project_ids:Array(UInt32)}) AS spans, "
        "(SELECT count() FROM usage_hourly WHERE project_id IN {project_ids:Array(UInt32)}) AS hourly_rows, "
        "(SELECT count() FROM usage_daily_users WHERE project_id IN {project_ids:Array(UInt32)}) AS user_rows",
        tag="bench.counts", projects=ids)[0]

    _, secret = ApiKey.issue(project, SCOPES, name="bench")
    factory = APIRequestFactory()
    view = UsageView.as_view()
    params = {"group_by": "task_type,tier", "from": start.isoformat(), "to": end.isoformat()}

    def usage_api() -> None:
        # the view itself (DRF auth, parsing, query, JSON rendering), without the project's URLconf
        response = view(factory.get("/api/v1/usage", params, HTTP_AUTHORIZATION=f"Bearer {secret}"))
        response.render()
        assert response.status_code == 200, response.content[:500]

    only = {p for p in args.only.split(",") if p}
    results: dict[str, Any] = {}
    if not only or "queries" in only:
        per_query = {}
        for name, fn in query_functions(ids, start, end).items():
            per_query[name] = timed(fn, args.runs)
            print(f"queries.{name}: {per_query[name]}", file=sys.stderr)
        results["queries"] = per_query
    if not only or "pages" in only:
        pages = {}
        for page, calls in page_calls(ids, start, end).items():
            pages[page] = timed(lambda calls=calls: [call() for call in calls], args.runs)  # type: ignore[misc]
            print(f"page.{page}: {pages[page]}", file=sys.stderr)
        results["pages"] = pages
    if not only or "usage_api" in only:
        results["usage_api_group_by_task_type_tier_30d"] = timed(usage_api, args.runs)
        print(f"usage_api: {results['usage_api_group_by_task_type_tier_30d']}", file=sys.stderr)
    load = os.getloadavg()
    print(json.dumps({
        "store": str(store), "spans": counts["spans"], "rollup_rows": {"usage_hourly": counts["hourly_rows"],
                                                                       "usage_daily_users": counts["user_rows"]},
        "generated": info, "runs": args.runs, "cpu_count": os.cpu_count(), "load_avg_1m": round(load[0], 2),
        "targets": {"page_query_p95_ms": 500, "usage_api_p95_ms": 300},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
