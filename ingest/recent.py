"""In-memory index of recently stored spans and counted provider responses, for dedup.

In embedded mode this process is the only writer, so an index of everything it stored
recently (warmed from ClickHouse at start-up) answers "was this span / response already
stored?" without a query per flush. It holds up to ``MAX_SPANS`` spans, evicting whole
traces oldest first; re-sent batches and double-instrumented calls arrive within
seconds to minutes, far inside that window. In server mode several processes write, so
the writer asks ClickHouse as well (see :mod:`ingest.writer`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ingest.dedup import Known

MAX_SPANS = 2_000_000
MAX_RESPONSES = 2_000_000

TraceKey = tuple[int, str]  # (project_id, trace_id)


class RecentIndex:
    def __init__(self, max_spans: int = MAX_SPANS, max_responses: int = MAX_RESPONSES) -> None:
        self.max_spans = max_spans
        self.max_responses = max_responses
        self._traces: OrderedDict[TraceKey, dict[str, tuple[str, bool, bool]]] = OrderedDict()
        self._spans = 0
        self._responses: OrderedDict[tuple[int, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, project_id: int, trace_ids: list[str]) -> list[Known]:
        out: list[Known] = []
        with self._lock:
            for trace_id in set(trace_ids):
                spans = self._traces.get((project_id, trace_id))
                if spans:
                    out.extend(Known(trace_id, sid, p, usage, counted) for sid, (p, usage, counted) in spans.items())
        return out

    def counted_responses(self, project_id: int, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        with self._lock:
            return {k for k in keys if k[1] and (project_id, k[0], k[1]) in self._responses}

    def add(
        self,
        project_id: int,
        trace_ids: list[str],
        span_ids: list[str],
        parent_ids: list[str],
        has_usage: list[bool],
        counted: list[int],
        response_keys: list[tuple[str, str]],
    ) -> None:
        with self._lock:
            for trace, span, parent, usage, flag, response in zip(
                trace_ids, span_ids, parent_ids, has_usage, counted, response_keys, strict=True
            ):
                key = (project_id, trace)
                spans = self._traces.get(key)
                if spans is None:
                    spans = self._traces[key] = {}
                previous = spans.get(span)
                if previous is None:
                    self._spans += 1
                    spans[span] = (parent, bool(usage), bool(flag))
                elif flag and not previous[2]:
                    spans[span] = (parent, bool(usage), True)
                if flag and response[1]:
                    self._responses[(project_id, response[0], response[1])] = None
            while self._spans > self.max_spans and self._traces:
                _, evicted = self._traces.popitem(last=False)
                self._spans -= len(evicted)
            while len(self._responses) > self.max_responses:
                self._responses.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._traces.clear()
            self._responses.clear()
            self._spans = 0

    def __len__(self) -> int:
        return self._spans


index = RecentIndex()
