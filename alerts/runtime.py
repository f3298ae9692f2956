"""In-process state behind the ingest hook: compiled runaway rules with thresholds, kept fresh.

The span writer's hook (:mod:`alerts.hook`) must not touch the database or ClickHouse,
so it reads a :class:`Snapshot` per project from memory. A daemon thread of this
process (the refresher) builds the snapshots — enabled span-scope runaway rules (from
the database) and their thresholds (from :data:`alerts.stats.cache`) — on first need
and again whenever one is older than :data:`REFRESH_SECONDS` (30 s, so never more than
a minute old while ingest runs); saving a rule wakes it at once. Until a project's
first snapshot exists, its spans are judged by the periodic sweep instead.

What the hook finds goes to the outbox: a second daemon thread hands it to the
``alerts.fire_runaway`` task, so even queueing a task (a broker round trip in server
mode) stays off the writer thread. While the broker is unreachable the thread keeps
the findings and tries again (backing off to every 10 s) until it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alerts.runaway import Thresholds

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0
FORGET_AFTER_SECONDS = 600.0  # projects that sent nothing for this long are no longer refreshed
BROKER_RETRY_FIRST, BROKER_RETRY_MAX = 0.5, 10.0  # seconds between attempts to queue while the broker is down


@dataclass(frozen=True)
class Snapshot:
    project_id: int
    loaded_at: float
    rules: tuple[Thresholds, ...] = ()
    base_url: str = ""
    error: str = ""


def build_snapshot(project_id: int, stats_max_age: float = REFRESH_SECONDS) -> Snapshot:
    """Read the project's span-scope runaway rules and their statistics (database + ClickHouse)."""
    from django.conf import settings

    from alerts import stats
    from alerts.models import AlertRule
    from alerts.services import compile_runaway

    compiled = []
    for rule in AlertRule.objects.filter(project_id=project_id, kind=AlertRule.Kind.RUNAWAY, enabled=True):
        try:
            spec = compile_runaway(rule)
        except ValueError:
            log.warning("runaway rule %s has invalid parameters; skipped at ingest", rule.pk)
            continue
        if spec.scope != "span":
            continue  # whole traces are summed by the sweep
        compiled.append(Thresholds(spec, stats.cache.get(project_id, spec.window_seconds, max_age=stats_max_age)))
    return Snapshot(project_id, time.time(), tuple(compiled), str(settings.BASE_URL).rstrip("/"))


@dataclass
class Runtime:
    refresh_seconds: float = REFRESH_SECONDS
    _snapshots: dict[int, Snapshot] = field(default_factory=dict)
    _wanted: dict[int, float] = field(default_factory=dict)
    _stale: set[int] = field(default_factory=set)
    _wake: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    _refresher: threading.Thread | None = None
    _outbox: queue.Queue[tuple[int, list[Any]] | None] = field(default_factory=queue.Queue)
    _dispatcher: threading.Thread | None = None

    # -- read side (the writer thread): memory only ------------------------------------

    def snapshot(self, project_id: int) -> Snapshot | None:
        """The project's snapshot if there is one (however old); asks for a refresh when due."""
        now = time.time()
        self._wanted[project_id] = now
        found = self._snapshots.get(project_id)
        if found is None or now - found.loaded_at >= self.refresh_seconds or project_id in self._stale:
            self._start_refresher()
            self._wake.set()
        return found

    def dispatch(self, project_id: int, items: list[Any]) -> None:
        """Queue findings for the fire_runaway task (returns at once)."""
        self._start_dispatcher()
        self._outbox.put((project_id, items))

    # -- refresh side --------------------------------------------------------------------

    def refresh(self, project_id: int, *, stats_max_age: float = REFRESH_SECONDS) -> Snapshot:
        """Build the project's snapshot now, in this thread (never call it on the writer thread).

        Builds are serialized, so the snapshot stored last is the one built last.
        ``stats_max_age`` = 0 reads the statistics afresh.
        """
        with self._build_lock:
            with self._lock:
                self._stale.discard(project_id)
            try:
                snap = build_snapshot(project_id, stats_max_age)
            except Exception as exc:
                log.debug("alert rules of project %s could not be loaded: %s", project_id, exc)
                # keep what we had; try again after the refresh interval
                old = self._snapshots.get(project_id)
                snap = Snapshot(project_id, time.time(), old.rules if old else (), old.base_url if old else "",
                                error=str(exc))
            with self._lock:
                self._snapshots[project_id] = snap
        return snap

    def invalidate(self, project_id: int | None = None) -> None:
        """Rules or statistics changed: rebuild (the old snapshot serves until then)."""
        with self._lock:
            self._stale.update(self._snapshots if project_id is None else [project_id])
        if self._refresher is not None:
            self._wake.set()

    def forget(self) -> None:
        """Drop every snapshot (tests)."""
        with self._lock:
            self._snapshots.clear()
            self._stale.clear()
            self._wanted.clear()

    def _start_daemon(self, attribute: str, loop: Callable[[], None], name: str) -> None:
        """Start the daemon thread kept in ``attribute`` unless it runs already (checked again under the lock)."""
        thread = getattr(self, attribute)
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            thread = getattr(self, attribute)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=loop, name=name, daemon=True)
                setattr(self, attribute, thread)
                thread.start()

    def _start_refresher(self) -> None:
        self._start_daemon("_refresher", self._refresh_loop, "thinkmeter-alert-stats")

    def _refresh_loop(self) -> None:
        from django.db import connections

        while True:
            self._wake.wait(self.refresh_seconds)
            self._wake.clear()
            now = time.time()
            for project_id, asked in list(self._wanted.items()):
                if now - asked > FORGET_AFTER_SECONDS:
                    self._wanted.pop(project_id, None)
                    continue
                found = self._snapshots.get(project_id)
                if found is None or now - found.loaded_at >= self.refresh_seconds or project_id in self._stale:
                    self.refresh(project_id)
            connections.close_all()  # this thread's connections only: nothing held between rounds

    # -- dispatch side -------------------------------------------------------------------

    def _start_dispatcher(self) -> None:
        self._start_daemon("_dispatcher", self._dispatch_loop, "thinkmeter-alert-outbox")

    def _dispatch_loop(self) -> None:
        while True:
            item = self._outbox.get()
            try:
                if item is not None:
                    self._hand_over(item)
            except Exception:
                log.exception("queueing %d runaway findings failed", len(item[1]) if item else 0)
            finally:
                self._outbox.task_done()

    @staticmethod
    def _hand_over(item: tuple[int, list[Any]]) -> None:
        """Queue the fire_runaway task; while the broker cannot be reached, keep the findings and try again.

        The spans are already stored with ``runaway = 1`` (the sweep skips them), so
        these findings exist nowhere else: dropping them would lose the alerts.
        """
        from kombu.exceptions import OperationalError

        from alerts import tasks

        delay = BROKER_RETRY_FIRST
        while True:
            try:
                tasks.enqueue("alerts.fire_runaway", [item[0], item[1]])
                return
            except (OperationalError, ConnectionError) as exc:
                log.warning("the task broker is unreachable (%s); %d runaway findings kept, retrying in %.1f s",
                            exc, len(item[1]), delay)
                time.sleep(delay)
                delay = min(delay * 2, BROKER_RETRY_MAX)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything dispatched so far has been handed to the task queue (tests)."""
        deadline = time.monotonic() + timeout
        while self._outbox.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


runtime = Runtime()
