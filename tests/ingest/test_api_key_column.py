"""``spans.api_key_id``: every stored span records the API key that sent it.

Spans go through the real receivers (OTLP/HTTP with Django's test client, OTLP/gRPC
with the OTel gRPC exporter on a free port, ``manage.py seed_demo`` through its own
in-process HTTP server) and the worker-process entry point of :mod:`ingest.parallel`;
what they check is read back from the spans table. The migration itself
(``0004_api_key``) is checked on a fresh chdb store that already holds spans written
before it, in a subprocess (chdb opens one store per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from django.core.management import call_command
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ingest import parallel, rows, writer
from ingest.grpc_server import RunningReceiver, start_receiver
from tests.ingest.otlp_builders import llm_span, make_request, post_spans, stored_spans
from thinkmeter.clickhouse import PROJECT_PARAM
from thinkmeter.models import ApiKey, Project

REPO = Path(__file__).resolve().parents[2]


def two_keys(project: Project) -> tuple[tuple[ApiKey, str], tuple[ApiKey, str]]:
    return (ApiKey.issue(project, scopes=("ingest",), name="backend"),
            ApiKey.issue(project, scopes=("ingest",), name="batch-jobs"))


def key_of_each_span(project: Project) -> dict[str, int]:
    return {r["span_id"]: r["api_key_id"] for r in stored_spans(project.pk, "span_id, api_key_id")}


def test_rows_schema_has_the_column_where_the_table_does(ch: ModuleType) -> None:
    described = ch.execute(
        "SELECT name, type, default_kind, default_expression FROM system.columns "
        "WHERE database = currentDatabase() AND table = 'spans' ORDER BY position",
        tag="tests.api_key.columns", system=True,
    )
    names = [r["name"] for r in described]
    assert names[:2] == ["project_id", "api_key_id"]
    column = described[1]
    assert (column["type"], column["default_kind"], column["default_expression"]) == ("UInt32", "DEFAULT", "0")
    # Every column the ingest path writes exists, in the table's order (ingested_at is the table's own default).
    assert list(rows.COLUMNS) == [n for n in names if n in set(rows.COLUMNS)]
    assert set(names) - set(rows.COLUMNS) == {"ingested_at"}
    assert str(rows.SCHEMA.field("api_key_id").type) == "uint32"


@pytest.mark.django_db
def test_http_spans_carry_the_id_of_the_key_that_sent_them(client: Any, ch: ModuleType, project: Project) -> None:
    (first, first_secret), (second, second_secret) = two_keys(project)
    a = [llm_span("o3", reasoning_tokens=100 + i) for i in range(3)]
    b = [llm_span("o3", reasoning_tokens=200 + i) for i in range(2)]
    post_spans(client, first_secret, a)
    post_spans(client, second_secret, b)

    stored = key_of_each_span(project)
    assert stored == {**{s["span_id"]: first.pk for s in a}, **{s["span_id"]: second.pk for s in b}}
    assert first.pk != second.pk and 0 not in stored.values()


@pytest.fixture
def receiver() -> Iterator[RunningReceiver]:
    running = start_receiver("127.0.0.1:0", workers=2)
    yield running
    running.server.stop(0).wait()


def sdk_spans(count: int, service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.api_key")
    for i in range(count):
        with tracer.start_as_current_span("chat o3") as span:
            span.set_attributes({"gen_ai.provider.name": "openai", "gen_ai.request.model": "o3",
                                 "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 20 + i})
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.django_db(transaction=True)
def test_grpc_spans_carry_the_id_of_the_key_that_sent_them(
    receiver: RunningReceiver, ch: ModuleType, project: Project
) -> None:
    (first, first_secret), (second, second_secret) = two_keys(project)
    expected: dict[str, int] = {}
    for key, secret, count in ((first, first_secret, 3), (second, second_secret, 2)):
        spans = sdk_spans(count, f"svc-{key.name}")
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True,
                                    headers={"authorization": f"Bearer {secret}"})
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        expected.update({f"{s.context.span_id:016x}": key.pk for s in spans})

    assert key_of_each_span(project) == expected
    assert set(expected.values()) == {first.pk, second.pk}


@pytest.mark.django_db
def test_worker_process_entry_point_records_the_key(ch: ModuleType, project: Project) -> None:
    """What a worker of ``manage.py serve`` runs (:func:`ingest.parallel._prepare`) keeps the key id."""
    (first, _), _ = two_keys(project)
    spans = [llm_span("o3", reasoning_tokens=50) for _ in range(2)]
    body = make_request(spans).SerializeToString()
    ipc, rejected, _, _ = parallel._prepare(project.pk, body, "application/x-protobuf", "", first.pk)
    table = pa.ipc.open_stream(ipc).read_all()
    assert rejected == 0 and table.column("api_key_id").to_pylist() == [first.pk, first.pk]
    writer.write(project.pk, table)
    assert key_of_each_span(project) == {s["span_id"]: first.pk for s in spans}


@pytest.mark.django_db(transaction=True)
def test_seed_demo_spans_carry_the_temporary_demo_key(ch: ModuleType) -> None:
    call_command("seed_demo", spans=150, days=1, inline=True, stdout=StringIO(), stderr=StringIO())
    project = Project.objects.get(slug="demo")
    key = ApiKey.objects.get(project=project, name="seed_demo (temporary)")
    per_key = ch.execute(
        f"SELECT api_key_id, count() AS n FROM spans WHERE project_id IN {PROJECT_PARAM} GROUP BY api_key_id",
        tag="tests.api_key.seed", projects=[project.pk],
    )
    assert len(per_key) == 1 and per_key[0]["api_key_id"] == key.pk and per_key[0]["n"] >= 150


MIGRATE_OLD_STORE = textwrap.dedent(
    """
    import json, sys
    import chdb
    from thinkmeter.clickhouse import schema

    ctx = schema.SchemaContext(retention_days=395)
    conn = chdb.connect(sys.argv[1])
    run = lambda sql: conn.query(sql, "JSONEachRow").bytes().decode()
    for name in ("0001_spans", "0002_scores", "0003_rollups"):
        for statement in schema.render(name, ctx):
            run(statement)
    run("INSERT INTO spans (project_id, trace_id, span_id, start_time, counted, reasoning_tokens) "
        "VALUES (7, 't-old', 's-old', now64(9), 1, 40)")
    for _ in range(2):  # applying it again changes nothing
        for statement in schema.render("0004_api_key", ctx):
            run(statement)
    run("INSERT INTO spans (project_id, api_key_id, trace_id, span_id, start_time, counted, reasoning_tokens) "
        "VALUES (7, 12, 't-new', 's-new', now64(9), 1, 60)")
    names = [json.loads(line)["name"] for line in run(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'spans' "
        "ORDER BY position").splitlines()]
    stored = [json.loads(line) for line in run(
        "SELECT span_id, api_key_id, toUInt32(reasoning_tokens) AS reasoning FROM spans ORDER BY span_id"
    ).splitlines()]
    hourly = json.loads(run("SELECT toUInt32(sum(reasoning_tokens)) AS r FROM usage_hourly WHERE project_id = 7"))
    print(json.dumps({"names": names[:3], "stored": stored, "hourly": int(hourly["r"])}))
    """
)


def test_migration_adds_the_column_to_a_store_that_already_holds_spans(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MIGRATE_OLD_STORE, str(tmp_path / "store")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["names"] == ["project_id", "api_key_id", "trace_id"]
    assert got["stored"] == [
        {"span_id": "s-new", "api_key_id": 12, "reasoning": 60},
        {"span_id": "s-old", "api_key_id": 0, "reasoning": 40},
    ]
    # The rollup views still feed from spans after the ALTER.
    assert got["hourly"] == 100
