"""Ingest benchmark: OTLP/HTTP protobuf requests of 512 spans into `manage.py serve` (embedded mode).

Starts a fresh server (own chdb store and SQLite database under a temp dir), encodes
every request body up front (gzip-compressed protobuf, each with its own trace and
response ids so nothing dedups), then sends ``--spans`` spans from ``--clients``
concurrent keep-alive clients. A request is answered 200 only once its spans are
stored, so the clock stops when the last span is stored; the bench then checks that
they are queryable (``count()`` through the running server's store).

Prints one JSON object: sustained spans/s (overall and the slowest 10 s window),
request latency p50/p99, the serving process's resident memory (start, peak, end), CPU
seconds per span of the server (serving process and its ingest workers) and of the
bench client, the share of server time in decode / normalize / price / dedup / insert
(from /metrics), the load average, and the stored row count.

Spans are live traffic by default: each started within the ``--spread-seconds`` (300)
before the run, as an SDK's batch exporter sends them seconds after they end. Late or
back-filled data (``--spread-seconds 259200``: three days) costs more per span: the
in-memory dedup index only vouches for spans newer than the oldest one it has seen or
evicted, so a batch reaching further back is checked against ClickHouse too, and the
rollups get more groups per insert.

    .venv/bin/python bench/ingest.py --spans 1000000 --clients 48
    .venv/bin/python bench/ingest.py --spans 1000000 --clients 48 --spread-seconds 259200
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

MODELS = [("openai", "o3-mini-2025-01-31"), ("openai", "gpt-4.1-mini"), ("anthropic", "claude-sonnet-4-5"),
          ("google", "gemini-2.5-pro"), ("openai", "o3")]
TASKS = ["classification", "extraction", "summarization", "customer_support", "code_generation", "math_reasoning"]
MARKER = b"\xfe\xed\xfa\xce"
WINDOW_S = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


LIVE_SPREAD_S = 300


def make_payload(rng: random.Random, spans: int, spread_s: float = LIVE_SPREAD_S) -> bytes:
    """One request: traces of 1 root + 3 LLM spans, realistic GenAI attributes, started
    within the ``spread_s`` seconds before now.

    Trace ids start with MARKER and response ids with its hex, so :func:`distinct`
    can give each copy new ids with two byte replacements.
    """
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "bench-app"), kv("deployment.environment", "production"),
                                   kv("telemetry.sdk.language", "python")])
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai"
    now = time.time_ns()
    made = 0
    while made < spans:
        trace_id = MARKER + rng.randbytes(12)
        root_id = rng.randbytes(8)
        start = now - rng.randrange(0, max(int(spread_s * 10**9), 1))
        root = Span(trace_id=trace_id, span_id=root_id, name="handle_request", kind=Span.SPAN_KIND_SERVER,
                    start_time_unix_nano=start, end_time_unix_nano=start + 4 * 10**9)
        root.attributes.extend([kv("http.route", "/chat"), kv("user.id", f"user-{rng.randrange(200)}")])
        ss.spans.append(root)
        made += 1
        for i in range(min(3, spans - made)):
            provider, model = rng.choice(MODELS)
            s = Span(trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=root_id, name=f"chat {model}",
                     kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + i * 10**9,
                     end_time_unix_nano=start + i * 10**9 + rng.randrange(200, 900) * 10**6)
            output = rng.randrange(50, 4000)
            s.attributes.extend([
                kv("gen_ai.system", provider), kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.request.model", model), kv("gen_ai.response.model", model),
                kv("gen_ai.response.id", MARKER.hex() + rng.randbytes(8).hex()),
                kv("gen_ai.usage.input_tokens", rng.randrange(100, 8000)),
                kv("gen_ai.usage.output_tokens", output),
                kv("gen_ai.usage.reasoning_tokens", rng.randrange(0, output)),
                kv("gen_ai.usage.cache_read_input_tokens", rng.randrange(0, 100)),
                kv("thinkmeter.task_type", rng.choice(TASKS)), kv("thinkmeter.tier", rng.randrange(1, 4)),
                kv("thinkmeter.thinking_budget", rng.choice([0, 4000, 10000])),
                kv("gen_ai.request.temperature", "1.0"), kv("session.id", f"s-{rng.randrange(5000)}"),
            ])
            ss.spans.append(s)
            made += 1
    return request.SerializeToString()


SALT_MULTIPLIER = 0x9E3779B1  # odd: multiplying by it is a bijection of 32-bit numbers


def salt(number: int) -> bytes:
    """Four bytes that differ for every ``number`` below 2**32 and look random in their
    leading bits, as the leading bytes of real trace ids are (W3C trace ids are random).
    Thinkmeter samples traces by the leading hex digits of their ids (``sampled_calls``,
    the Engineering page's call sample): ids that start with the request number (zeros)
    put every trace in the sample and made the benchmark 32 times too heavy there."""
    return ((number * SALT_MULTIPLIER) & 0xFFFFFFFF).to_bytes(4, "big")


def distinct(template: bytes, number: int) -> bytes:
    """Copy ``number`` of a payload: new trace and response ids (a distinct call), gzip-compressed."""
    salt_bytes = salt(number)
    body = template.replace(MARKER, salt_bytes).replace(MARKER.hex().encode(), salt_bytes.hex().encode())
    return gzip.compress(body, compresslevel=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_status(pid: int) -> dict[str, int]:
    """The numeric fields of ``/proc/<pid>/status`` (sizes in KiB): VmRSS, RssAnon, RssFile, Threads..."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        words = value.split()
        if words and words[0].isdigit():
            out[name] = int(words[0])
    return out


def rss_kib(pid: int) -> int:
    return process_status(pid).get("VmRSS", 0)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the serving process and its ingest workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds spent from :meth:`start` to :meth:`stop` by the serving process, its ingest
    workers (its descendants, counted at the stop) and this benchmark's own process."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seconds: dict[str, float] = {}

    @staticmethod
    def own_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self._before = {pid: cpu_seconds(pid) for pid in process_tree(self.server_pid)}
        self._own_before = self.own_seconds()

    def stop(self) -> dict[str, float]:
        after = {pid: cpu_seconds(pid) for pid in process_tree(self.server_pid)}
        server = sum(after[pid] - self._before.get(pid, 0.0) for pid in after)
        serving = after.get(self.server_pid, 0.0) - self._before.get(self.server_pid, 0.0)
        self.seconds = {"server_total": server, "serving_process": serving, "ingest_workers": server - serving,
                        "bench_client": self.own_seconds() - self._own_before}
        return self.seconds

    def per(self, amount: float, scale: float = 1.0) -> dict[str, float]:
        """Each part's CPU seconds divided by ``amount`` (spans: CPU per span; seconds: cores busy)."""
        return {part: round(seconds / amount * scale, 2) for part, seconds in self.seconds.items()}


def metric_values(port: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    values: dict[str, float] = {}
    for match in re.finditer(r'^thinkmeter_ingest_stage_seconds_total\{stage="(\w+)"\} ([0-9.e+-]+)$', text, re.M):
        values[f"stage.{match.group(1)}"] = float(match.group(2))
    for match in re.finditer(r'^thinkmeter_clickhouse_query_seconds_(count|sum)\{tag="([^"]+)"\} ([0-9.e+-]+)$', text, re.M):
        values[f"query_{match.group(1)}.{match.group(2)}"] = float(match.group(3))
    for name in ("thinkmeter_spans_stored_total", "thinkmeter_insert_seconds_count", "thinkmeter_insert_seconds_sum",
                 "thinkmeter_clickhouse_allocator_resident_bytes"):
        found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
        if found:
            values[name] = float(found.group(1))
    for match in re.finditer(r'^thinkmeter_clickhouse_engine\{metric="(\w+)"\} ([0-9.e+-]+)$', text, re.M):
        values[f"engine.{match.group(1)}"] = float(match.group(2))
    for match in re.finditer(r'^thinkmeter_process_allocator_bytes\{allocator="(\w+)",kind="(\w+)"\} ([0-9.e+-]+)$',
                             text, re.M):
        values[f"allocator.{match.group(1)}_{match.group(2)}"] = float(match.group(3))
    return values


def start_server(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``manage.py serve`` with its output in ``log_path``.

    Never a pipe nobody reads: once its 64 KiB filled, the server's next log line (waitress
    warns about its task queue depth under load) would block its main thread, and with it
    every connection.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def clickhouse_statements(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per statement tag: how many ran and their seconds (from :func:`metric_values`)."""
    return {key.split(".", 1)[1]: {"count": int(count), "seconds": round(metrics[f"query_sum.{key.split('.', 1)[1]}"], 2)}
            for key, count in sorted(metrics.items()) if key.startswith("query_count.")}


def wait_for_port(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    for _ in range(300):
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"server exited with {server.returncode}: {tail}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start listening within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=48,
                        help="concurrent exporters; each waits for its spans to be stored, so the writer can batch"
                             " at most clients x batch spans into one insert")
    parser.add_argument("--distinct-payloads", type=int, default=32, help="templates the request bodies are made from")
    parser.add_argument("--server-threads", type=int, default=None,
                        help="waitress threads of the server (default: clients + 8, so no request queues for one)")
    parser.add_argument("--spread-seconds", type=float, default=LIVE_SPREAD_S,
                        help="spans started within this many seconds before the run (default: live traffic)")
    parser.add_argument("--ingest-processes", type=int, default=None, help="passed to manage.py serve")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store (for inspection)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="thinkmeter-bench-"))
    env = {**os.environ, "CLICKHOUSE_URL": f"chdb://{workdir}/clickhouse",
           "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3", "THINKMETER_GRPC_PORT": "0",
           "THINKMETER_RATE_LIMIT_PER_SECOND": "100000", "THINKMETER_LOG_LEVEL": "WARNING"}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run([py, "manage.py", "create_project", "bench"], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]

    requests_total = (args.spans + args.batch - 1) // args.batch
    print(f"encoding {requests_total:,} request bodies", file=sys.stderr)
    rng = random.Random(7)
    templates = [make_payload(rng, args.batch, args.spread_seconds) for _ in range(args.distinct_payloads)]
    bodies = [distinct(templates[i % len(templates)], i) for i in range(requests_total)]
    del templates

    port = free_port()
    threads = args.server_threads or args.clients + 8
    command = [py, "manage.py", "serve", "--port", str(port), "--threads", str(threads)]
    if args.ingest_processes is not None:
        command += ["--ingest-processes", str(args.ingest_processes)]
    server_log = workdir / "server.log"
    server = start_server(command, env, server_log)
    try:
        wait_for_port(port, server, server_log)
        print(f"server pid {server.pid} on :{port}", file=sys.stderr)
        cpu = CpuMeter(server.pid)
        cpu.start()
        rss_start = rss_kib(server.pid)
        peak = [rss_start]
        latencies: list[float] = []
        errors: list[str] = []
        counter = iter(range(requests_total))
        lock = threading.Lock()
        sent = [0]
        samples: list[tuple[float, int]] = []
        loads: list[float] = []

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
            headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                       "Authorization": f"Bearer {key}"}
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                conn.request("POST", "/v1/traces", body=bodies[i], headers=headers)
                response = conn.getresponse()
                response.read()
                latencies.append(time.perf_counter() - t0)
                if response.status != 200:
                    errors.append(str(response.status))
                with lock:
                    sent[0] += 1

        def watch() -> None:
            while any(t.is_alive() for t in threads):
                peak[0] = max(peak[0], rss_kib(server.pid))
                now = time.perf_counter()
                done = sent[0] * args.batch
                samples.append((now, done))
                loads.append(os.getloadavg()[0])
                print(f"\r{done:,}/{args.spans:,} spans  {done / max(now - started, 1e-9):,.0f}/s  "
                      f"rss {peak[0] // 1024} MiB", end="", file=sys.stderr)
                time.sleep(0.5)

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        watcher = threading.Thread(target=watch)
        watcher.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        watcher.join()
        print(file=sys.stderr)
        cpu.stop()
        metrics = metric_values(port)
        rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=120)
    stored = subprocess.run(
        [py, "-c", "import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','thinkmeter.settings');"
         "django.setup();import json;from thinkmeter import clickhouse as c;"
         "print(json.dumps(c.execute('SELECT count() AS n, sum(counted) AS c FROM spans', tag='bench.count',"
         " system=True)[0]))"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    counts = json.loads(stored.splitlines()[-1])
    spans_sent = requests_total * args.batch
    stages = {k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith("stage.")}
    total_stage = sum(stages.values()) or 1.0
    latencies.sort()
    print(json.dumps({
        "bench": "ingest_otlp_http_protobuf",
        "command": " ".join(["bench/ingest.py", *sys.argv[1:]]),
        "spread_seconds": args.spread_seconds,
        "spans_sent": spans_sent, "spans_stored": int(counts["n"]), "spans_counted": int(counts["c"]),
        "requests": requests_total, "batch": args.batch, "clients": args.clients, "errors": len(errors),
        "seconds": round(elapsed, 2), "spans_per_s": round(spans_sent / elapsed),
        "slowest_10s_window_spans_per_s": slowest_window(samples, args.batch),
        "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1),
        "latency_ms_p99": round(latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000, 1),
        "server_rss_mib": {"start": rss_start // 1024, "peak": peak[0] // 1024, "end": rss_end // 1024},
        "cpu_us_per_span": cpu.per(spans_sent, scale=1e6),
        "inserts": int(metrics.get("thinkmeter_insert_seconds_count", 0)),
        "insert_seconds_mean": round(metrics.get("thinkmeter_insert_seconds_sum", 0.0)
                                     / max(metrics.get("thinkmeter_insert_seconds_count", 0.0), 1.0), 3),
        "stage_share": {k: round(v / total_stage, 3) for k, v in sorted(stages.items())},
        "clickhouse_statements": clickhouse_statements(metrics),
        "stage_seconds": {k: round(v, 2) for k, v in sorted(stages.items())},
        "load_average": {"during_mean": round(sum(loads) / max(len(loads), 1), 2),
                         "during_max": round(max(loads, default=0.0), 2), "cpus": os.cpu_count()},
    }, indent=2))


def slowest_window(samples: list[tuple[float, int]], batch: int) -> int | None:
    """Lowest spans/s over any WINDOW_S stretch of the run (None when the run was shorter)."""
    if not samples or samples[-1][0] - samples[0][0] < WINDOW_S:
        return None
    worst = None
    j = 0
    for i, (t_end, done_end) in enumerate(samples):
        while samples[j + 1][0] <= t_end - WINDOW_S:
            j += 1
        if t_end - samples[j][0] >= WINDOW_S and i > j:
            rate = (done_end - samples[j][1]) / (t_end - samples[j][0])
            worst = rate if worst is None else min(worst, rate)
    return None if worst is None else round(worst)


if __name__ == "__main__":
    main()
