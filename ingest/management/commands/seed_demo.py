"""``manage.py seed_demo``: send realistic demo traffic through the real OTLP/HTTP ingest path.

    manage.py seed_demo [--days 30] [--spans 20000] [--project demo] [--seed 42]
                        [--url URL --key KEY] [--if-empty]

The traffic comes from :mod:`ingest.demo` (deterministic for a seed) and goes out as
gzip'd OTLP/HTTP protobuf POSTs to ``/v1/traces``, about 512 spans per request, several
requests in flight. Without ``--url`` the command serves Thinkmeter's own WSGI app under
waitress on an ephemeral 127.0.0.1 port inside this process (embedded chdb admits one
process) and posts to it, with the given ``--key`` or a temporary ingest key for the
project (created, like ``bootstrap`` does, when missing) that is revoked afterwards. With
``--url`` it posts to a running server and ``--key`` is required.

``--if-empty`` does nothing when the project already has spans (``make run`` uses it).
Progress goes to stderr; one summary line goes to stdout.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import demo
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM, ClickHouseError
from thinkmeter.models import ApiKey, Organization, Project

log = logging.getLogger(__name__)
COUNT_SQL = f"SELECT count() AS spans FROM spans WHERE project_id IN {PROJECT_PARAM}"
# What the run stored, for the summary: rows ingested since the run began that carry usage.
STORED_SQL = f"""
SELECT count() AS calls, sum(cost_total) AS cost, countIf(NOT priced) AS unpriced
FROM spans
WHERE project_id IN {PROJECT_PARAM}
  AND counted = 1
  AND ingested_at >= fromUnixTimestamp64Milli({{since_ms:Int64}})
"""
RETRYABLE = {429, 500, 502, 503, 504}
MAX_TRIES = 8
MAX_RETRY_WAIT_S = 10.0


class SendError(Exception):
    """The server refused a batch for good (or kept failing after every retry)."""


def _server_message(response: httpx.Response) -> str:
    """The google.rpc.Status message of an OTLP error answer, else the start of the body."""
    if response.headers.get("content-type", "").startswith("application/x-protobuf"):
        try:
            return status_pb2.Status.FromString(response.content).message or f"HTTP {response.status_code}"
        except DecodeError:
            pass
    return response.text[:300] or f"HTTP {response.status_code}"


class Sender:
    """POSTs gzip'd OTLP protobuf bodies to ``<url>/v1/traces``, retrying what OTLP says to retry."""

    def __init__(self, url: str, key: str, connections: int) -> None:
        self.endpoint = url.rstrip("/") + "/v1/traces"
        self.client = httpx.Client(
            timeout=httpx.Timeout(180.0, connect=10.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "gzip",
                "User-Agent": "thinkmeter-seed-demo",
            },
        )

    def post(self, body: bytes) -> int:
        """Send one request; return the spans the server rejected (partial success)."""
        last = ""
        for attempt in range(MAX_TRIES):
            try:
                response = self.client.post(self.endpoint, content=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(min(0.25 * 2**attempt, MAX_RETRY_WAIT_S))
                continue
            if response.status_code == 200:
                answer = ExportTraceServiceResponse.FromString(response.content)
                return int(answer.partial_success.rejected_spans)
            last = f"HTTP {response.status_code}: {_server_message(response)}"
            if response.status_code not in RETRYABLE:
                raise SendError(f"{self.endpoint} answered {last}")
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.25 * 2**attempt
            time.sleep(min(wait, MAX_RETRY_WAIT_S))
        raise SendError(f"{self.endpoint} kept failing after {MAX_TRIES} tries; last answer: {last}")

    def close(self) -> None:
        self.client.close()


class InProcessServer:
    """Thinkmeter's WSGI app under waitress on an ephemeral 127.0.0.1 port, in a thread of this process."""

    def __init__(self, threads: int) -> None:
        from waitress.server import create_server

        from thinkmeter.wsgi import application

        self._server: Any = create_server(
            application, host="127.0.0.1", port=0, threads=threads, ident="thinkmeter-seed-demo",
            max_request_body_size=settings.OTLP_MAX_BODY_BYTES + 1024 * 1024, channel_timeout=120,
        )
        self.url = f"http://127.0.0.1:{self._server.effective_port}"
        self._thread = threading.Thread(target=self._server.run, name="seed-demo-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        from waitress import wasyncore

        # Close every channel from inside the server's loop thread; the loop ends when none is left.
        try:
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._server._map))
        except OSError as exc:  # the wake-up pipe is gone (seen once in a full test run): close from here
            log.warning("seed_demo: could not wake the in-process server (%s); closing its channels directly", exc)
            # Its descriptor numbers were closed elsewhere and may belong to something else by
            # now: the trigger must not close them a second time.
            self._server.trigger._fds = []
            wasyncore.close_all(self._server._map, ignore_all=True)
        self._thread.join(timeout=10)
        self._server.task_dispatcher.shutdown(timeout=10)


class Progress:
    """Spans acknowledged so far, with a rate: a live bar on a terminal, a line per 10% otherwise."""

    def __init__(self, stream: OutputWrapper, total: int, live: bool) -> None:
        self.stream, self.total, self.live = stream, total, live
        self.done = 0
        self.started = time.perf_counter()
        self._shown_at = 0.0
        self._next_step = 10
        self._lock = threading.Lock()

    def advance(self, spans: int) -> None:
        with self._lock:
            self.done += spans
            now = time.perf_counter()
            percent = min(100, int(100 * self.done / self.total)) if self.total else 100
            if self.live:
                if now - self._shown_at < 0.2 and self.done < self.total:
                    return
                self._shown_at = now
                bar = "#" * (percent // 4)
                self.stream.write(f"\rseed_demo [{bar:<25}] {percent:3d}%  {self.line(now)}", ending="")
                self.stream.flush()
            elif percent >= self._next_step:
                self._next_step = (percent // 10 + 1) * 10
                self.stream.write(f"seed_demo {percent:3d}%  {self.line(now)}")
                self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return f"{self.done:,}/{self.total:,} spans  {self.done / elapsed:,.0f} spans/s"

    def finish(self) -> None:
        if self.live and self.done:
            self.stream.write("")


@dataclass
class Outcome:
    totals: demo.Totals
    elapsed: float


def generated(
    spans: int, days: int, seed: int, end: datetime, batch_spans: int, inline: bool
) -> Generator[demo.Encoded, None, None]:
    """Encoded request bodies, made by a spawned helper process (or here, with ``inline``).

    The helper keeps generation off this process's GIL, which the in-process server and
    the senders need; the queue between them is bounded, so memory stays flat.
    """
    if inline:
        yield from demo.encoded_batches(spans, days, seed, end, batch_spans)
        return
    context = multiprocessing.get_context("spawn")
    out: Any = context.Queue(maxsize=8)
    process = context.Process(target=demo.produce, args=(out, spans, days, seed, end, batch_spans),
                              name="seed-demo-generator", daemon=True)
    process.start()
    try:
        while True:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    raise SendError(f"the traffic generator process exited with code {process.exitcode}") from None
                continue
            if item is None:
                return
            if isinstance(item, str):
                raise SendError(f"the traffic generator failed: {item}")
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)
        out.close()
        out.cancel_join_thread()


def send_all(sender: Sender, bodies: Iterable[demo.Encoded], concurrency: int, progress: Progress) -> Outcome:
    """Send the bodies with ``concurrency`` requests in flight; stop at the first batch that fails for good."""
    totals = demo.Totals()
    work: queue.Queue[demo.Encoded | None] = queue.Queue(maxsize=concurrency)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            item = work.get()
            if item is None:
                return
            if errors:
                continue  # drain after a failure
            try:
                rejected = sender.post(item.body)
            except SendError as exc:
                errors.append(exc)
                continue
            except Exception as exc:  # reported by the main thread, with what went wrong
                errors.append(SendError(f"{type(exc).__name__}: {exc}"))
                continue
            with lock:
                totals.add(item, rejected)
            progress.advance(item.spans)

    threads = [threading.Thread(target=worker, name=f"seed-demo-sender-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        for item in bodies:
            if errors:
                break
            work.put(item)
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return Outcome(totals, time.perf_counter() - started)


def demo_project(slug: str) -> tuple[Project, bool]:
    """The project to seed, created with its organization when missing (as ``bootstrap`` does for "demo")."""
    project = Project.objects.filter(slug=slug).first()
    if project is not None:
        return project, False
    org_name, project_name = ("Demo organization", "Demo project") if slug == "demo" else (slug, slug)
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": org_name})
    return Project.objects.create(organization=org, slug=slug, name=project_name), True


def stored_spans(project: Project) -> int:
    rows = clickhouse.execute(COUNT_SQL, tag="seed_demo.if_empty", projects=[project.pk])
    return int(rows[0]["spans"]) if rows else 0


def parse_end(text: str) -> datetime:
    """``--end``: an ISO 8601 time, taken as UTC without an offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (for example 2026-11-23T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Send realistic demo LLM traffic through the OTLP/HTTP ingest path (in-process server unless --url)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="spread the traffic over this many days back from now")
        parser.add_argument("--spans", type=int, default=20000, help="about this many spans (whole traces)")
        parser.add_argument("--project", default="demo", help="project slug (created if missing; default demo)")
        parser.add_argument("--url", default=None, help="base URL of a running Thinkmeter; default: in-process")
        parser.add_argument("--key", default=None, help="project API key with the ingest scope (required with --url)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the project already has spans")
        parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same traffic shape)")
        parser.add_argument("--end", type=parse_end, default=None,
                            help="the traffic ends at this ISO 8601 time (UTC unless it says otherwise; default: now);"
                                 " the same seed and end give the same traffic")
        parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
        parser.add_argument("--batch-spans", type=int, default=512, help="spans per request (default 512)")
        parser.add_argument("--inline", action="store_true",
                            help="generate the traffic in this process rather than in a helper process")

    def handle(self, *args: Any, **options: Any) -> None:
        days, spans = options["days"], options["spans"]
        concurrency, batch_spans = options["concurrency"], options["batch_spans"]
        url, key = options["url"], options["key"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        if spans < 1:
            raise CommandError("--spans must be at least 1")
        if not 1 <= concurrency <= 64:
            raise CommandError("--concurrency must be between 1 and 64")
        if batch_spans < 1:
            raise CommandError("--batch-spans must be at least 1")
        if url is not None and not key:
            raise CommandError("--key is required with --url (a project API key with the ingest scope)")
        if url is not None and not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must start with http:// or https://, not {url!r}")

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" while all threads work
        project = self._project(options["project"], key, create=url is None)
        if url is None:
            self._check_store()
        if options["if_empty"]:
            if project is None:
                raise CommandError(
                    f"--if-empty: no local project {options['project']!r} to look at; drop --if-empty or seed locally"
                )
            try:
                existing = stored_spans(project)
            except ClickHouseError as exc:
                raise CommandError(f"--if-empty could not count the project's spans: {exc}") from exc
            if existing:
                self.stdout.write(f"seed_demo: project {project.slug} already has {existing:,} spans; nothing sent")
                return

        temporary: ApiKey | None = None
        server: InProcessServer | None = None
        sender: Sender | None = None
        bodies: Generator[demo.Encoded, None, None] | None = None
        progress = Progress(self.stderr, spans, live=self.stderr.isatty())
        since_ms = int(time.time() * 1000) - 1000
        try:
            if url is None:
                assert project is not None
                if not key:
                    temporary, key = ApiKey.issue(project, scopes=("ingest",), name="seed_demo (temporary)")
                server = InProcessServer(threads=concurrency + 2)
                url = server.url
            sender = Sender(url, key, concurrency)
            end = options["end"] or datetime.now(UTC)
            bodies = generated(spans, days, options["seed"], end, batch_spans, options["inline"])
            outcome = send_all(sender, bodies, concurrency, progress)
        except SendError as exc:
            raise CommandError(f"seed_demo stopped: {exc}") from exc
        finally:
            progress.finish()
            if bodies is not None:
                bodies.close()  # stops the generator process if it is still running
            if sender is not None:
                sender.close()
            if server is not None:
                server.stop()
            if temporary is not None:
                temporary.revoke()
        self.stdout.write(self._summary(outcome, project if server is not None else None, since_ms, days,
                                        options["project"] if project is None else project.slug))

    def _project(self, slug: str, key: str | None, create: bool) -> Project | None:
        """The project the traffic lands in: the key's when this installation knows the key, else ``--project``.

        Seeding in-process needs a known key (or none: then the project is created when missing);
        seeding a remote server may use a key this installation does not know.
        """
        if key:
            found = ApiKey.lookup(key)
            if found is not None:
                if found.project.slug != slug:
                    self.stderr.write(f"seed_demo: sending to the key's project {found.project.slug!r}")
                return found.project
            if create:
                raise CommandError("--key is not a valid, unrevoked API key of this installation")
            return Project.objects.filter(slug=slug).first()
        project, created = demo_project(slug)
        if created:
            self.stderr.write(f"seed_demo: created organization and project {slug!r}")
        return project

    def _check_store(self) -> None:
        """Open the embedded store now, so a store held by a running server fails early and clearly."""
        from thinkmeter.clickhouse import schema

        try:
            pending = schema.pending()
        except ClickHouseError as exc:
            raise CommandError(
                f"cannot open ClickHouse ({exc}). If a Thinkmeter server holds the embedded store, "
                "seed through it: seed_demo --url http://127.0.0.1:8000 --key <project key>"
            ) from exc
        if pending:
            raise CommandError(f"ClickHouse migrations not applied: {', '.join(pending)}; run `manage.py migrate`")

    def _summary(self, outcome: Outcome, project: Project | None, since_ms: int, days: int, slug: str) -> str:
        t = outcome.totals
        rate = t.spans / outcome.elapsed if outcome.elapsed > 0 else 0.0
        line = (
            f"seed_demo: sent {t.spans:,} spans in {t.requests:,} requests ({t.traces:,} traces, "
            f"{t.llm_calls:,} LLM calls, {t.runaways} runaway) to project {slug} over {days} days "
            f"in {outcome.elapsed:.1f} s ({rate:,.0f} spans/s)"
        )
        if t.rejected:
            line += f"; {t.rejected:,} spans rejected"
        if project is not None:
            try:
                rows = clickhouse.execute(STORED_SQL, {"since_ms": since_ms}, tag="seed_demo.summary",
                                          projects=[project.pk])
            except ClickHouseError:
                rows = []
            if rows and rows[0]["calls"]:
                cost = Decimal(rows[0]["cost"] or 0).quantize(Decimal("0.01"))
                line += f"; cost ${cost:,} ({rows[0]['unpriced']:,} calls unpriced)"
        return line
