"""Load test: sustained OTLP ingest at a fixed rate for N minutes while dashboards are read.

Starts a fresh ``manage.py serve`` in embedded mode (its own chdb store and SQLite
database under a temporary directory, a project, its key and a superuser), then for
``--minutes`` (default 5):

- sends OTLP/HTTP protobuf requests of ``--batch`` spans (bench/ingest.py's realistic
  payloads, fresh ids on every send, remade every 30 s so spans started within the five
  minutes before they are sent) on a fixed schedule at ``--rate`` spans/s, or at
  ``--fraction`` (default 0.8) of a capacity measured on the machine as it is now (this
  VM's speed varies through the day, so a capacity measured hours earlier may not be
  this hour's):

  - ``--sustained-capacity`` (issue 8's load test): first, for ``--capacity-minutes``
    (default 3), the same clients send as fast as the server answers, on the same
    server, with the dashboards read; the capacity is the rate stored after the first
    minute, on a store that by then holds millions of spans, with merges running. The
    load then runs on that server, its store populated;
  - ``--measure-capacity`` runs bench/ingest.py first (a separate fresh server, a
    million spans as fast as they are answered, on an empty store, no one reading: a
    burst figure; the load then starts on an empty store), or ``--capacity-json``
    reads that benchmark's JSON output;

  ``--clients`` connections share the schedule (open loop: a slow answer does not slow
  the schedule, it makes the next sends late, and the lateness is reported);
- every ``--poll-seconds`` (default 15) a signed-in user reads the Finance and Engineering
  pages (the median of each part of their ``Server-Timing`` is reported) and a key reads
  ``/api/v1/usage?group_by=task_type,tier``;
- samples the resident memory of the serving process (and of it with its ingest worker
  processes) every second, and every 30 s where it is (``memory_breakdown``: anonymous
  and file-backed MiB, threads, and from ``/metrics`` the engine's tracked and allocator
  MiB, parts by state, cache sizes and threads, and glibc malloc's and Arrow's MiB).

Prints one JSON object: the capacity run (with ``--sustained-capacity`` its own figures
as below), ingest answers by status (``errors_5xx`` must be 0), request
latency p50/p99, target and achieved rate (also per minute, with the sends' lateness),
the CPU cores the serving process, its ingest workers and this benchmark kept busy, the
serving process's resident memory (at the start, after the warm-up of a minute or a
fifth of the run while caches fill, at the end, the maximum, the lowest, median and
highest sample of every minute, and the trend: the last minute's floor against the first
minute's after the warm-up; also with its ingest worker processes), the dashboard
answers (count, failures, p50/p95, per page), the spans stored, counted after the server stops, and ``checks``: no 5xx
(nor in the capacity run), every span
answered 200 stored, at least 98 % of the target rate achieved, memory flat (the
trend at most 10 % of the first minute's floor) and every dashboard answering. It
exits with 1 when a check fails.

    flock /tmp/bench.lock .venv/bin/python bench/load.py --sustained-capacity   # issue 8's load test
    flock /tmp/bench.lock .venv/bin/python bench/load.py --measure-capacity
    flock /tmp/bench.lock .venv/bin/python bench/ingest.py --spans 1000000 > /tmp/capacity.json
    flock /tmp/bench.lock .venv/bin/python bench/load.py --capacity-json /tmp/capacity.json
    flock /tmp/bench.lock .venv/bin/python bench/load.py --minutes 0.5 --rate 2000   # a short check
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    CpuMeter,
    clickhouse_statements,
    distinct,
    free_port,
    make_payload,
    metric_values,
    process_status,
    process_tree,
    rss_kib,
    start_server,
    wait_for_port,
)
from dashboards import server_timing  # noqa: E402

PAGES = {"finance": "/finance/", "engineering": "/engineering/", "usage_api": "/api/v1/usage?group_by=task_type,tier"}
RSS_SERIES_SECONDS = 30
WARMUP_SECONDS = 60.0  # or a fifth of a shorter run: memory grows while caches fill, then should stay flat
TREND_WINDOW_SECONDS = 60.0  # memory's trend: the last minute's floor against the first's after the warm-up
FLAT_TOLERANCE = 0.10  # "flat": the last minute's floor at most 10 % above the first's
CAPACITY_FIGURES = ("command", "spans_per_s", "spans_stored", "seconds", "cpu_us_per_span", "load_average")
KEPT_UP = 0.98  # "kept up": at least 98 % of the target rate achieved
CAPACITY_RAMP_SECONDS = 60.0  # --sustained-capacity: the rate counts from the second minute on
TEMPLATE_REFRESH_S = 30.0  # payload templates are remade this often (span start times follow the clock)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (the serving process and its ingest workers)."""
    total = 0
    for member in process_tree(pid):
        try:
            total += rss_kib(member)
        except OSError:
            pass  # a worker that exited between the listing and the read
    return total


# ---------------------------------------------------------------- the served instance


class Instance:
    """``manage.py serve`` in embedded mode on a free port, with a project key and a superuser."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "CLICKHOUSE_URL": f"chdb://{workdir}/clickhouse",
                    "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3", "THINKMETER_GRPC_PORT": "0",
                    "THINKMETER_RATE_LIMIT_PER_SECOND": "100000", "THINKMETER_LOG_LEVEL": "WARNING",
                    "THINKMETER_BASE_URL": "http://127.0.0.1"}
        self.env.pop("CELERY_BROKER_URL", None)  # embedded mode: the in-process task worker
        self.username, self.password = "bench", secrets.token_urlsafe(16)
        self.port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.log_path = workdir / "server.log"

    def manage(self, *args: str, **env: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **env}, check=True,
                              capture_output=True, text=True)
        return done.stdout

    def prepare(self) -> None:
        self.manage("migrate", "-v", "0")
        self.key = self.manage("create_project", "bench").strip().splitlines()[-1]
        self.manage("createsuperuser", "--noinput", "--username", self.username, "--email", "bench@localhost",
                    DJANGO_SUPERUSER_PASSWORD=self.password)

    def start(self) -> None:
        self.server = start_server([sys.executable, "manage.py", "serve", "--port", str(self.port)], self.env,
                                   self.log_path)
        wait_for_port(self.port, self.server, self.log_path)

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=120)

    def stored_spans(self) -> int:
        out = self.manage("shell", "-c", "from thinkmeter import clickhouse as c; "
                          "print(c.execute('SELECT count() AS n FROM spans', tag='bench.count', system=True)[0]['n'])")
        return int(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- ingest at a fixed rate


@dataclass
class IngestLoad:
    """Sends for ``seconds``: on a fixed schedule at ``rate`` spans/s (open loop), or with
    ``rate`` None as fast as the server answers, each client sending its next request
    when the last is answered (closed loop: the server's capacity). Request ``number``
    (from ``first_number`` on) gets ids of its own, so two loads on one server never
    send the same span."""

    port: int
    key: str
    rate: float | None  # spans per second; None: as fast as the server answers
    batch: int
    seconds: float
    clients: int
    templates: list[bytes]
    first_number: int = 0
    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)  # seconds into the run
    stored_at: list[float] = field(default_factory=list)  # the same, of the answers 200 (spans stored)
    statuses: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    ok_spans: int = 0
    elapsed: float = 0.0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        interval = self.batch / self.rate if self.rate else 0.0
        total = int(self.seconds / interval) if interval else None
        started = time.monotonic()
        deadline = started + self.seconds

        def client(number: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            while True:
                with self._lock:
                    i = self._next
                    self._next += 1
                if i >= total if total is not None else time.monotonic() >= deadline:
                    return
                due = started + i * interval if interval else time.monotonic()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                body = distinct(self.templates[i % len(self.templates)], self.first_number + i)
                t0 = time.monotonic()
                try:
                    conn.request("POST", "/v1/traces", body=body, headers={
                        "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                        "Authorization": f"Bearer {self.key}"})
                    response = conn.getresponse()
                    response.read()
                    status = str(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    status = f"transport:{type(exc).__name__}"
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                finished = time.monotonic()
                with self._lock:
                    self.latencies.append(finished - t0)
                    self.lateness.append(max(t0 - due, 0.0))
                    self.answered_at.append(finished - started)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    self.sent += self.batch
                    if status == "200":
                        self.ok_spans += self.batch
                        self.stored_at.append(finished - started)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.elapsed = time.monotonic() - started

    @property
    def requests_numbered(self) -> int:
        """How many request numbers this load used: a later load on the server starts after them."""
        return self._next

    def stored_per_second(self, after: float) -> float:
        """Spans answered 200 (stored) a second from ``after`` seconds into the run to its last answer."""
        end = max(self.stored_at, default=0.0)
        return sum(1 for at in self.stored_at if at >= after) * self.batch / max(end - after, 1.0)

    def per_minute(self) -> dict[str, dict[str, float]]:
        """Spans answered a second, and the p99 lateness of the sends, in each minute of the run
        (the last one, the run's tail, over the seconds it covers)."""
        minutes: dict[int, list[float]] = {}
        for at, late in zip(self.answered_at, self.lateness, strict=True):
            minutes.setdefault(int(at // 60), []).append(late)
        end = max(self.answered_at, default=0.0)
        return {f"minute {minute + 1}": {
                    "spans_per_s": round(len(late) * self.batch / max(min(60.0, end - minute * 60), 1.0)),
                    "send_lateness_ms_p99": ms(percentile(late, 0.99))}
                for minute, late in sorted(minutes.items())}


@dataclass
class TemplateRefresher:
    """Remakes the load's payload templates every :data:`TEMPLATE_REFRESH_S`, so spans keep
    starting within the last ``LIVE_SPREAD_S`` before they are sent, as exporters' spans do.
    With templates made once, a ten-minute run sent spans up to fifteen minutes old, and
    once the dedup filters had turned over (a few minutes at these rates) every batch was
    older than their horizon and went to ClickHouse to be checked."""

    load: IngestLoad
    rng: random.Random
    count: int
    stop: threading.Event = field(default_factory=threading.Event)

    def make(self) -> None:
        self.load.templates = [make_payload(self.rng, self.load.batch) for _ in range(self.count)]

    def run(self) -> None:
        while not self.stop.wait(TEMPLATE_REFRESH_S):
            self.make()


# ---------------------------------------------------------------- dashboards read meanwhile


@dataclass
class DashboardPoller:
    port: int
    key: str
    username: str
    password: str
    every: float
    stop: threading.Event = field(default_factory=threading.Event)
    answers: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in PAGES})
    parts: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {name: {} for name in PAGES})
    failures: list[str] = field(default_factory=list)

    def login(self) -> Any:
        import httpx

        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=120, follow_redirects=False)
        form = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        if form.status_code != 200 or token is None:
            raise SystemExit(f"GET /login/ answered {form.status_code} without a CSRF token")
        signed_in = client.post("/login/", data={"username": self.username, "password": self.password,
                                                 "csrfmiddlewaretoken": token.group(1), "next": "/"})
        if signed_in.status_code != 302:
            raise SystemExit(f"signing in answered {signed_in.status_code}, not a redirect")
        return client

    def poll_once(self, client: Any) -> None:
        for name, path in PAGES.items():
            headers = {"Authorization": f"Bearer {self.key}"} if name == "usage_api" else {}
            started = time.monotonic()
            try:
                response = client.get(path, headers=headers)
                ok = response.status_code == 200
                outcome = str(response.status_code)
            except Exception as exc:  # reported, never fatal: the load goes on
                ok, outcome = False, type(exc).__name__
            if ok:
                self.answers[name].append(time.monotonic() - started)
                for part, took in server_timing.parse(response.headers.get(server_timing.HEADER, "")).items():
                    self.parts[name].setdefault(part, []).append(took / 1000)
            else:
                self.failures.append(f"{name}: {outcome}")

    def run(self) -> None:
        client = self.login()
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                self.poll_once(client)
                self.stop.wait(max(self.every - (time.monotonic() - started), 0.0))
        finally:
            client.close()

    def report(self) -> dict[str, Any]:
        every = [t for times in self.answers.values() for t in times]
        return {
            "answers": len(every), "failures": len(self.failures), "failure_samples": self.failures[:5],
            "latency_ms_p50": ms(percentile(every, 0.5)), "latency_ms_p95": ms(percentile(every, 0.95)),
            "per_page": {name: {"answers": len(times), "latency_ms_p50": ms(percentile(times, 0.5)),
                                "latency_ms_p95": ms(percentile(times, 0.95)),
                                "server_timing_ms_p50": {part: ms(percentile(took, 0.5))
                                                         for part, took in self.parts[name].items()}}
                         for name, times in self.answers.items()},
        }


# ---------------------------------------------------------------- memory


@dataclass
class MemorySampler:
    pid: int
    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    main: list[tuple[float, int]] = field(default_factory=list)
    tree: list[tuple[float, int]] = field(default_factory=list)
    breakdowns: dict[str, dict[str, int]] = field(default_factory=dict)  # every RSS_SERIES_SECONDS: breakdown()

    def sample(self, started: float) -> None:
        now = time.monotonic() - started
        self.main.append((now, rss_kib(self.pid)))
        self.tree.append((now, tree_rss_kib(self.pid)))
        if now >= len(self.breakdowns) * RSS_SERIES_SECONDS:
            try:
                values = metric_values(self.port)
            except OSError:
                values = {}
            self.breakdowns[f"{round(now)}s"] = self.breakdown(values)

    def breakdown(self, values: dict[str, float]) -> dict[str, int]:
        """Where the serving process's memory is: its anonymous and file-backed resident MiB and
        threads, chdb's tracked and allocator-resident MiB, its parts and caches, and what
        glibc malloc (in use, freed but held, mmapped) and Arrow's pool hold."""
        status = process_status(self.pid)
        mib = {"rss_anon": status.get("RssAnon", 0) // 1024, "rss_file": status.get("RssFile", 0) // 1024,
               "threads": status.get("Threads", 0)}
        mib["engine_jemalloc_resident"] = int(values.get("thinkmeter_clickhouse_allocator_resident_bytes", 0.0)) // 2**20
        for name, value in values.items():
            if name.startswith("engine."):  # MemoryTracking and the caches in MiB, the rest counts
                kind = name.removeprefix("engine.")
                mib[kind] = int(value) // 2**20 if kind.endswith("Bytes") or kind == "MemoryTracking" else int(value)
            elif name.startswith("allocator."):  # glibc's and Arrow's, MiB
                mib[name.removeprefix("allocator.")] = int(value) // 2**20
        return mib

    def run(self, started: float) -> None:
        while not self.stop.wait(1.0):
            self.sample(started)

    @staticmethod
    def summary(samples: list[tuple[float, int]], warmup: float) -> dict[str, Any]:
        """MiB at the start, after the warm-up (caches filled), at the end, the maximum, and the
        lowest, median and highest of each minute's samples (one a second).

        Single samples swing by hundreds of MiB within seconds: a dashboard read or an
        insert holds its buffers while it runs, and both take seconds under load. A leak or
        a cache that keeps filling raises the floor, the lowest sample of a minute, which
        transient buffers do not; ``trend`` is the last minute's floor against the first
        minute's after the warm-up. The peaks are reported beside it."""
        minutes: dict[str, dict[str, int]] = {}
        for index in range(int(samples[-1][0] // TREND_WINDOW_SECONDS) + 1):
            values = [kib // 1024 for at, kib in samples
                      if index * TREND_WINDOW_SECONDS <= at < (index + 1) * TREND_WINDOW_SECONDS]
            if values:
                minutes[f"minute {index + 1}"] = {"min": min(values), "median": round(statistics.median(values)),
                                                  "max": max(values)}
        warm = next((kib for at, kib in samples if at >= warmup), samples[-1][1]) // 1024
        last = samples[-1][0]
        window = min(TREND_WINDOW_SECONDS, (last - warmup) / 2)  # a shorter run: its two halves
        first_window = [kib // 1024 for at, kib in samples if warmup <= at < warmup + window] or [warm]
        last_window = [kib // 1024 for at, kib in samples if at >= last - window]
        return {"start": samples[0][1] // 1024, "after_warmup": warm, "end": samples[-1][1] // 1024,
                "max": max(k for _, k in samples) // 1024,
                "floor_first_minute_after_warmup": min(first_window), "floor_last_minute": min(last_window),
                "trend": min(last_window) - min(first_window),
                "peak_first_minute_after_warmup": max(first_window), "peak_last_minute": max(last_window),
                "per_minute": minutes}


def checks(report: dict[str, Any]) -> dict[str, bool]:
    """The load test's pass conditions (issue 8): each true or false, with ``passed`` for all."""
    memory = report["server_rss_mib"]
    dashboards = report["dashboards"]
    phases = [report, report.get("capacity_run") or {}]  # --sustained-capacity's run counts too
    out = {
        "no_5xx": all(phase.get("errors_5xx", 0) == 0 and phase.get("transport_errors", 0) == 0 for phase in phases),
        "every_accepted_span_stored": report["spans_stored"] == report["spans_answered_200_with_capacity_run"],
        "kept_up": report["achieved_spans_per_s"] >= KEPT_UP * report["target_spans_per_s"],
        "memory_flat": memory["trend"] <= FLAT_TOLERANCE * memory["floor_first_minute_after_warmup"],
        "dashboards_answered": dashboards["failures"] == 0
        and all(page["answers"] > 0 for page in dashboards["per_page"].values()),
    }
    return {**out, "passed": all(out.values())}


# ---------------------------------------------------------------- one load on the running server


@dataclass
class Phase:
    """One load on the running server, with the dashboards read and memory sampled meanwhile."""

    load: IngestLoad
    poller: DashboardPoller
    memory: MemorySampler
    cpu_cores_busy: dict[str, float]

    def report(self) -> dict[str, Any]:
        """Its figures: answers by status, request latency, rate (also per minute), CPU, the
        serving process's memory (its trend after a warm-up of a minute, or of a fifth of a
        shorter load, while caches fill) and the dashboards."""
        load = self.load
        warmup = min(WARMUP_SECONDS, load.seconds / 5)
        return {
            "seconds": round(load.elapsed, 1), "achieved_spans_per_s": round(load.sent / load.elapsed),
            "requests": sum(load.statuses.values()), "statuses": dict(sorted(load.statuses.items())),
            "errors_5xx": sum(n for status, n in load.statuses.items() if status.startswith("5")),
            "transport_errors": sum(n for status, n in load.statuses.items() if status.startswith("transport")),
            "latency_ms_p50": ms(percentile(load.latencies, 0.5)),
            "latency_ms_p99": ms(percentile(load.latencies, 0.99)),
            "latency_ms_max": ms(max(load.latencies, default=0.0)),
            "send_lateness_ms_p99": ms(percentile(load.lateness, 0.99)),
            "ingest_per_minute": load.per_minute(),
            "cpu_cores_busy": self.cpu_cores_busy,  # of os.cpu_count(); the rest of the machine is not counted
            "warmup_seconds": round(warmup),
            "server_rss_mib": MemorySampler.summary(self.memory.main, warmup),
            "server_with_ingest_workers_rss_mib": MemorySampler.summary(self.memory.tree, warmup),
            "memory_breakdown": self.memory.breakdowns,  # every 30 s: MiB, threads, parts
            "dashboards": self.poller.report(),
            "spans_answered_200": load.ok_spans,
        }


def run_phase(instance: Instance, args: argparse.Namespace, rate: float | None, seconds: float,
              first_number: int, rng: random.Random) -> Phase:
    """Send at ``rate`` spans/s (None: as fast as the server answers) for ``seconds``, while
    a signed-in user and a key read the dashboards and the serving process's memory is sampled."""
    load = IngestLoad(instance.port, instance.key, rate, args.batch, seconds, args.clients, [], first_number)
    refresher = TemplateRefresher(load, rng, args.distinct_payloads)
    refresher.make()
    poller = DashboardPoller(instance.port, instance.key, instance.username, instance.password, args.poll_seconds)
    memory = MemorySampler(instance.pid, instance.port)
    started = time.monotonic()
    memory.sample(started)
    threads = [threading.Thread(target=poller.run, daemon=True),
               threading.Thread(target=memory.run, args=(started,), daemon=True),
               threading.Thread(target=refresher.run, daemon=True)]
    for thread in threads:
        thread.start()
    cpu = CpuMeter(instance.pid)
    cpu.start()
    load.run()
    cpu.stop()
    poller.stop.set()
    refresher.stop.set()
    memory.sample(started)
    memory.stop.set()
    for thread in threads:
        thread.join(timeout=180)
    return Phase(load, poller, memory, cpu.per(load.elapsed))


# ---------------------------------------------------------------- main


def log_summary(path: Path) -> dict[str, Any]:
    """How many lines the server logged, how many were waitress's task-queue warnings, and a few others."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    queue_depth = [line for line in lines if "Task queue depth" in line]
    others = [line for line in lines if "Task queue depth" not in line]
    return {"lines": len(lines), "task_queue_depth_warnings": len(queue_depth), "other_samples": others[:5]}


def measure_capacity() -> dict[str, Any]:
    """Run bench/ingest.py (its default million spans) now, on this machine as it is, and return its JSON."""
    print("measuring capacity first: bench/ingest.py (about two minutes)", file=sys.stderr)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest.py")], cwd=ROOT, check=True,
                          stdout=subprocess.PIPE, text=True)
    measured: dict[str, Any] = json.loads(done.stdout)
    return measured


def measure_sustained_capacity(instance: Instance, args: argparse.Namespace,
                               rng: random.Random) -> tuple[float, dict[str, Any], int]:
    """The spans/s this server stores when sent as fast as it answers, for
    ``--capacity-minutes``, with the dashboards read as in the load: the rate after its
    first minute (the ramp: an empty store, cold caches). Returns it, the phase's report
    and the number of requests sent (the load's ids start after them)."""
    print(f"measuring sustained capacity first: {args.capacity_minutes:g} min as fast as the server answers",
          file=sys.stderr)
    phase = run_phase(instance, args, None, args.capacity_minutes * 60, 0, rng)
    capacity = phase.load.stored_per_second(CAPACITY_RAMP_SECONDS)
    report = phase.report()
    report.pop("memory_breakdown")
    return capacity, {"spans_per_s": round(capacity), "measured_after_seconds": CAPACITY_RAMP_SECONDS,
                      **report}, phase.load.requests_numbered


def fixed_rate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[float | None, dict[str, Any] | None]:
    """The spans/s to send and the capacity run it is a fraction of, when known before the
    server starts: ``--rate`` (no capacity run), or bench/ingest.py's figure (measured now
    with ``--measure-capacity``, or read from ``--capacity-json``). (None, None) with
    ``--sustained-capacity``: the rate is measured on the load's own server."""
    chosen = [args.rate is not None, args.capacity_json is not None, args.measure_capacity, args.sustained_capacity]
    if chosen.count(True) != 1:
        parser.error("give one of --rate (spans/s), --capacity-json (bench/ingest.py's output), --measure-capacity "
                     "or --sustained-capacity")
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    if args.sustained_capacity:
        if args.capacity_minutes * 60 <= CAPACITY_RAMP_SECONDS:
            parser.error(f"--capacity-minutes must be above {CAPACITY_RAMP_SECONDS / 60:g}: its first minute is the ramp")
        return None, None
    if args.rate is not None:
        if args.rate <= 0:
            parser.error("--rate must be above 0 spans/s")
        return args.rate, None
    if args.measure_capacity:
        measured = measure_capacity()
    else:
        try:
            measured = json.loads(Path(args.capacity_json).read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--capacity-json {args.capacity_json}: {exc}")
    if not isinstance(measured, dict) or not isinstance(measured.get("spans_per_s"), int | float):
        parser.error("the capacity run's JSON has no spans_per_s: is it bench/ingest.py's output?")
    return float(measured["spans_per_s"]) * args.fraction, {key: measured.get(key) for key in CAPACITY_FIGURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=None, help="spans per second")
    parser.add_argument("--capacity-json", default=None, help="bench/ingest.py's JSON output (its spans_per_s)")
    parser.add_argument("--measure-capacity", action="store_true",
                        help="run bench/ingest.py first and load at --fraction of what it measures")
    parser.add_argument("--sustained-capacity", action="store_true",
                        help="first send as fast as the server answers for --capacity-minutes, then load the same "
                             "server at --fraction of the rate it sustained")
    parser.add_argument("--capacity-minutes", type=float, default=3.0, help="with --sustained-capacity")
    parser.add_argument("--fraction", type=float, default=0.8, help="of the capacity, when one is measured or given")
    parser.add_argument("--batch", type=int, default=512, help="spans per request")
    parser.add_argument("--clients", type=int, default=48, help="connections sharing the send schedule")
    parser.add_argument("--poll-seconds", type=float, default=15.0, help="between two dashboard reads")
    parser.add_argument("--distinct-payloads", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.minutes <= 0 or args.batch <= 0 or args.clients <= 0 or args.poll_seconds <= 0:
        parser.error("--minutes, --batch, --clients and --poll-seconds must be above 0")
    rate, capacity = fixed_rate(args, parser)

    workdir = Path(tempfile.mkdtemp(prefix="thinkmeter-load-"))
    instance = Instance(workdir)
    rng = random.Random(11)
    try:
        instance.prepare()
        instance.start()
        print(f"server pid {instance.pid} on :{instance.port}", file=sys.stderr)
        first_number = 0
        if rate is None:
            sustained, capacity, first_number = measure_sustained_capacity(instance, args, rng)
            rate = sustained * args.fraction
        print(f"{rate:,.0f} spans/s for {args.minutes:g} min", file=sys.stderr)
        phase = run_phase(instance, args, rate, args.minutes * 60, first_number, rng)
        statements = clickhouse_statements(metric_values(instance.port))
        instance.stop()
        stored = instance.stored_spans()
        server_log = log_summary(instance.log_path)
    finally:
        instance.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    before = capacity.get("spans_answered_200", 0) if capacity else 0  # the --sustained-capacity run's
    report = {
        "bench": "load_ingest_with_dashboards",
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "minutes": args.minutes, "batch": args.batch, "clients": args.clients,
        "capacity_spans_per_s": capacity["spans_per_s"] if capacity else None,
        "capacity_run": capacity,
        "fraction": args.fraction if capacity else None,
        "target_spans_per_s": round(rate),
        **phase.report(),
        "spans_stored": stored,
        "spans_answered_200_with_capacity_run": before + phase.load.ok_spans,
        "server_log": server_log,
        "clickhouse_statements": statements,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    report["checks"] = checks(report)
    print(json.dumps(report, indent=2))
    if not report["checks"]["passed"]:
        failed = ", ".join(name for name, ok in report["checks"].items() if not ok)
        print(f"load test failed: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
