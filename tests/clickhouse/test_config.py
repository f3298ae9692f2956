"""CLICKHOUSE_URL parsing and its validation at Django start-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from thinkmeter.clickhouse.config import ACCEPTED_FORMS, ClickHouseConfigError, parse_clickhouse_url

ROOT = Path(__file__).resolve().parents[2]
BASE = Path("/srv/thinkmeter")


def test_relative_chdb_is_under_the_project() -> None:
    cfg = parse_clickhouse_url("chdb://var/clickhouse", BASE)
    assert cfg.kind == "chdb"
    assert cfg.path == BASE / "var" / "clickhouse"


def test_absolute_chdb() -> None:
    cfg = parse_clickhouse_url("chdb:///data/ch", BASE)
    assert cfg.kind == "chdb"
    assert cfg.path == Path("/data/ch")


@pytest.mark.parametrize("url", ["chdb://", "chdb:///"])
def test_chdb_without_directory(url: str) -> None:
    with pytest.raises(ClickHouseConfigError, match="names no directory"):
        parse_clickhouse_url(url, BASE)


def test_clickhouse_native() -> None:
    cfg = parse_clickhouse_url("clickhouse://thinkmeter:s%40cret@clickhouse:9000/analytics", BASE)
    assert cfg.kind == "native"
    assert (cfg.host, cfg.port, cfg.user, cfg.password, cfg.database, cfg.secure) == (
        "clickhouse",
        9000,
        "thinkmeter",
        "s@cret",
        "analytics",
        False,
    )
    assert "s@cret" not in cfg.describe()


def test_clickhouse_native_defaults() -> None:
    cfg = parse_clickhouse_url("clickhouse://db.internal", BASE)
    assert (cfg.port, cfg.user, cfg.password, cfg.database, cfg.secure) == (9000, "default", "", "default", False)


def test_clickhouses_is_tls_with_port_9440() -> None:
    cfg = parse_clickhouse_url("clickhouses://u:p@ch.example.com/db", BASE)
    assert cfg.secure is True
    assert cfg.port == 9440
    assert cfg.describe() == "clickhouses://ch.example.com:9440/db"
    assert parse_clickhouse_url("clickhouses://u:p@ch.example.com:19440/db", BASE).port == 19440


def test_clickhouse_without_host() -> None:
    with pytest.raises(ClickHouseConfigError, match="names no host"):
        parse_clickhouse_url("clickhouse:///db", BASE)


@pytest.mark.parametrize("url", ["mysql://x", "http://localhost:8123", "var/clickhouse", ""])
def test_unknown_scheme_names_the_accepted_forms(url: str) -> None:
    with pytest.raises(ClickHouseConfigError) as info:
        parse_clickhouse_url(url, BASE)
    text = str(info.value)
    assert "unknown scheme" in text
    for form in ("chdb://", "chdb:///", "clickhouse://user:password@host:9000/db", "clickhouses://"):
        assert form in text


def test_django_start_up_fails_on_a_bad_url() -> None:
    env = {**os.environ, "CLICKHOUSE_URL": "mysql://x"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert ACCEPTED_FORMS in result.stderr
    assert "'mysql'" in result.stderr


def test_alt_hosts_to_fail_over_to() -> None:
    cfg = parse_clickhouse_url("clickhouse://u:p@ch-s1-r1:9000/tm?alt_hosts=ch-s1-r2:9000,ch-s2-r1", BASE)
    assert (cfg.host, cfg.port, cfg.database) == ("ch-s1-r1", 9000, "tm")
    assert cfg.alt_hosts == ("ch-s1-r2:9000", "ch-s2-r1:9000")
    assert "failing over to ch-s1-r2:9000, ch-s2-r1:9000" in cfg.describe()
    assert parse_clickhouse_url("clickhouses://u:p@a/db?alt_hosts=b", BASE).alt_hosts == ("b:9440",)
    assert parse_clickhouse_url("clickhouse://u:p@a/db", BASE).alt_hosts == ()


@pytest.mark.parametrize("query", ["alt_hosts=b:x", "alt_hosts=:9000", "hosts=b"])
def test_bad_alt_hosts(query: str) -> None:
    with pytest.raises(ClickHouseConfigError, match="alt_hosts|unknown parameters"):
        parse_clickhouse_url(f"clickhouse://u:p@a:9000/db?{query}", BASE)


@pytest.mark.server
def test_fails_over_to_an_alt_host(clickhouse_server_url: str) -> None:
    """The first host is a closed port; the driver goes on to the real server (Debian's 18.16)."""
    from thinkmeter.clickhouse.client import make_transport

    real = parse_clickhouse_url(clickhouse_server_url, BASE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"clickhouse://{real.user}:@127.0.0.1:{closed}/{real.database}?alt_hosts=127.0.0.1:{real.port}"
    transport = make_transport(parse_clickhouse_url(url, BASE))
    try:
        rows = transport.query_arrow("SELECT 1 AS one", {}, {}, "tests.config.alt_hosts").to_pylist()
    finally:
        transport.close()
    assert rows == [{"one": 1}]
