"""``export_spans`` / ``import_spans``: chdb → Parquet files → a fresh chdb store, twice; and 18.16.

The source is this session's store, filled with demo traffic through the real ingest
path. The target is a new installation (its own chdb store and SQLite database) driven
through ``manage.py`` in child processes, as an operator would (chdb admits one store
per process). Its project ids differ from the source's on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from ingest import demo, scores, services
from thinkmeter import clickhouse
from thinkmeter.clickhouse import PROJECT_PARAM

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
SPANS = 1500

FIGURES_SQL = {
    "spans": f"SELECT count() AS n, uniqExact(trace_id, span_id) AS ids FROM spans FINAL WHERE project_id IN {PROJECT_PARAM}",
    "counted": f"""SELECT countIf(counted = 1) AS calls, toString(sumIf(cost_total, counted = 1)) AS cost,
        sumIf(reasoning_tokens, counted = 1) AS reasoning, countIf(runaway = 1) AS runaway,
        toString(max(start_time)) AS latest, sum(length(mapKeys(attributes))) AS attributes
        FROM spans FINAL WHERE project_id IN {PROJECT_PARAM}""",
    "rollup": f"""SELECT sum(requests) AS requests, toString(sum(cost_total)) AS cost,
        sum(reasoning_tokens) AS reasoning FROM usage_hourly WHERE project_id IN {PROJECT_PARAM}""",
    "scores": f"SELECT count() AS n, sum(value) AS total FROM scores FINAL WHERE project_id IN {PROJECT_PARAM}",
}


def figures(slug: str) -> dict[str, Any]:
    """What a project holds, in numbers that any lost, doubled or altered row would change."""
    from thinkmeter.models import Project

    project_id = Project.objects.get(slug=slug).pk
    return {name: clickhouse.execute(sql, tag="tests.transfer.figures", projects=project_id)[0]
            for name, sql in FIGURES_SQL.items()}


@pytest.fixture
def source(ch: ModuleType, project: Any, other_project: Any) -> dict[str, Any]:
    """Demo traffic for "acme" through the ingest path, a little for "globex", and scores."""
    end = datetime.now(UTC).replace(microsecond=0)
    for item in demo.encoded_batches(SPANS, days=3, seed=5, end=end):
        services.ingest_payload(project, item.body, "application/x-protobuf", "gzip", "http", api_key_id=0)
    for item in demo.encoded_batches(200, days=1, seed=6, end=end):
        services.ingest_payload(other_project, item.body, "application/x-protobuf", "gzip", "http", api_key_id=0)
    for i in range(5):
        scores.record(scores.Score(project.pk, f"trace-{i}", f"span-{i}", "verifier", 0.5 + i / 10,
                                   created_at=end - timedelta(hours=i)))
    numbers = {"acme": figures("acme"), "globex": figures("globex")}
    assert numbers["acme"]["spans"]["n"] >= SPANS and numbers["acme"]["counted"]["calls"] > 100
    assert numbers["acme"]["rollup"]["requests"] == numbers["acme"]["counted"]["calls"]
    return numbers


def _target(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CLICKHOUSE_CLUSTER", "REDIS_URL"}}
    env.update({"CLICKHOUSE_URL": f"chdb://{tmp_path / 'target-ch'}", "DATABASE_URL": f"sqlite:///{tmp_path / 'target.db'}",
                "CELERY_BROKER_URL": "", "DJANGO_SETTINGS_MODULE": "thinkmeter.settings", "PYTHONPATH": str(ROOT)})
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _target_figures(env: dict[str, str], slug: str) -> dict[str, Any]:
    code = ("import django, json; django.setup(); from tests.test_export_import import figures; "
            f"print(json.dumps(figures({slug!r}), default=str))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _jsonable(numbers: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(numbers, default=str))


def test_round_trip_into_a_fresh_store_twice(source: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "export"
    call_command("export_spans", str(out), "--chunk-rows", "400")  # several chunks per file
    manifest = json.loads((out / "manifest.json").read_text())
    by_slug = {entry["slug"]: entry for entry in manifest["projects"]}
    assert set(by_slug) == {"acme", "globex"}
    acme = by_slug["acme"]
    assert acme["tables"]["spans"]["rows"] == source["acme"]["spans"]["n"]
    assert acme["tables"]["scores"]["rows"] == 5
    assert pq.read_metadata(out / "acme" / "spans.parquet").num_rows == source["acme"]["spans"]["n"]
    assert "scores" not in by_slug["globex"]["tables"]

    env = _target(tmp_path)
    _manage(env, "migrate", "-v", "0")
    _manage(env, "create_project", "someone-else")  # so the target's project ids differ from the source's
    first = _manage(env, "import_spans", str(out))
    assert "acme" in first.stdout and "already stored" not in first.stdout
    assert "acme spans: " in first.stderr and "(100%)" in first.stderr  # progress
    for slug in ("acme", "globex"):
        assert _target_figures(env, slug) == _jsonable(source[slug]), slug

    again = _manage(env, "import_spans", str(out), "--project", "acme")
    assert f"{source['acme']['spans']['n']:,} spans were already stored" in again.stdout
    # Nothing doubled: not the spans, not the calls counted in the rollups, not the scores.
    assert _target_figures(env, "acme") == _jsonable(source["acme"])


def test_bad_input_gets_a_clear_error(source: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="manifest.json is missing"):
        call_command("import_spans", str(tmp_path))
    with pytest.raises(CommandError, match="no such projects: nope"):
        call_command("export_spans", str(tmp_path / "x"), "--project", "nope")
    call_command("export_spans", str(tmp_path / "x"), "--project", "globex")
    with pytest.raises(CommandError, match="already holds an export"):
        call_command("export_spans", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="holds no projects"):
        call_command("import_spans", str(tmp_path / "x"), "--project", "acme")
    (tmp_path / "x" / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(CommandError, match="not a thinkmeter-spans-export version 1 manifest"):
        call_command("import_spans", str(tmp_path / "x"))


SCORES_18 = """
CREATE TABLE scores (project_id UInt32, trace_id String, span_id String, name String, value Float64,
    source String, comment String, created_at DateTime)
ENGINE = ReplacingMergeTree(created_at) ORDER BY (project_id, trace_id, span_id, name)
"""


@pytest.mark.server
def test_scores_import_into_clickhouse_18(source: dict[str, Any], tmp_path: Path, clickhouse_server_url: str) -> None:
    """18.16 cannot hold the spans table (no Map, DateTime64 or Bool); the scores' types fit it."""
    out = tmp_path / "export"
    call_command("export_spans", str(out), "--project", "acme")
    with override_settings(CLICKHOUSE_URL=clickhouse_server_url):
        clickhouse.reset_transport()
        try:
            clickhouse.execute("DROP TABLE IF EXISTS scores", tag="tests.transfer.18", system=True)
            clickhouse.execute(SCORES_18, tag="tests.transfer.18", system=True)
            clickhouse.execute("DROP TABLE IF EXISTS spans", tag="tests.transfer.18", system=True)
            with pytest.raises(CommandError, match=r"spans cannot be read on the target .* run `manage.py migrate`"):
                call_command("import_spans", str(out), "--table", "spans")
            clickhouse.execute("CREATE TABLE spans (project_id UInt32, trace_id String) ENGINE = Log",
                               tag="tests.transfer.18", system=True)
            with pytest.raises(CommandError, match=r"spans on the target lacks columns \['api_key_id', 'attributes'"):
                call_command("import_spans", str(out), "--table", "spans")
            clickhouse.execute("DROP TABLE spans", tag="tests.transfer.18", system=True)
            call_command("import_spans", str(out), "--table", "scores")
            rows = clickhouse.execute("SELECT count() AS n, sum(value) AS total, min(created_at) AS first FROM scores",
                                      tag="tests.transfer.18", system=True)
            clickhouse.execute("DROP TABLE scores", tag="tests.transfer.18", system=True)
        finally:
            clickhouse.reset_transport()
    assert rows[0]["n"] == 5
    assert rows[0]["total"] == pytest.approx(source["acme"]["scores"]["total"])
