"""No ClickHouse statement without a project scope: enforced by the query layer, checked here.

- :mod:`thinkmeter.clickhouse.client` refuses (``ScopeError``, before anything reaches
  ClickHouse) a statement without ``projects=`` or ``system=True``, a scoped statement
  that does not filter on ``{project_ids:Array(UInt32)}``, an untagged one, and an insert
  whose rows belong to another project; a scoped read returns its projects' rows only.
- Static checks over the source: only ``thinkmeter/clickhouse`` imports chdb or
  clickhouse_driver or reaches the raw transport, and ``system=True`` (the unscoped
  escape hatch for migrations and health checks) appears only where listed below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from thinkmeter.clickhouse import PROJECT_PARAM, ScopeError
from thinkmeter.clickhouse import client as ch_client

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ("chdb", "clickhouse_driver")
RAW_TRANSPORT = {"transport", "make_transport", "_transport", "transport_chdb", "transport_native"}
# Test files that build an old-format store in a child process with chdb itself (schema-migration tests).
DRIVER_IMPORT_ALLOWED_IN_TESTS = {"tests/ingest/test_api_key_column.py", "tests/clickhouse/test_cluster_ddl.py"}
# The only application code that may run unscoped (system=True) statements: file, tag, statement.
SYSTEM_STATEMENTS_ALLOWED = {
    ("ingest/spans_store.py", "ingest.dedup.warm", "SELECT"),  # recent span ids of all projects: dedup index
    ("thinkmeter/transfer.py", "transfer.import", "DESCRIBE"),  # the target table's columns, no rows
    ("thinkmeter/metrics.py", "metrics.memory", "SELECT"),  # the engine's memory figures (system tables only)
}
APP_PACKAGES = ("thinkmeter", "ingest", "dashboards", "alerts", "simulator", "bench", "sdk")


def python_files(*tops: str) -> Iterator[tuple[str, ast.Module]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/.venv/" in f"/{relative}" or "/migrations/" in relative and not relative.startswith("thinkmeter/"):
                continue
            yield relative, ast.parse(path.read_text(), filename=relative)


def imported_modules(tree: ast.Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            yield str(node.args[0].value), node.lineno


# ---------------------------------------------------------------------- static checks


def test_only_the_clickhouse_package_imports_a_driver() -> None:
    offenders = []
    files = list(python_files(*APP_PACKAGES, "tests", "platform")) + [("manage.py", ast.parse(
        (ROOT / "manage.py").read_text()))]
    assert len(files) > 100
    for relative, tree in files:
        if relative.startswith("thinkmeter/clickhouse/") or relative in DRIVER_IMPORT_ALLOWED_IN_TESTS:
            continue
        for module, line in imported_modules(tree):
            if module.split(".")[0] in DRIVERS:
                offenders.append(f"{relative}:{line} imports {module}")
    assert offenders == []


def test_the_static_check_sees_a_driver_import() -> None:
    """The checker itself: each spelling of importing a driver is found."""
    for source in ("import chdb", "from clickhouse_driver import Client", "import clickhouse_driver.errors as e",
                   "importlib.import_module('chdb')", "__import__('clickhouse_driver')"):
        found = [m for m, _ in imported_modules(ast.parse(source)) if m.split(".")[0] in DRIVERS]
        assert found, source


def test_application_code_never_reaches_the_raw_transport() -> None:
    """The raw transport runs SQL without the scope check: only the clickhouse package touches it."""
    offenders = []
    for relative, tree in python_files("thinkmeter", "ingest", "dashboards", "alerts", "simulator"):
        if relative.startswith("thinkmeter/clickhouse/"):
            continue
        for module, line in imported_modules(tree):
            if module.startswith("thinkmeter.clickhouse") and module.split(".")[-1] in RAW_TRANSPORT:
                offenders.append(f"{relative}:{line} imports {module}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in RAW_TRANSPORT:
                offenders.append(f"{relative}:{node.lineno} uses .{node.attr}")
    assert offenders == []


def module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level NAME = <expression> assignments (tags and SQL are named constants)."""
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def literal_head(node: ast.expr | None, constants: dict[str, ast.expr]) -> str:
    """The text of a string constant (or of an f-string's leading part), following module constants."""
    if isinstance(node, ast.Name) and node.id in constants:
        node = constants[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    return "<computed>"


def system_calls(tree: ast.Module) -> Iterator[tuple[int, str, str]]:
    """(line, tag, first SQL word) of every call passing system= (other than system=False)."""
    constants = module_constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        system = keywords.get("system")
        if system is None or (isinstance(system, ast.Constant) and system.value is False):
            continue
        sql = literal_head(node.args[0] if node.args else keywords.get("sql"), constants).split()
        yield node.lineno, literal_head(keywords.get("tag"), constants), sql[0].upper() if sql else "<computed>"


def test_unscoped_statements_only_where_listed() -> None:
    found = set()
    for relative, tree in python_files("thinkmeter", "ingest", "dashboards", "alerts", "simulator"):
        if relative.startswith("thinkmeter/clickhouse/"):
            continue
        for _, tag, statement in system_calls(tree):
            found.add((relative, tag, statement))
    assert found == SYSTEM_STATEMENTS_ALLOWED


# ---------------------------------------------------------------------- the query layer at run time


def _span_rows(project_id: int, count: int) -> dict[str, list[Any]]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {"project_id": [project_id] * count, "trace_id": [f"t{project_id}"] * count,
            "span_id": [f"s{project_id}-{i}" for i in range(count)], "start_time": [now] * count}


def _count(ch: ModuleType, project_id: int) -> int:
    rows = ch.execute(f"SELECT count() AS n FROM spans WHERE project_id IN {PROJECT_PARAM}", tag="tests.scope",
                      projects=project_id)
    return int(rows[0]["n"])


@pytest.mark.parametrize("call", [
    lambda: ch_client.execute("SELECT count() FROM spans", tag="tests.scope"),
    lambda: ch_client.query_df("SELECT count() FROM spans", tag="tests.scope"),
    lambda: ch_client.query_arrow("SELECT count() FROM spans", tag="tests.scope"),
    lambda: ch_client.execute("SELECT count() FROM spans WHERE project_id = 1", tag="tests.scope", projects=1),
    lambda: ch_client.execute("SELECT count() FROM spans WHERE project_id IN {project_ids:Array(UInt64)}",
                              tag="tests.scope", projects=[1]),
    lambda: ch_client.query_df("SELECT * FROM spans", tag="tests.scope", projects=[1, 2]),
    lambda: ch_client.execute(f"SELECT 1 WHERE 1 IN {PROJECT_PARAM}", tag="", projects=1),
    lambda: ch_client.execute(f"SELECT 1 WHERE 1 IN {PROJECT_PARAM}", tag="tests.scope", projects=1, system=True),
], ids=["execute-no-scope", "query_df-no-scope", "query_arrow-no-scope", "no-param-filter", "wrong-param-type",
        "select-star-no-filter", "untagged", "scope-and-system"])
def test_unscoped_reads_are_refused(ch: ModuleType, call: Any) -> None:
    with pytest.raises(ScopeError):
        call()


def test_refused_statements_never_reach_clickhouse(ch: ModuleType) -> None:
    """A destructive statement without a scope is refused before it runs: the rows are still there."""
    ch.insert("spans", _span_rows(41, 3), tag="tests.scope", project=41)
    for sql in ("TRUNCATE TABLE spans", "ALTER TABLE spans DELETE WHERE 1 SETTINGS mutations_sync = 2",
                "DROP TABLE spans"):
        with pytest.raises(ScopeError):
            ch.execute(sql, tag="tests.scope")
        with pytest.raises(ScopeError):
            ch.execute(sql, tag="tests.scope", projects=41)  # scoped but not filtered by project
    assert _count(ch, 41) == 3


def test_inserts_are_scoped_to_one_project(ch: ModuleType) -> None:
    with pytest.raises(ScopeError):
        ch.insert("spans", _span_rows(41, 2), tag="tests.scope")
    with pytest.raises(ScopeError):
        ch.insert("spans", _span_rows(42, 2), tag="tests.scope", project=41)
    mixed = _span_rows(41, 2)
    mixed["project_id"] = [41, 42]
    with pytest.raises(ScopeError):
        ch.insert("spans", mixed, tag="tests.scope", project=41)
    without_column = {k: v for k, v in _span_rows(41, 2).items() if k != "project_id"}
    with pytest.raises(ScopeError):
        ch.insert("spans", without_column, tag="tests.scope", project=41)
    with pytest.raises(ScopeError):
        ch.insert("spans", _span_rows(41, 2), tag="", project=41)
    assert _count(ch, 41) == 0 and _count(ch, 42) == 0
    assert ch.insert("spans", _span_rows(41, 2), tag="tests.scope", project=41) == 2
    assert _count(ch, 41) == 2


def test_a_scoped_read_sees_its_projects_only(ch: ModuleType) -> None:
    """The bound project_ids parameter, not the caller, decides the rows: a caller's own
    parameter named project_ids is replaced by the scope."""
    ch.insert("spans", _span_rows(41, 2), tag="tests.scope", project=41)
    ch.insert("spans", _span_rows(42, 5), tag="tests.scope", project=42)
    sql = f"SELECT project_id, count() AS n FROM spans WHERE project_id IN {PROJECT_PARAM} GROUP BY project_id"
    assert ch.execute(sql, tag="tests.scope", projects=41) == [{"project_id": 41, "n": 2}]
    assert ch.execute(sql, {"project_ids": [41, 42]}, tag="tests.scope", projects=41) == [
        {"project_id": 41, "n": 2}]
    rows = ch.execute(sql + " ORDER BY project_id", tag="tests.scope", projects=[41, 42])
    assert rows == [{"project_id": 41, "n": 2}, {"project_id": 42, "n": 5}]
    assert ch.execute(sql, tag="tests.scope", projects=[]) == []
