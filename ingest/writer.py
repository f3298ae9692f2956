"""Group commit: one writer thread turns concurrent requests into few, large inserts.

Each request hands its rows (an Arrow table in the spans schema, ``counted`` = 0) to
:func:`write`, which waits until the shared flush that includes them is stored (or
failed), so a request is answered 200 only for stored data. While a flush runs, new
submissions queue up and go out together in the next one. The writer thread also
decides ``counted`` (see :mod:`ingest.dedup`); doing it on this one thread means two
concurrent copies of a batch cannot both be counted.

An insert has a large fixed cost (tens to hundreds of milliseconds in embedded mode,
whatever its size), so a flush waits up to ``settings.INGEST_LINGER_MS`` after its first
submission arrived for others to join it; under load the queue is already full when the
previous flush ends and nothing waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ingest import dedup, recent, spans_store
from ingest.rows import COLUMNS
from thinkmeter import metrics

log = logging.getLogger(__name__)
MAX_FLUSH_ROWS = 100_000
WAIT_TIMEOUT_S = 120.0
DEFAULT_LINGER_S = 0.1
COUNTED = COLUMNS.index("counted")


BeforeInsert = Callable[[int, pa.Table], pa.Table]
AfterInsert = Callable[[int, pa.Table], None]


@dataclass
class Hooks:
    """Extension points for other apps (the alert engine marks runaway spans here).

    ``before_insert`` functions may return a changed table (same schema); ``after_insert``
    functions see what was stored. Both run on the writer thread: keep them fast (no I/O
    beyond in-memory caches; hand slow work to a task). A failing hook is logged and
    skipped: it never loses spans.
    """

    before_insert: list[BeforeInsert] = field(default_factory=list)
    after_insert: list[AfterInsert] = field(default_factory=list)


hooks = Hooks()


@dataclass
class Submission:
    project_id: int
    table: pa.Table
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    counted: int = 0
    queued_at: float = field(default_factory=time.monotonic)


def linger_s() -> float:
    """How long a flush waits for more submissions after its first one arrived."""
    from django.conf import settings

    return max(float(getattr(settings, "INGEST_LINGER_MS", DEFAULT_LINGER_S * 1000)), 0.0) / 1000


def embedded() -> bool:
    """True when this process is the only writer (chdb), so the recent index is complete."""
    from thinkmeter.clickhouse import client

    return client.config().kind == "chdb"


class Writer:
    def __init__(self) -> None:
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle_since = 0.0  # when the last flush ended (monotonic)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="thinkmeter-writer", daemon=True)
                self._thread.start()

    def write(self, project_id: int, table: pa.Table) -> int:
        """Store ``table``; block until stored; return how many rows count toward sums.

        Raises the storage error (a ClickHouseError) when the flush failed.
        """
        if not table.num_rows:
            return 0
        submission = Submission(project_id, table)
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
            size = first.table.num_rows
            # Linger from the later of the first submission and the end of the previous
            # flush: under load, submissions queue up during a flush, and waiting a little
            # after it lets the next insert grow (an insert's fixed cost is large).
            deadline = max(first.queued_at, self._idle_since) + linger_s()
            while size < MAX_FLUSH_ROWS:
                wait = deadline - time.monotonic()
                try:
                    more = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
                size += more.table.num_rows
            self._flush(batch)
            self._idle_since = time.monotonic()

    def _flush(self, batch: list[Submission]) -> None:
        by_project: dict[int, list[Submission]] = defaultdict(list)
        for submission in batch:
            by_project[submission.project_id].append(submission)
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
        table = pa.concat_tables([s.table for s in submissions])
        started = time.perf_counter()
        starts = table.column("start_time").cast(pa.int64())
        low, high = pc.min(starts).as_py(), pc.max(starts).as_py()
        trace_ids = table.column("trace_id").to_pylist()
        span_ids = table.column("span_id").to_pylist()
        parent_ids = table.column("parent_span_id").to_pylist()
        has_usage = table.column("has_usage").to_pylist()
        response_keys = list(zip(table.column("provider").to_pylist(), table.column("response_id").to_pylist(),
                                 strict=True))
        start_ns = starts.to_pylist()
        stored = recent.index.known(project_id, trace_ids)
        responses = recent.index.counted_responses(project_id, response_keys)
        if embedded():  # ask ClickHouse only about what the index cannot vouch for
            check_traces, check_responses = recent.index.to_check(project_id, trace_ids, start_ns, response_keys)
        else:  # other processes write too: ask ClickHouse about everything
            check_traces, check_responses = trace_ids, [r for _, r in response_keys]
        if check_traces:
            stored += spans_store.known_spans(project_id, check_traces, low, high)
        if check_responses:
            responses |= spans_store.counted_responses(project_id, check_responses, low, high)
        flags = dedup.counted_flags(trace_ids, span_ids, parent_ids, has_usage, response_keys, stored, responses)
        table = table.set_column(COUNTED, "counted", pa.array(flags, pa.uint8()))
        for before in hooks.before_insert:
            try:
                table = before(project_id, table)
            except Exception:
                log.exception("before_insert hook %s failed; spans stored without it", before)
        dedup_done = time.perf_counter()
        spans_store.insert(project_id, table)
        recent.index.add(project_id, trace_ids, span_ids, parent_ids, has_usage, flags, response_keys, start_ns,
                         checked_traces=set(check_traces))
        finished = time.perf_counter()
        metrics.INGEST_STAGE_SECONDS.labels("dedup").inc(dedup_done - started)
        metrics.INGEST_STAGE_SECONDS.labels("insert").inc(finished - dedup_done)
        metrics.INSERT_SECONDS.observe(finished - dedup_done)
        metrics.SPANS_STORED.inc(table.num_rows)
        for after in hooks.after_insert:
            try:
                after(project_id, table)
            except Exception:
                log.exception("after_insert hook %s failed", after)
        offset = 0
        for submission in submissions:
            n = submission.table.num_rows
            submission.counted = sum(flags[offset : offset + n])
            offset += n

    def shutdown(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)


writer = Writer()
write = writer.write
shutdown = writer.shutdown
