"""The request table: one row per request, its attempts in order, built from span rows.

Input: one row per provider call that carries usage (the ``counted = 1`` spans) with the
columns of :data:`SPAN_COLUMNS`, optionally ``attr:<key>`` (attribute values a policy
reads), ``kw:<id>`` (keyword matches computed by the loader) and ``prompt_text``.

- A **request** is a trace, or each ``thinkmeter.request_id`` when a trace holds several.
- Its **attempts** are its escalation chain, in start-time order: calls sharing an
  ``attempt`` number (the ``thinkmeter.attempt`` attribute) form one attempt; without
  that attribute a new attempt starts whenever the configuration (tier, thinking budget)
  changes from the previous call. Calls of one attempt (an agent's several steps) add up.
- A request's **quality** is its last attempt's. Scores (the ``scores`` table, latest per
  trace and span) override the span's own quality: a score naming an LLM span sets that
  attempt's quality, a score on the trace (or on a span that is not an LLM call) sets the
  last attempt's quality of each request in the trace.

Everything is vectorized (factorize, bincount, one small groupby): a million requests
build in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SPAN_COLUMNS: dict[str, str] = {
    "trace_id": "str", "span_id": "str", "request_id": "str ('' when none)",
    "attempt": "int (0 when unknown)", "start_ns": "int64 ns since the epoch", "duration_ns": "int64",
    "task_type": "str", "tier": "int", "thinking_budget": "int", "model": "str",
    "user_id": "str", "session_id": "str", "service": "str", "environment": "str",
    "input_tokens": "int", "cache_read_tokens": "int", "cache_write_tokens": "int",
    "output_tokens": "int", "reasoning_tokens": "int",
    "cost_input": "float USD", "cost_cache_read": "float USD", "cost_cache_write": "float USD",
    "cost_output_visible": "float USD", "cost_reasoning": "float USD", "cost_total": "float USD",
    "priced": "bool", "quality": "float 0..1 or NaN",
}
TOKENS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
COSTS = ("cost_input", "cost_cache_read", "cost_cache_write", "cost_output_visible", "cost_reasoning", "cost_total")
DIMENSIONS = ("task_type", "user_id", "session_id", "service", "environment")
SCORE_COLUMNS = ("trace_id", "span_id", "value")
_INFERRED = 1 << 20  # attempt keys inferred from configuration changes sort after explicit numbers


@dataclass
class RequestTable:
    """Requests (one row each, index 0..n−1) and their attempts (``request`` points into requests).

    ``requests`` columns: trace_id, request_id, start_ns, the :data:`DIMENSIONS` (categorical),
    prompt_tokens (input tokens of the first attempt), attempts, first_tier,
    first_budget, final_tier, final_budget, actual_<cost part> for each of :data:`COSTS`,
    actual_latency_ms, actual_quality, priced, plus any ``attr:*`` / ``kw:*`` / prompt_text.

    ``attempts`` columns: request, attempt (1-based), tier, thinking_budget, model, start_ns,
    calls, the :data:`TOKENS`, the :data:`COSTS`, latency_ms, quality, priced.
    """

    requests: pd.DataFrame
    attempts: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.requests)


def missing_columns(spans: pd.DataFrame) -> list[str]:
    return [c for c in SPAN_COLUMNS if c not in spans.columns]


def _first_nonempty(values: pd.Series, group: np.ndarray, first_rows: np.ndarray) -> np.ndarray:
    """Per group, the first value that is not empty or missing (rows are sorted by group, then time)."""
    raw = values.to_numpy(dtype=object)
    out = raw[first_rows].copy()
    empty = pd.isna(out) | (out == "")
    if empty.any():
        wanted = np.isin(group, np.flatnonzero(empty))
        frame = pd.DataFrame({"g": group[wanted], "v": pd.Series(raw[wanted]).replace("", np.nan).to_numpy()})
        found = frame.groupby("g", sort=True)["v"].first()
        out[found.index.to_numpy()] = found.to_numpy()
        out[pd.isna(out)] = ""
    return out


def build_requests(spans: pd.DataFrame, scores: pd.DataFrame | None = None) -> RequestTable:
    """Build the request table from span rows (see the module docstring)."""
    missing = missing_columns(spans)
    if missing:
        raise ValueError(f"span rows lack the columns {', '.join(missing)}")
    if scores is not None:
        lacking = [c for c in SCORE_COLUMNS if c not in scores.columns]
        if lacking:
            raise ValueError(f"score rows lack the columns {', '.join(lacking)}")
    if spans.empty:
        return _empty_table(spans)

    trace_codes, trace_values = pd.factorize(spans["trace_id"].astype(str), sort=False)
    rid_codes, rid_values = pd.factorize(spans["request_id"].fillna("").astype(str), sort=False)
    key = trace_codes.astype(np.int64) * (len(rid_values) + 1) + rid_codes
    start = spans["start_ns"].to_numpy(np.int64)
    span_codes = pd.factorize(spans["span_id"].astype(str), sort=True)[0]
    order = np.lexsort((span_codes, start, key))
    s = spans.iloc[order].reset_index(drop=True)
    key = key[order]
    start = start[order]
    trace_codes = trace_codes[order]
    rid_codes = rid_codes[order]
    rows = len(s)

    quality = s["quality"].to_numpy(np.float64, na_value=np.nan).copy()
    trace_level: dict[str, float] = {}
    if scores is not None and not scores.empty:
        quality, trace_level = _apply_span_scores(s, quality, scores)

    # Requests (provisional numbering in key order).
    new_request = np.empty(rows, dtype=bool)
    new_request[0] = True
    new_request[1:] = key[1:] != key[:-1]
    req = np.cumsum(new_request) - 1
    n_req = int(req[-1]) + 1

    # Attempts: explicit numbers where given, else a new attempt when the configuration changes.
    tier = s["tier"].to_numpy(np.int64)
    budget = s["thinking_budget"].to_numpy(np.int64)
    changed = new_request.copy()
    changed[1:] |= (tier[1:] != tier[:-1]) | (budget[1:] != budget[:-1])
    inferred = np.cumsum(changed)
    inferred -= inferred[np.flatnonzero(new_request)][req] - 1
    explicit = s["attempt"].fillna(0).to_numpy(np.int64)
    explicit = np.where((explicit > 0) & (explicit < _INFERRED), explicit, 0)
    akey = np.where(explicit > 0, explicit, _INFERRED + inferred)
    group, _ = pd.factorize(req.astype(np.int64) * (2 * _INFERRED + 2) + akey, sort=False)
    n_att = int(group.max()) + 1
    first_row = np.unique(group, return_index=True)[1]  # codes follow first appearance: rows in time order

    att_req = req[first_row]
    att_start = start[first_row]
    att_order = np.lexsort((att_start, att_req))  # attempts by request, then start time
    remap = np.empty(n_att, dtype=np.int64)
    remap[att_order] = np.arange(n_att)
    group = remap[group]
    first_row = first_row[att_order]
    att_req = att_req[att_order]

    def att_sum(column: str) -> np.ndarray:
        return np.bincount(group, weights=s[column].to_numpy(np.float64), minlength=n_att)

    att_quality = pd.Series(quality).groupby(group).last().reindex(range(n_att)).to_numpy(np.float64)
    att_priced = np.bincount(group, weights=(~s["priced"].to_numpy(bool)).astype(np.float64), minlength=n_att) == 0
    attempts = pd.DataFrame({
        "request": att_req,
        "tier": tier[first_row].astype(np.int16),
        "thinking_budget": budget[first_row].astype(np.int64),
        "model": pd.Categorical(s["model"].to_numpy()[first_row]),
        "start_ns": start[first_row],
        "calls": np.bincount(group, minlength=n_att).astype(np.int32),
        **{c: att_sum(c) for c in TOKENS},
        **{c: att_sum(c) for c in COSTS},
        "latency_ms": att_sum("duration_ns") / 1e6,
        "quality": att_quality,
        "priced": att_priced,
    })
    new_req_att = np.empty(n_att, dtype=bool)
    new_req_att[0] = True
    new_req_att[1:] = att_req[1:] != att_req[:-1]
    first_att = np.flatnonzero(new_req_att)
    attempts["attempt"] = (np.arange(n_att) - first_att[att_req] + 1).astype(np.int16)
    last_att = np.append(first_att[1:] - 1, n_att - 1)

    if trace_level:
        att_trace = trace_values[trace_codes[first_row]]
        scored = pd.Series(att_trace).map(trace_level).to_numpy(np.float64)
        is_last = np.zeros(n_att, dtype=bool)
        is_last[last_att] = True
        use = is_last & ~np.isnan(scored)
        attempts.loc[use, "quality"] = scored[use]

    # Requests: totals over attempts, first and final configuration, dimensions.
    req_first_row = np.flatnonzero(new_request)
    requests = pd.DataFrame({
        "trace_id": trace_values[trace_codes[req_first_row]],
        "request_id": rid_values[rid_codes[req_first_row]],
        "start_ns": attempts["start_ns"].to_numpy()[first_att],
    })
    for dim in DIMENSIONS:
        requests[dim] = _first_nonempty(s[dim], req, req_first_row)
    requests["prompt_tokens"] = attempts["input_tokens"].to_numpy()[first_att]
    requests["attempts"] = np.diff(np.append(first_att, n_att)).astype(np.int16)
    requests["first_tier"] = attempts["tier"].to_numpy()[first_att]
    requests["first_budget"] = attempts["thinking_budget"].to_numpy()[first_att]
    requests["final_tier"] = attempts["tier"].to_numpy()[last_att]
    requests["final_budget"] = attempts["thinking_budget"].to_numpy()[last_att]
    for column in COSTS:
        requests["actual_" + column] = np.bincount(att_req, weights=attempts[column].to_numpy(), minlength=n_req)
    requests["actual_latency_ms"] = np.bincount(att_req, weights=attempts["latency_ms"].to_numpy(), minlength=n_req)
    requests["actual_quality"] = attempts["quality"].to_numpy()[last_att]
    requests["priced"] = np.bincount(att_req, weights=(~attempts["priced"].to_numpy()).astype(float), minlength=n_req) == 0
    for column in s.columns:
        if column.startswith("attr:"):
            requests[column] = _first_nonempty(s[column], req, req_first_row)
        elif column.startswith("kw:"):
            requests[column] = np.bincount(req, weights=s[column].to_numpy(bool).astype(float), minlength=n_req) > 0
        elif column == "prompt_text":
            requests[column] = _first_nonempty(s[column], req, req_first_row)

    # Final numbering: by start time (ties by trace and request id), so results do not depend on input order.
    req_order = np.lexsort((requests["request_id"].to_numpy(), requests["trace_id"].to_numpy(),
                            requests["start_ns"].to_numpy()))
    requests = requests.iloc[req_order].reset_index(drop=True)
    new_index = np.empty(n_req, dtype=np.int64)
    new_index[req_order] = np.arange(n_req)
    attempts["request"] = new_index[attempts["request"].to_numpy()]
    attempts = attempts.sort_values(["request", "attempt"], kind="stable").reset_index(drop=True)
    for dim in DIMENSIONS:
        requests[dim] = pd.Categorical(requests[dim])
    column_order = ["request", "attempt", *[c for c in attempts.columns if c not in ("request", "attempt")]]
    return RequestTable(requests=requests, attempts=attempts[column_order])


def _apply_span_scores(s: pd.DataFrame, quality: np.ndarray, scores: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """Set the quality of scored LLM spans; return the scores that apply to whole traces (by trace id)."""
    sc = scores.copy()
    if "created_at" in sc.columns:
        sc = sc.sort_values("created_at", kind="stable")
    sc["trace_id"] = sc["trace_id"].astype(str)
    sc["span_id"] = sc["span_id"].fillna("").astype(str)
    sc = sc.drop_duplicates(["trace_id", "span_id"], keep="last")
    index = pd.MultiIndex.from_arrays([s["trace_id"].astype(str), s["span_id"].astype(str)])
    wanted = pd.MultiIndex.from_arrays([sc["trace_id"], sc["span_id"]])
    position = index.get_indexer(wanted)
    hit = position >= 0
    quality = quality.copy()
    quality[position[hit]] = sc["value"].to_numpy(np.float64)[hit]
    rest = sc[~hit]
    trace_level = rest.drop_duplicates("trace_id", keep="last")
    return quality, dict(zip(trace_level["trace_id"], trace_level["value"].astype(float), strict=True))


def _empty_table(spans: pd.DataFrame) -> RequestTable:
    requests = pd.DataFrame({
        "trace_id": pd.Series(dtype=object), "request_id": pd.Series(dtype=object),
        "start_ns": pd.Series(dtype=np.int64),
        **{d: pd.Categorical([]) for d in DIMENSIONS},
        "prompt_tokens": pd.Series(dtype=np.float64), "attempts": pd.Series(dtype=np.int16),
        "first_tier": pd.Series(dtype=np.int16), "first_budget": pd.Series(dtype=np.int64),
        "final_tier": pd.Series(dtype=np.int16), "final_budget": pd.Series(dtype=np.int64),
        **{"actual_" + c: pd.Series(dtype=np.float64) for c in COSTS},
        "actual_latency_ms": pd.Series(dtype=np.float64), "actual_quality": pd.Series(dtype=np.float64),
        "priced": pd.Series(dtype=bool),
    })
    for column in spans.columns:
        if column.startswith(("attr:", "kw:")) or column == "prompt_text":
            requests[column] = pd.Series(dtype=bool if column.startswith("kw:") else object)
    attempts = pd.DataFrame({
        "request": pd.Series(dtype=np.int64), "attempt": pd.Series(dtype=np.int16),
        "tier": pd.Series(dtype=np.int16), "thinking_budget": pd.Series(dtype=np.int64),
        "model": pd.Categorical([]), "start_ns": pd.Series(dtype=np.int64), "calls": pd.Series(dtype=np.int32),
        **{c: pd.Series(dtype=np.float64) for c in TOKENS}, **{c: pd.Series(dtype=np.float64) for c in COSTS},
        "latency_ms": pd.Series(dtype=np.float64), "quality": pd.Series(dtype=np.float64),
        "priced": pd.Series(dtype=bool),
    })
    return RequestTable(requests=requests, attempts=attempts)
