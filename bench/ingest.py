"""Ingest benchmark: OTLP/HTTP protobuf requests of 512 spans into `manage.py serve` (embedded mode).

Starts a fresh server (own chdb store and SQLite database under a temp dir), sends
``--spans`` spans from ``--clients`` concurrent keep-alive clients, and prints one JSON
object: sustained spans/s, request latency p50/p99, the server's resident memory
(start, peak, end), the share of server time in decode / normalize / price / dedup /
insert (from /metrics), and the stored row count checked after the server stops.

    .venv/bin/python bench/ingest.py --spans 1000000 --clients 4
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import re
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


def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


MARKER = b"\xfe\xed\xfa\xce"


def make_payload(rng: random.Random, spans: int) -> bytes:
    """One request: traces of 1 root + 3 LLM spans, realistic GenAI attributes."""
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
        start = now - rng.randrange(0, 3 * 86400 * 10**9)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stage_seconds(port: int) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    stages = {}
    for match in re.finditer(r'^thinkmeter_ingest_stage_seconds_total\{stage="(\w+)"\} ([0-9.e+-]+)$', text, re.M):
        stages[match.group(1)] = float(match.group(2))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--distinct-payloads", type=int, default=64)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="thinkmeter-bench-"))
    env = {**os.environ, "CLICKHOUSE_URL": f"chdb://{workdir}/clickhouse",
           "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3", "THINKMETER_GRPC_PORT": "0",
           "THINKMETER_RATE_LIMIT_PER_SECOND": "100000", "THINKMETER_LOG_LEVEL": "WARNING"}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run([py, "manage.py", "create_project", "bench"], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([py, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        print(f"server pid {server.pid} on :{port}; building payloads", file=sys.stderr)
        # Payloads differ in ids on every send: mutate trace ids per request so nothing dedups.
        rng = random.Random(7)
        templates = [make_payload(rng, args.batch) for _ in range(args.distinct_payloads)]
        requests_total = (args.spans + args.batch - 1) // args.batch
        rss_start = rss_kib(server.pid)
        peak = [rss_start]
        latencies: list[float] = []
        errors: list[str] = []
        counter = iter(range(requests_total))
        lock = threading.Lock()
        sent = [0]

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            local_rng = random.Random(threading.get_ident())
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body = fresh_ids(templates[i % len(templates)], local_rng)
                t0 = time.perf_counter()
                conn.request("POST", "/v1/traces", body=body, headers={
                    "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                    "Authorization": f"Bearer {key}"})
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
                done = sent[0] * args.batch
                print(f"\r{done:,}/{args.spans:,} spans  {done / max(time.perf_counter() - started, 1e-9):,.0f}/s",
                      end="", file=sys.stderr)
                time.sleep(1)

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
        stages = stage_seconds(port)
        rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    env_check = {**env}
    stored = subprocess.run(
        [py, "-c", "import django,os;os.environ.setdefault('DJANGO_SETTINGS_MODULE','thinkmeter.settings');"
         "django.setup();from thinkmeter import clickhouse as c;"
         "print(c.execute('SELECT count() AS n FROM spans', tag='bench.count', system=True)[0]['n'])"],
        cwd=ROOT, env=env_check, capture_output=True, text=True, check=True).stdout.strip()
    latencies.sort()
    total_stage = sum(stages.values()) or 1.0
    spans_sent = requests_total * args.batch
    print(json.dumps({
        "bench": "ingest_otlp_http_protobuf",
        "spans_sent": spans_sent, "spans_stored": int(stored), "requests": requests_total,
        "batch": args.batch, "clients": args.clients, "errors": len(errors),
        "seconds": round(elapsed, 2), "spans_per_s": round(spans_sent / elapsed),
        "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "server_rss_mib": {"start": rss_start // 1024, "peak": peak[0] // 1024, "end": rss_end // 1024},
        "stage_share": {k: round(v / total_stage, 3) for k, v in sorted(stages.items())},
        "stage_seconds": {k: round(v, 2) for k, v in sorted(stages.items())},
    }, indent=2))


def fresh_ids(template: bytes, rng: random.Random) -> bytes:
    """Give a payload new trace and response ids (so repeated sends are distinct calls), gzip it."""
    salt = rng.randbytes(4)
    while salt == MARKER or MARKER.hex().encode() in salt.hex().encode():
        salt = rng.randbytes(4)
    body = template.replace(MARKER, salt).replace(MARKER.hex().encode(), salt.hex().encode())
    return gzip.compress(body, compresslevel=1)


if __name__ == "__main__":
    main()
