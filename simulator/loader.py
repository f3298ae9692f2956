"""Read a project's LLM calls and quality scores from ClickHouse into the simulator's span rows.

Only what the simulator needs, in chunks of consecutive hours holding at most
``chunk_rows`` calls each (counted per hour first), as Arrow: memory stays bounded by the
compact Arrow columns of the window, never by a Python object per row. Every query is
scoped to the project and tagged.

- calls: the ``counted = 1`` spans (one per provider call, DESIGN.md §4) in the window,
  with the attempt number from ``thinkmeter.attempt`` (or the same key under
  ``traceloop.association.properties.*``, ``ai.telemetry.metadata.*`` or OpenInference's
  ``metadata`` JSON), attribute values the policy reads (``attr:<key>``) and, for keyword
  rules, whether the prompt contains one of the words (``kw:<words>``, matched in
  ClickHouse so prompt text never leaves it);
- scores: the latest ``quality`` score per trace and span of those traces.

Calls that carry no usage (failed calls) are not read: a request's latency is the sum of
its priced calls' durations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa

from simulator.engine.policies import keyword_column
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

WINDOW = "start_time >= {lo:DateTime64(6, 'UTC')} AND start_time < {hi:DateTime64(6, 'UTC')}"
HOURS_SQL = f"""
SELECT toStartOfHour(start_time) AS hour, count() AS calls
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND {WINDOW}
GROUP BY hour
ORDER BY hour
"""
BOUNDS_SQL = f"""
SELECT min(start_time) AS first, max(start_time) AS last, count() AS calls
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1
"""
ATTEMPT = """toUInt32OrZero(multiIf(
    attributes['thinkmeter.attempt'] != '', attributes['thinkmeter.attempt'],
    attributes['traceloop.association.properties.attempt'] != '', attributes['traceloop.association.properties.attempt'],
    attributes['ai.telemetry.metadata.attempt'] != '', attributes['ai.telemetry.metadata.attempt'],
    JSONExtractRaw(attributes['metadata'], 'attempt')))"""
CALLS_SQL = f"""
SELECT trace_id, span_id, request_id, {ATTEMPT} AS attempt,
       toUnixTimestamp64Nano(start_time) AS start_ns, toInt64(duration_ns) AS duration_ns,
       task_type, toInt64(tier) AS tier, toInt64(thinking_budget) AS thinking_budget, model,
       user_id, session_id, service, environment,
       toInt64(input_tokens) AS input_tokens, toInt64(cache_read_tokens) AS cache_read_tokens,
       toInt64(cache_write_tokens) AS cache_write_tokens, toInt64(output_tokens) AS output_tokens,
       toInt64(reasoning_tokens) AS reasoning_tokens,
       toFloat64(cost_input) AS cost_input, toFloat64(cost_cache_read) AS cost_cache_read,
       toFloat64(cost_cache_write) AS cost_cache_write, toFloat64(cost_output_visible) AS cost_output_visible,
       toFloat64(cost_reasoning) AS cost_reasoning, toFloat64(cost_total) AS cost_total,
       priced, toFloat64(quality) AS quality{{extra}}
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND {WINDOW}
"""
SCORES_SQL = f"""
SELECT trace_id, span_id, argMax(value, created_at) AS value, max(created_at) AS scored_at
FROM scores
WHERE project_id IN {PROJECT_PARAM} AND name = 'quality'
  AND trace_id IN (SELECT trace_id FROM spans WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND {WINDOW})
GROUP BY trace_id, span_id
"""
TIER_MODELS_SQL = f"""
SELECT toInt64(tier) AS tier, model, count() AS calls
FROM spans
WHERE project_id IN {PROJECT_PARAM} AND counted = 1 AND tier IN (1, 2, 3) AND model != '' AND {WINDOW}
GROUP BY tier, model
ORDER BY tier, calls DESC, model
"""

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    def params(self) -> dict[str, datetime]:
        return {"lo": self.start, "hi": self.end}


def data_window(project_id: int, start: datetime | None, end: datetime | None) -> Window | None:
    """The window to read: the given bounds, the rest filled from the stored data (None when there is none)."""
    if start is not None and end is not None:
        return Window(start, end)
    rows = clickhouse.execute(BOUNDS_SQL, tag="simulator.bounds", projects=[project_id])
    if not rows or not rows[0]["calls"]:
        return None
    first, last = (_utc(rows[0][key]) for key in ("first", "last"))
    return Window(start or first, end or last + timedelta(microseconds=1))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chunks(project_id: int, window: Window, chunk_rows: int) -> list[tuple[Window, int]]:
    """Consecutive time ranges covering ``window``, each of at most ``chunk_rows`` calls (an hour with
    more goes alone), with their call counts."""
    rows = clickhouse.execute(HOURS_SQL, window.params(), tag="simulator.chunks", projects=[project_id])
    out: list[tuple[Window, int]] = []
    lo, size = window.start, 0
    for row in rows:
        hour_start = max(_utc(row["hour"]), window.start)
        calls = int(row["calls"])
        if size and size + calls > chunk_rows:
            out.append((Window(lo, hour_start), size))
            lo, size = hour_start, 0
        size += calls
    if size:
        out.append((Window(lo, window.end), size))
    return out


def load_spans(project_id: int, window: Window, *, attributes: Iterable[str] = (),
               keyword_sets: Iterable[tuple[str, ...]] = (), chunk_rows: int = 500_000,
               progress: Progress | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(span rows, quality scores) of the project's calls in ``window`` (see the module docstring)."""
    report = progress or (lambda fraction, message: None)
    attrs = sorted(set(attributes))
    words = sorted(set(keyword_sets))
    extra = "".join(f", attributes[{{a{i}:String}}] AS a{i}" for i in range(len(attrs)))
    extra += "".join(f", multiSearchAnyCaseInsensitiveUTF8(prompt_text, {{k{i}:Array(String)}}) AS k{i}"
                     for i in range(len(words)))
    sql = CALLS_SQL.replace("{extra}", extra)
    params_extra: dict[str, object] = {f"a{i}": a for i, a in enumerate(attrs)}
    params_extra.update({f"k{i}": list(w) for i, w in enumerate(words)})

    parts = chunks(project_id, window, chunk_rows)
    total = sum(size for _, size in parts) or 1
    call_tables: list[pa.Table] = []
    score_tables: list[pa.Table] = []
    done = 0
    for piece, size in parts:
        params = {**piece.params(), **params_extra}
        call_tables.append(clickhouse.query_arrow(sql, params, tag="simulator.load_calls", projects=[project_id]))
        score_tables.append(clickhouse.query_arrow(SCORES_SQL, piece.params(), tag="simulator.load_scores",
                                                   projects=[project_id]))
        done += size
        report(done / total, f"loaded {done:,} of {total:,} calls")
    spans = _to_frame(call_tables)
    if not spans.empty or len(spans.columns):
        renames = {f"a{i}": "attr:" + a for i, a in enumerate(attrs)}
        renames.update({f"k{i}": keyword_column(w) for i, w in enumerate(words)})
        spans = spans.rename(columns=renames)
    scores = _to_frame(score_tables)
    return spans, scores


def _to_frame(tables: list[pa.Table]) -> pd.DataFrame:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pd.DataFrame(columns=[
            "trace_id", "span_id", "request_id", "attempt", "start_ns", "duration_ns", "task_type", "tier",
            "thinking_budget", "model", "user_id", "session_id", "service", "environment", "input_tokens",
            "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_input",
            "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total",
            "priced", "quality"])
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    return table.to_pandas()


def tier_models(project_id: int, window: Window) -> dict[int, list[tuple[str, int]]]:
    """Per tier 1–3, the models that ran there with their call counts, most used first."""
    rows = clickhouse.execute(TIER_MODELS_SQL, window.params(), tag="simulator.tier_models", projects=[project_id])
    out: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        out.setdefault(int(row["tier"]), []).append((str(row["model"]), int(row["calls"])))
    return out
