"""Group commit: one writer thread turns concurrent requests into few, large inserts.

Each request hands its rows to :func:`write`, which waits until the shared flush that
includes them is stored (or failed), so a request is answered 200 only for stored data.
While a flush runs, new submissions queue up and go out together in the next one. The
writer thread also decides ``counted`` (see :mod:`ingest.dedup`); doing it on this one
thread means two concurrent copies of a batch cannot both be counted.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ingest import dedup, spans_store
from ingest.rows import SpanRows
from thinkmeter import metrics

log = logging.getLogger(__name__)
MAX_FLUSH_ROWS = 100_000
WAIT_TIMEOUT_S = 120.0


@dataclass
class Submission:
    rows: SpanRows
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    counted: int = 0


class Writer:
    def __init__(self) -> None:
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.timings: dict[str, float] = defaultdict(float)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="thinkmeter-writer", daemon=True)
                self._thread.start()

    def write(self, rows: SpanRows) -> int:
        """Store ``rows``; block until stored; return how many rows count toward sums.

        Raises the storage error (a ClickHouseError) when the flush failed.
        """
        if not len(rows):
            return 0
        submission = Submission(rows)
        self._ensure_thread()
        self._queue.put(submission)
        if not submission.done.wait(WAIT_TIMEOUT_S):
            raise TimeoutError("span writer did not finish in time")
        if submission.error is not None:
            raise submission.error
        return submission.counted

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first.rows)
            while size < MAX_FLUSH_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
                size += len(more.rows)
            self._flush(batch)

    def _flush(self, batch: list[Submission]) -> None:
        by_project: dict[int, list[Submission]] = defaultdict(list)
        for submission in batch:
            by_project[submission.rows.project_id].append(submission)
        for project_id, submissions in by_project.items():
            try:
                self._store(project_id, submissions)
            except BaseException as exc:  # every waiting request must learn the outcome
                log.warning("storing %d span batches for project %s failed: %s", len(submissions), project_id, exc)
                for submission in submissions:
                    submission.error = exc
            finally:
                for submission in submissions:
                    submission.done.set()

    def _store(self, project_id: int, submissions: list[Submission]) -> None:
        rows = SpanRows(project_id)
        for submission in submissions:
            rows.extend(submission.rows)
        started = time.perf_counter()
        stored = spans_store.known_spans(rows)
        responses = spans_store.counted_responses(rows)
        c = rows.columns
        flags = dedup.counted_flags(
            c["trace_id"], c["span_id"], c["parent_span_id"], c["has_usage"],
            list(zip(c["provider"], c["response_id"], strict=True)), stored, responses,
        )
        c["counted"] = flags
        dedup_done = time.perf_counter()
        spans_store.insert(rows)
        finished = time.perf_counter()
        self.timings["dedup"] += dedup_done - started
        self.timings["insert"] += finished - dedup_done
        metrics.INSERT_SECONDS.observe(finished - dedup_done)
        metrics.SPANS_STORED.inc(len(rows))
        offset = 0
        for submission in submissions:
            n = len(submission.rows)
            submission.counted = sum(flags[offset : offset + n])
            offset += n

    def shutdown(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)


writer = Writer()
write = writer.write
shutdown = writer.shutdown
