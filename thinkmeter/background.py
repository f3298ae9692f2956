"""In-process task worker and periodic scheduler for embedded mode.

Embedded mode has no broker. Queued tasks go to one daemon worker thread (never the
request's thread, so a slow task cannot slow the request that queued it); the
scheduler thread queues each entry of Celery's ``beat_schedule`` at its interval.
``drain()`` waits until the queue is empty, for tests and for shutdown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    task: Any = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    done: threading.Event = field(compare=False, default_factory=threading.Event)
    result: Any = field(compare=False, default=None)


class LocalResult:
    """The small part of Celery's AsyncResult that callers use."""

    def __init__(self, job: _Job) -> None:
        self._job = job

    def ready(self) -> bool:
        return self._job.done.is_set()

    def get(self, timeout: float | None = None) -> Any:
        if not self._job.done.wait(timeout):
            raise TimeoutError("task did not finish in time")
        if isinstance(self._job.result, BaseException):
            raise self._job.result
        return self._job.result


class BackgroundWorker:
    """One daemon thread that runs queued tasks in due order."""

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = 0
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def submit(self, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], countdown: float | None) -> LocalResult:
        with self._lock:
            self._seq += 1
            self._pending += 1
            job = _Job(time.monotonic() + (countdown or 0), self._seq, task, args, kwargs)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="thinkmeter-tasks", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return LocalResult(job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            delay = job.due - time.monotonic()
            if delay > 0:
                self._queue.put(job)
                time.sleep(min(delay, 0.5))
                continue
            try:
                job.result = job.task.run(*job.args, **job.kwargs)
            except Exception as exc:  # a failing task must not kill the worker
                log.exception("background task %s failed", getattr(job.task, "name", job.task))
                job.result = exc
            finally:
                job.done.set()
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued task that is due has run."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True


_worker = BackgroundWorker()
submit = _worker.submit
drain = _worker.drain


class Scheduler:
    """Queues Celery ``beat_schedule`` entries (plain seconds intervals) on the worker."""

    def __init__(self, schedule: dict[str, dict[str, Any]], resolve: Callable[[str], Any]) -> None:
        self._entries = [(name, float(_seconds(entry["schedule"])), entry) for name, entry in schedule.items()]
        self._resolve = resolve
        self._stop = threading.Event()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="thinkmeter-scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        next_due = {name: time.monotonic() + interval for name, interval, _ in self._entries}
        while not self._stop.wait(1.0):
            now = time.monotonic()
            for name, interval, entry in self._entries:
                if now >= next_due[name]:
                    next_due[name] = now + interval
                    task = self._resolve(entry["task"])
                    submit(task, tuple(entry.get("args", ())), dict(entry.get("kwargs", {})), None)


def _seconds(schedule: Any) -> float:
    if isinstance(schedule, int | float):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)
    if run_every is not None:
        return float(run_every.total_seconds())
    raise ValueError(f"embedded scheduler supports interval schedules only, not {schedule!r}")


def start_scheduler() -> Scheduler:
    """Start the in-process scheduler for the Celery app's beat schedule."""
    from thinkmeter.celery import app

    scheduler = Scheduler(dict(app.conf.beat_schedule), lambda name: app.tasks[name])
    scheduler.start()
    return scheduler
