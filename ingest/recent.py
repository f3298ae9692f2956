"""In-memory index of recently stored spans and counted provider responses, for dedup.

In embedded mode this process is the only writer, so an index of everything it stored
recently (warmed from ClickHouse at start-up) answers "was this span / response already
stored?" without a query per flush. It holds up to ``MAX_SPANS`` spans, evicting whole
traces oldest first, so its memory is bounded; re-sent batches and double-instrumented
calls arrive within seconds to minutes, inside that window.

Eviction never costs correctness. Beside the exact index, two
:class:`~ingest.seen.SeenFilter` Bloom filters remember every trace and counted provider
response stored, for minutes of traffic at 3 bytes a key, and
:meth:`RecentIndex.to_check` sends to ClickHouse the traces and responses it cannot
vouch for: a trace the exact index holds completely, or one the filter has certainly
never seen, needs no query; so does a response the index holds or the filter has never
seen. In server mode several processes write, and the writer asks ClickHouse about
everything (see :mod:`ingest.writer`).

The index lives in the serving process beside everything else, so it is packed: a
trace's spans are one bytes value of fixed-size records (span id, parent id, flags),
about 17 bytes a span instead of a few hundred for dicts of strings. Ids are the
lowercase hex the decoder writes; an id that is not (a row stored by other means) is
kept as text in a side table, so nothing is ever confused with something else.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from ingest.dedup import Known
from ingest.seen import SeenFilter

# The exact index's caps. Both fill within a minute or two of busy traffic and then hold
# their size (the filters keep eviction correct): 500,000 spans are ~28 MiB at six spans
# a trace (~125 MiB if every span were a trace of its own); a response key is ~120 bytes,
# so 200,000 are ~24 MiB. That is ~70 s of responses at 10,000 spans/s with one span in
# four an LLM call, about the spans' window; 500,000 took three minutes of a load test to
# fill and were 60 MiB of memory growth after its warm-up. A duplicate report of a call
# arrives within seconds; one arriving later is looked up in ClickHouse.
MAX_SPANS = 500_000
MAX_RESPONSES = 200_000
# The filters' generations are sized so that the older of the two kept covers more than the
# five minutes an exporter may lag at this machine's capacity (~25,000 spans/s, a trace
# of four spans, three of them LLM calls): spans that started before the dropped one's
# horizon are checked in ClickHouse. A filter's bits are a power of two, so these counts
# fill 8 and 16 MiB (24 bits a key) a generation. 1,000,000 trace keys turned over every
# three minutes at 20,000 spans/s, and then a batch's older spans went to ClickHouse.
TRACE_KEYS_KEPT = 2_600_000  # per filter generation: 8 MiB (two generations kept)
RESPONSE_KEYS_KEPT = 5_300_000  # 16 MiB a generation
UNKNOWN_START = 2**63 - 1  # later than any start time: an entry complete above it is never trusted

USAGE, COUNTED = 1, 2
RECORD = 17  # span id (8 bytes), parent id (8 bytes, zeros for none), flags (1 byte)
NO_PARENT = bytes(8)

TraceKey = tuple[int, str]  # (project_id, trace_id)


def _packed_id(span_id: str) -> bytes | None:
    """A span id as 8 bytes when it is 16 lowercase hex digits (what decode writes), else None."""
    if len(span_id) != 16:
        return None
    try:
        raw = bytes.fromhex(span_id)
    except ValueError:
        return None
    return raw if raw.hex() == span_id else None


class _Trace:
    """The spans of one trace: packed records, plus any whose ids do not pack."""

    __slots__ = ("complete_above", "other", "packed")

    def __init__(self, complete_above: int = 0) -> None:
        self.complete_above = complete_above  # every stored span that started after this (ns) is held
        self.packed = b""
        self.other: dict[str, tuple[str, int]] | None = None  # span id → (parent id, flags)

    def __len__(self) -> int:
        return len(self.packed) // RECORD + (len(self.other) if self.other else 0)

    def items(self) -> Iterator[tuple[str, str, int]]:
        """(span id, parent id, flags) of every span."""
        packed = self.packed
        for at in range(0, len(packed), RECORD):
            parent = packed[at + 8 : at + 16]
            yield packed[at : at + 8].hex(), "" if parent == NO_PARENT else parent.hex(), packed[at + 16]
        if self.other:
            for span, (parent_id, flags) in self.other.items():
                yield span, parent_id, flags

    def find(self, span_id: str, packed_id: bytes | None) -> int | None:
        """Flags of a span already held, else None."""
        if packed_id is not None:
            packed = self.packed
            at = packed.find(packed_id)
            while at >= 0:
                if at % RECORD == 0:
                    return packed[at + 16]
                at = packed.find(packed_id, at + 1)
        return self.other[span_id][1] if self.other and span_id in self.other else None

    def put(self, span_id: str, parent_id: str, flags: int) -> bool:
        """Add a span, or raise its flags; True when the span is new."""
        span_raw = _packed_id(span_id)
        parent_raw = _packed_id(parent_id) if parent_id else NO_PARENT
        previous = self.find(span_id, span_raw)
        if previous is not None:
            if flags & COUNTED and not previous & COUNTED:
                self._set_flags(span_id, span_raw, previous | COUNTED)
            return False
        if span_raw is not None and parent_raw is not None:
            self.packed += span_raw + parent_raw + bytes((flags,))
        else:
            if self.other is None:
                self.other = {}
            self.other[span_id] = (parent_id, flags)
        return True

    def _set_flags(self, span_id: str, packed_id: bytes | None, flags: int) -> None:
        if self.other and span_id in self.other:
            self.other[span_id] = (self.other[span_id][0], flags)
            return
        assert packed_id is not None
        packed = self.packed
        at = packed.find(packed_id)
        while at % RECORD:
            at = packed.find(packed_id, at + 1)
        self.packed = packed[: at + 16] + bytes((flags,)) + packed[at + 17 :]


class RecentIndex:
    def __init__(self, max_spans: int = MAX_SPANS, max_responses: int = MAX_RESPONSES) -> None:
        self.max_spans = max_spans
        self.max_responses = max_responses
        self._traces: dict[TraceKey, _Trace] = {}
        self._trace_order: deque[TraceKey] = deque()  # the keys of _traces, oldest first
        self._spans = 0
        self._responses: set[str] = set()  # "project\x1fprovider\x1fresponse id"
        self._response_order: deque[str] = deque()  # the keys of _responses, oldest first
        self._lock = threading.Lock()
        self.traces_seen = SeenFilter(TRACE_KEYS_KEPT)
        self.responses_seen = SeenFilter(RESPONSE_KEYS_KEPT)

    def forget_before(self, start_ns: int) -> None:
        """Declare spans that started at or before ``start_ns`` unknown here (warm-up loads only recent ones)."""
        self.traces_seen.forget_before(start_ns)
        self.responses_seen.forget_before(start_ns)

    @staticmethod
    def _response_key(project_id: int, provider: str, response_id: str) -> str:
        return f"{project_id}\x1f{provider}\x1f{response_id}"

    def known(self, project_id: int, trace_ids: list[str]) -> list[Known]:
        out: list[Known] = []
        with self._lock:
            for trace_id in set(trace_ids):
                trace = self._traces.get((project_id, trace_id))
                if trace:
                    out.extend(Known(trace_id, span, parent, bool(flags & USAGE), bool(flags & COUNTED))
                               for span, parent, flags in trace.items())
        return out

    def counted_responses(self, project_id: int, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        key = self._response_key
        with self._lock:
            return {k for k in keys if k[1] and key(project_id, k[0], k[1]) in self._responses}

    def to_check(
        self, project_id: int, trace_ids: list[str], start_ns: list[int], response_keys: list[tuple[str, str]]
    ) -> tuple[list[str], list[str]]:
        """The trace ids and response ids of a batch that must be looked up in ClickHouse.

        A trace needs no look-up when the exact index holds it and its entry is complete
        for spans that started after the batch's earliest span of it, or when the trace
        filter has never seen it and that span started after the filter's horizon. A
        response (provider, response id) needs none when the index holds it, or when the
        response filter has never seen it and its span started after that filter's
        horizon.
        """
        earliest: dict[str, int] = {}
        for trace_id, start in zip(trace_ids, start_ns, strict=True):
            if start < earliest.get(trace_id, UNKNOWN_START):
                earliest[trace_id] = start
        response_start: dict[tuple[str, str], int] = {}
        for response, start in zip(response_keys, start_ns, strict=True):
            if response[1] and start < response_start.get(response, UNKNOWN_START):
                response_start[response] = start
        with self._lock:
            traces = self._traces
            unheld: list[str] = []
            incomplete: list[str] = []
            for trace_id, start in earliest.items():
                trace = traces.get((project_id, trace_id))
                if trace is None:
                    unheld.append(trace_id)
                elif start <= trace.complete_above:
                    incomplete.append(trace_id)
            key = self._response_key
            open_responses = [(r, start) for r, start in response_start.items()
                              if key(project_id, r[0], r[1]) not in self._responses]
        traces_out = incomplete + self._unseen_filter(self.traces_seen, [(project_id, t) for t in unheld],
                                                      [earliest[t] for t in unheld], unheld)
        responses_out = self._unseen_filter(self.responses_seen, [(project_id, *r) for r, _ in open_responses],
                                            [start for _, start in open_responses], [r[1] for r, _ in open_responses])
        return traces_out, sorted(set(responses_out))

    @staticmethod
    def _unseen_filter(seen: SeenFilter, keys: list[tuple[object, ...]], starts: list[int],
                       names: list[str]) -> list[str]:
        """``names`` whose keys the filter may have seen, or whose spans started at or before its horizon."""
        if not keys:
            return []
        maybe = seen.maybe_seen(keys)
        horizon = seen.horizon
        return [name for name, hit, start in zip(names, maybe, starts, strict=True) if hit or start <= horizon]

    def add(
        self,
        project_id: int,
        trace_ids: list[str],
        span_ids: list[str],
        parent_ids: list[str],
        has_usage: list[bool],
        counted: list[int],
        response_keys: list[tuple[str, str]],
        start_ns: list[int] | None = None,
        checked_traces: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        """Remember stored rows. ``checked_traces`` are the traces ClickHouse was asked about for
        this batch: their stored spans are not all held here, so their entries are never trusted alone."""
        response_key = self._response_key
        batch_traces = list(dict.fromkeys(trace_ids))
        new_traces = [t for t in batch_traces if (project_id, t) not in self._traces]
        seen_before = self.traces_seen.maybe_seen([(project_id, t) for t in new_traces])
        filter_horizon = self.traces_seen.horizon
        complete_above = {t: UNKNOWN_START if hit or t in checked_traces else filter_horizon
                          for t, hit in zip(new_traces, seen_before, strict=True)}
        newest = max(start_ns, default=0) if start_ns is not None else UNKNOWN_START
        # every trace of the batch, held or not: a key is vouched for by the generation that saw its span
        self.traces_seen.add([(project_id, t) for t in batch_traces], newest)
        self.responses_seen.add([(project_id, *r) for r, flag in zip(response_keys, counted, strict=True)
                                 if flag and r[1]], newest)
        with self._lock:
            traces, responses = self._traces, self._responses
            for trace_id, span, parent, usage, flag, response in zip(
                trace_ids, span_ids, parent_ids, has_usage, counted, response_keys, strict=True
            ):
                key = (project_id, trace_id)
                trace = traces.get(key)
                if trace is None:
                    trace = traces[key] = _Trace(complete_above.get(trace_id, UNKNOWN_START))
                    self._trace_order.append(key)
                if trace.put(span, parent or "", (USAGE if usage else 0) | (COUNTED if flag else 0)):
                    self._spans += 1
                if flag and response[1]:
                    held = response_key(project_id, response[0], response[1])
                    if held not in responses:
                        responses.add(held)
                        self._response_order.append(held)
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest traces and responses beyond the caps: work in proportion to what is dropped."""
        while self._spans > self.max_spans and self._trace_order:
            self._spans -= len(self._traces.pop(self._trace_order.popleft()))
        while len(self._responses) > self.max_responses:
            self._responses.discard(self._response_order.popleft())

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
            self._trace_order.clear()
            self._responses.clear()
            self._response_order.clear()
            self._spans = 0
        self.traces_seen.clear()
        self.responses_seen.clear()

    def __len__(self) -> int:
        return self._spans


index = RecentIndex()
