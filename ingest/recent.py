"""In-memory index of recently stored spans and counted provider responses, for dedup.

In embedded mode this process is the only writer, so an index of everything it stored
recently (warmed from ClickHouse at start-up) answers "was this span / response already
stored?" without a query per flush. It holds up to ``MAX_SPANS`` spans, evicting whole
traces oldest first, so its memory is bounded; re-sent batches and double-instrumented
calls arrive within seconds to minutes, inside that window. Eviction never costs
correctness: the index remembers the newest start time of anything it evicted
(:meth:`RecentIndex.covers`), and a batch reaching back to or before that horizon is
checked against ClickHouse as well, as in server mode, where several processes write
(see :mod:`ingest.writer`).

The index lives in the serving process beside everything else, so it is packed: a
trace's spans are one bytes value of fixed-size records (span id, parent id, flags),
about 17 bytes a span instead of a few hundred for dicts of strings. Ids are the
lowercase hex the decoder writes; an id that is not (a row stored by other means) is
kept as text in a side table, so nothing is ever confused with something else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from itertools import islice

from ingest.dedup import Known

MAX_SPANS = 500_000  # about 90 MiB with the trace keys; the horizon keeps eviction correct
MAX_RESPONSES = 500_000
UNKNOWN_START = 2**63 - 1  # a span added without its start time: evicting it makes the index cover nothing
EVICT_SLACK = 0.05  # evict this share beyond the cap at once (one pass instead of one per add)

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

    __slots__ = ("newest", "other", "packed")

    def __init__(self) -> None:
        self.newest = 0  # the latest start time (ns) of the trace's spans held
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
        self._traces: dict[TraceKey, _Trace] = {}  # insertion order: oldest first
        self._spans = 0
        self._responses: dict[str, int] = {}  # "project\x1fprovider\x1fresponse id" → start ns, oldest first
        self._horizon = 0  # every span stored that started after this (ns) is held
        self._lock = threading.Lock()

    def covers(self, earliest_start_ns: int) -> bool:
        """True when a batch whose earliest span started at ``earliest_start_ns`` needs no ClickHouse check."""
        return earliest_start_ns > self._horizon

    def forget_before(self, start_ns: int) -> None:
        """Declare spans that started at or before ``start_ns`` unknown here (warm-up loads only recent ones)."""
        with self._lock:
            self._horizon = max(self._horizon, start_ns)

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
    ) -> None:
        response_key = self._response_key
        starts = start_ns if start_ns is not None else [UNKNOWN_START] * len(trace_ids)
        with self._lock:
            traces, responses = self._traces, self._responses
            for trace_id, span, parent, usage, flag, response, start in zip(
                trace_ids, span_ids, parent_ids, has_usage, counted, response_keys, starts, strict=True
            ):
                key = (project_id, trace_id)
                trace = traces.get(key)
                if trace is None:
                    trace = traces[key] = _Trace()
                if trace.put(span, parent or "", (USAGE if usage else 0) | (COUNTED if flag else 0)):
                    self._spans += 1
                trace.newest = max(trace.newest, start)
                if flag and response[1]:
                    responses[response_key(project_id, response[0], response[1])] = start
            self._evict()

    def _evict(self) -> None:
        if self._spans > self.max_spans:
            remaining, drop = self._spans, 0
            target = int(self.max_spans * (1 - EVICT_SLACK))
            for trace in self._traces.values():
                if remaining <= target:
                    break
                remaining -= len(trace)
                drop += 1
                self._horizon = max(self._horizon, trace.newest)
            self._traces = dict(islice(self._traces.items(), drop, None))
            self._spans = remaining
        if len(self._responses) > self.max_responses:
            excess = len(self._responses) - int(self.max_responses * (1 - EVICT_SLACK))
            self._horizon = max(self._horizon, *islice(self._responses.values(), excess))
            self._responses = dict(islice(self._responses.items(), excess, None))

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
            self._responses.clear()
            self._spans = 0
            self._horizon = 0

    def __len__(self) -> int:
        return self._spans


index = RecentIndex()
