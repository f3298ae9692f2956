"""``manage.py seed_demo`` and the demo traffic model (ingest/demo.py).

The command tests send real OTLP/HTTP requests: to the in-process waitress server the
command starts itself, and to pytest-django's live server with ``--url``. They use
transactional DB access because the servers' worker threads have their own connections.
What they check is read back from the spans table, after the real ingest pipeline.
"""

from __future__ import annotations

import gzip
import itertools
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO
from types import ModuleType
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest import demo
from ingest.management.commands import seed_demo
from thinkmeter.clickhouse import PROJECT_PARAM
from thinkmeter.models import ApiKey, Project

# The command tests: the servers' worker threads need committed rows.
transactional = pytest.mark.django_db(transaction=True)

SIX_TASKS = {"classification", "extraction", "summarization", "customer_support", "code_generation", "math_reasoning"}
END = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)


def rows(ch: ModuleType, project: Project, sql: str, **params: Any) -> list[dict[str, Any]]:
    return ch.execute(sql.replace("$P", PROJECT_PARAM), params, tag="tests.seed_demo", projects=[project.pk])


def last_monday_noon() -> datetime:
    """The latest Monday 12:00 UTC before now: a recent end whose week looks the same every week.

    The demo's traffic depends on the seed and on where its end falls in the week (hour
    and weekday weights); with ``end=now`` a small sample's statistics changed with the
    time the test ran (one run in many lacked a clear runaway among 2,000 spans).
    """
    now = datetime.now(UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=now.weekday())
    return noon if noon <= now else noon - timedelta(days=7)


def seed(**options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@transactional
def test_seed_demo_stores_realistic_traffic_once(ch: ModuleType) -> None:
    started = time.perf_counter()
    end = last_monday_noon()
    out, err = seed(spans=2000, days=7, if_empty=True, end=end)
    elapsed = time.perf_counter() - started

    project = Project.objects.get(slug="demo")
    assert project.organization.slug == "demo"
    summary = out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("seed_demo: sent "), out
    assert "spans/s" in summary[0] and "cost $" in summary[0]
    assert "100%" in err  # progress went to stderr
    # The temporary ingest key the command issued is revoked afterwards.
    temporary = ApiKey.objects.get(project=project, name="seed_demo (temporary)")
    assert temporary.revoked_at is not None

    total = rows(ch, project, "SELECT count() AS n FROM spans WHERE project_id IN $P")[0]["n"]
    assert 2000 <= total <= 2010, total  # whole traces: the last one may go a few spans over
    trace_starts = rows(ch, project, "SELECT min(start_time) AS first, max(start_time) AS last FROM spans "
                                     "WHERE project_id IN $P AND parent_span_id = ''")[0]
    assert end - timedelta(days=7) <= trace_starts["first"] and trace_starts["last"] <= end  # within --days of --end
    sent = int(summary[0].split("sent ")[1].split(" spans")[0].replace(",", ""))
    assert sent == total

    calls = rows(ch, project, """
        SELECT task_type, tier, model, priced, cost_total, input_tokens, reasoning_tokens
        FROM spans WHERE project_id IN $P AND counted = 1""")
    assert len(calls) > 300
    assert SIX_TASKS <= {c["task_type"] for c in calls}
    assert {1, 2, 3} <= {c["tier"] for c in calls}
    # Every catalog model was priced (cost > 0); the one unknown model is listed as unpriced.
    priced = [c for c in calls if c["priced"]]
    assert priced and all(c["cost_total"] > 0 for c in priced), [c["model"] for c in priced if not c["cost_total"]]
    assert {c["model"] for c in calls if not c["priced"]} == {"acme-internal-llm"}
    assert {"o3", "claude-sonnet-4-5", "gemini-2.5-flash"} <= {c["model"].split("-2025")[0] for c in calls}

    # Escalation chains: two LLM attempts of one request inside one trace, numbered 1 and 2.
    chains = rows(ch, project, """
        SELECT trace_id, request_id, groupArray(toUInt32OrZero(attributes['thinkmeter.attempt'])) AS attempts,
               groupArray(tier) AS tiers
        FROM spans WHERE project_id IN $P AND counted = 1
        GROUP BY trace_id, request_id HAVING count() >= 2""")
    assert len(chains) >= 5
    for chain in chains:
        assert chain["request_id"]
        assert {1, 2} <= set(chain["attempts"]), chain
    # The retry went to a stronger tier (untagged spans take the catalog's tier, which may tie).
    assert sum(max(c["tiers"]) > min(c["tiers"]) for c in chains) >= 0.8 * len(chains)
    # The final attempt carries the request's quality.
    quality = rows(ch, project, """
        SELECT count() AS n, min(quality) AS low, max(quality) AS high
        FROM spans WHERE project_id IN $P AND counted = 1 AND quality IS NOT NULL""")[0]
    assert quality["n"] > 200 and 0 <= quality["low"] <= quality["high"] <= 1

    # Runaways: some task type's largest thinking is more than 5x its 95th percentile, and more
    # than any normal call may think (so it is not just the tail of a large budget).
    classes = rows(ch, project, """
        SELECT task_type, max(reasoning_tokens) AS top, quantileExact(0.95)(reasoning_tokens) AS p95
        FROM spans WHERE project_id IN $P AND counted = 1 AND task_type != 'unclassified'
        GROUP BY task_type""")
    assert any(0 < 5 * c["p95"] < c["top"] and c["top"] > demo.NORMAL_REASONING_MAX for c in classes), classes

    # Vercel AI SDK: the ai.generateText/ai.streamText parent holds totals but is not counted;
    # its doGenerate/doStream child is the one counted call.
    vercel = rows(ch, project, """
        SELECT name, has_usage, counted, parent_span_id, span_id, trace_id, output_tokens
        FROM spans WHERE project_id IN $P AND instrumentation = 'ai' AND status != 'error'""")
    parents = {(v["trace_id"], v["span_id"]): v for v in vercel if v["name"] in ("ai.generateText", "ai.streamText")}
    children = [v for v in vercel if v["name"].endswith((".doGenerate", ".doStream"))]
    assert parents and len(children) == len(parents)
    assert all(p["has_usage"] and not p["counted"] for p in parents.values())
    for child in children:
        parent = parents[(child["trace_id"], child["parent_span_id"])]
        assert child["counted"] == 1 and child["output_tokens"] == parent["output_tokens"]

    # Anthropic's raw usage shape (input without cache) is stored with cache inside input.
    raw = rows(ch, project, """
        SELECT input_tokens, cache_read_tokens, cache_write_tokens,
               toUInt64(attributes['gen_ai.usage.input_tokens']) AS reported
        FROM spans WHERE project_id IN $P AND name = 'anthropic.messages.create' AND has_usage
          AND cache_read_tokens + cache_write_tokens > 0""")
    assert raw
    assert all(r["input_tokens"] == r["reported"] + r["cache_read_tokens"] + r["cache_write_tokens"] for r in raw)

    # Root spans per app, users and sessions, business hours busier than the night.
    roots = rows(ch, project, """
        SELECT service, environment, user_id, session_id, toHour(start_time) AS hour
        FROM spans WHERE project_id IN $P AND name = 'handle_request' AND parent_span_id = ''""")
    assert {r["service"] for r in roots} == {"support-bot", "code-assistant", "analytics-pipeline"}
    assert {r["environment"] for r in roots} == {"production", "staging"}
    users = {r["user_id"] for r in roots}
    assert 30 <= len(users) <= 40
    assert len({r["session_id"] for r in roots}) > len(users)
    hours = Counter(r["hour"] for r in roots)
    assert sum(hours[h] for h in range(12, 18)) > 2 * sum(hours[h] for h in range(0, 6)), hours
    span_range = rows(ch, project, """
        SELECT min(start_time) AS first, max(start_time + toIntervalNanosecond(duration_ns)) AS last
        FROM spans WHERE project_id IN $P""")[0]
    now = datetime.now(UTC)
    assert (end - span_range["first"].replace(tzinfo=UTC)).days <= 7
    assert span_range["last"].replace(tzinfo=UTC) <= now

    # --if-empty the second time: nothing is sent.
    out, _ = seed(spans=2000, days=7, if_empty=True)
    assert "nothing sent" in out
    assert rows(ch, project, "SELECT count() AS n FROM spans WHERE project_id IN $P")[0]["n"] == total
    assert elapsed < 120


@transactional
def test_seed_demo_posts_to_a_running_server_with_url(ch: ModuleType, live_server: Any, project: Project,
                                                      project_key: str) -> None:
    out, _ = seed(url=live_server.url, key=project_key, spans=300, days=1, seed=7, inline=True, if_empty=True)
    assert out.startswith("seed_demo: sent ")
    stored = rows(ch, project, "SELECT count() AS n, countIf(counted = 1) AS calls FROM spans WHERE project_id IN $P")
    assert 300 <= stored[0]["n"] <= 310 and stored[0]["calls"] > 40
    assert not Project.objects.filter(slug="demo").exists()  # --url never creates the local demo project
    out, _ = seed(url=live_server.url, key=project_key, spans=300, days=1, if_empty=True)
    assert "nothing sent" in out


@transactional
def test_seed_demo_refuses_bad_arguments(project: Project, project_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CommandError, match="--key is required with --url"):
        seed(url="http://127.0.0.1:9", spans=10)
    with pytest.raises(CommandError, match="not a valid, unrevoked API key"):
        seed(key="tm_not-a-real-key", spans=10)
    with pytest.raises(CommandError, match="--spans must be at least 1"):
        seed(spans=0)
    with pytest.raises(CommandError, match="not an ISO 8601 time"):
        call_command("seed_demo", "--end=yesterday", stdout=StringIO(), stderr=StringIO())
    # A server that is not there: the command gives up with the reason, it does not hang.
    monkeypatch.setattr(seed_demo, "MAX_TRIES", 2)
    with pytest.raises(CommandError, match="kept failing"):
        seed(url="http://127.0.0.1:9", key=project_key, spans=10, inline=True)


@transactional
def test_seed_demo_stops_on_a_key_the_server_refuses(ch: ModuleType, live_server: Any, project: Project) -> None:
    key, secret = ApiKey.issue(project, scopes=("read",), name="no ingest")
    with pytest.raises(CommandError, match="403.*ingest scope"):
        seed(url=live_server.url, key=secret, spans=50, days=1, inline=True)


def test_in_process_server_stops_when_its_wake_up_pipe_is_gone() -> None:
    # Once in a full test run the server's wake-up pipe was already closed when seed_demo
    # stopped it, and the command failed after every span had been stored.
    server = seed_demo.InProcessServer(threads=2)
    for fd in server._server.trigger._fds:
        os.close(fd)
    server.stop()
    server._thread.join(timeout=15)
    assert not server._thread.is_alive()
    assert not server._server._map  # every channel closed


# ---- the traffic model (pure, no database) -------------------------------------------------------------


def _traces(spans: int, seed: int = 3, days: float = 14) -> list[demo.Trace]:
    return list(demo.generate(spans, days, seed, END))


def test_generation_is_deterministic_for_a_seed_and_end() -> None:
    first = [demo.encode(b) for b in demo.batches(demo.generate(1500, 7, 11, END))]
    again = [demo.encode(b) for b in demo.batches(demo.generate(1500, 7, 11, END))]
    assert first == again
    other_seed = [demo.encode(b) for b in demo.batches(demo.generate(1500, 7, 12, END))]
    assert other_seed != first
    # Another end time: new span identities, so a later run never collides with an earlier one.
    later = next(demo.generate(1500, 7, 11, datetime(2026, 3, 5, 15, 30, tzinfo=UTC)))
    assert later.spans[0].trace_id != next(demo.generate(1500, 7, 11, END)).spans[0].trace_id


def test_generation_streams_in_time_order_within_the_window() -> None:
    started = time.perf_counter()
    head = list(itertools.islice(demo.generate(1_000_000, 30, 1, END), 20))
    assert time.perf_counter() - started < 5  # a million spans are not built up front
    starts = [t.spans[0].start_ns for t in head]
    assert starts == sorted(starts)
    traces = _traces(3000)
    assert 3000 <= sum(len(t.spans) for t in traces) <= 3010
    low, high = (END.timestamp() - 14 * 86400) * 1e9, END.timestamp() * 1e9
    for trace in traces:
        for span in trace.spans:
            assert low <= span.start_ns <= span.end_ns <= high
        root = trace.spans[0]
        assert root.name == "handle_request" and root.parent_span_id == b""
        assert all(s.parent_span_id for s in trace.spans[1:])
    weekday = Counter(datetime.fromtimestamp(t.spans[0].start_ns / 1e9, UTC).weekday() for t in traces)
    assert (weekday[5] + weekday[6]) / 2 < 0.6 * sum(weekday[d] for d in range(5)) / 5, weekday


def test_traffic_mix_has_every_flavour_and_the_rare_cases() -> None:
    traces = _traces(8000)
    llm = [s for t in traces for s in t.spans if s.kind == demo.CLIENT]
    scopes = {s.scope for s in llm}
    assert {"ai", "support_bot.llm_wrapper", "openinference.instrumentation.openai",
            "opentelemetry.instrumentation.openai_v2", "opentelemetry.instrumentation.anthropic"} <= scopes
    keys = set().union(*(s.attributes for s in llm))
    for attribute in ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.prompt_tokens",
                      "traceloop.association.properties.task_type", "llm.token_count.prompt", "metadata",
                      "ai.usage.inputTokens", "gen_ai.request.reasoning_effort", "thinkmeter.thinking_budget",
                      "gen_ai.usage.cache_read.input_tokens", "thinkmeter.exploration", "thinkmeter.quality"):
        assert attribute in keys, attribute
    assert {s.attributes["thinkmeter.thinking_budget"] for s in llm} == {0, 4000, 10000}
    errors = [s for s in llm if s.status == demo.STATUS_ERROR]
    assert 0.003 < len(errors) / len(llm) < 0.03
    assert all(not any(k.endswith(("input_tokens", "prompt_tokens", "inputTokens", "token_count.prompt"))
                       for k in s.attributes) for s in errors)  # a failed call reports no usage
    unpriced = [s for s in llm if "acme-internal-llm" in s.attributes.values()]
    assert 0.005 < len(unpriced) / len(llm) < 0.02
    untagged = [t for t in traces
                if not any("task_type" in k or k == "metadata" and "task_type" in str(v)
                           for s in t.spans for k, v in s.attributes.items())]
    assert 0.02 < len(untagged) / len(traces) < 0.09
    explored = [t for t in traces if any("thinkmeter.exploration" in s.attributes for s in t.spans)]
    assert 0.02 < len(explored) / len(traces) < 0.07
    assert sum(t.runaway for t in traces) >= 3
    thinking = [s.attributes.get("gen_ai.usage.reasoning.output_tokens", 0) for s in llm]
    normal = [r for r, t in zip(thinking, (t for t in traces for s in t.spans if s.kind == demo.CLIENT),
                                strict=True) if not t.runaway]
    assert max(normal) <= demo.NORMAL_REASONING_MAX < max(thinking)
    p95 = demo.class_p95()
    assert set(p95) == set(demo.TASKS) and p95["math_reasoning"] > p95["classification"]


def test_encoded_batches_are_gzip_otlp_requests_of_whole_traces() -> None:
    items = list(demo.encoded_batches(2000, 3, 5, END, batch_spans=512))
    assert sum(i.spans for i in items) >= 2000
    trace_ids: set[bytes] = set()
    for item in items:
        request = ExportTraceServiceRequest.FromString(gzip.decompress(item.body))
        spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert len(spans) == item.spans <= 512
        ids = {s.trace_id for s in spans}
        assert len(ids) == item.traces and not ids & trace_ids  # a trace never spans two requests
        trace_ids |= ids
        services = {kv.value.string_value for rs in request.resource_spans for kv in rs.resource.attributes
                    if kv.key == "service.name"}
        assert services <= {"support-bot", "code-assistant", "analytics-pipeline"}
