"""platform/cluster: the compose file and configs describe one consistent 2 × 2 cluster.

There is no Docker engine on the CI machines, so this reads what ``docker compose up``
would: services, their environment (only variables something reads), the files they
mount (all present, valid XML), the ClickHouse topology (2 shards × 2 replicas in
remote_servers, one macros file per node with unique names), the Keeper ensemble (3
nodes, unique ids matching the raft configuration), and nginx's upstreams. The ClickHouse
engine itself (chdb, with each node's config.d files) confirms the topology and macros.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from thinkmeter.clickhouse.config import parse_clickhouse_url
from thinkmeter.settings import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = ROOT / "platform" / "cluster"
COMPOSE = CLUSTER_DIR / "docker-compose.yml"
KEEPERS = {"keeper-1", "keeper-2", "keeper-3"}
NODES = {"clickhouse-s1-r1", "clickhouse-s1-r2", "clickhouse-s2-r1", "clickhouse-s2-r2"}
APPS = {"migrate", "web-1", "web-2", "otlp-grpc", "worker", "beat"}
OTHERS = {"postgres", "redis", "nginx"}
CLICKHOUSE_VARIABLES = {"CLICKHOUSE_DB", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT",
                        "CLICKHOUSE_CLUSTER_SECRET"}  # the last one is read by cluster.xml (from_env)
THIRD_PARTY_VARIABLES = {
    **{name: CLICKHOUSE_VARIABLES for name in NODES},
    **{name: {"KEEPER_SERVER_ID"} for name in KEEPERS},  # read by keeper_config.xml (from_env)
    "postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"},
    "redis": set(),
    "nginx": set(),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → host file, for the files a service mounts from the repository."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (CLUSTER_DIR / source).resolve()
    return out


def _xml(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "clickhouse", path
    return root


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == KEEPERS | NODES | APPS | OTHERS


@pytest.mark.parametrize("name", sorted(KEEPERS | NODES | APPS | OTHERS))
def test_every_variable_is_read_and_every_service_is_checked(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    allowed = set(ENVIRONMENT_VARIABLES) if name in APPS else THIRD_PARTY_VARIABLES[name]
    assert set(_env(service)) <= allowed, f"{name} sets variables nothing reads: {sorted(set(_env(service)) - allowed)}"
    if name != "migrate":  # a one-off: compose waits for it to complete instead
        check = service.get("healthcheck") or {}
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name
    for target, source in _mounts(service).items():
        assert source.is_file(), f"{name} mounts missing {source} at {target}"
        if source.suffix == ".xml":
            _xml(source)


def test_interpolated_variables_are_known() -> None:
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert names <= set(ENVIRONMENT_VARIABLES) | {"CLICKHOUSE_CLUSTER_SECRET"}, names
    assert {"DJANGO_SECRET_KEY", "CLICKHOUSE_CLUSTER_SECRET"} <= names


def _remote_servers() -> ET.Element:
    return _xml(CLUSTER_DIR / "clickhouse" / "cluster.xml").find("remote_servers")  # type: ignore[return-value]


def test_remote_servers_are_two_shards_of_two_replicas() -> None:
    servers = _remote_servers()
    [cluster] = list(servers)
    assert cluster.tag == "thinkmeter"
    assert cluster.find("secret").get("from_env") == "CLICKHOUSE_CLUSTER_SECRET"  # type: ignore[union-attr]
    shards = cluster.findall("shard")
    assert len(shards) == 2
    hosts = []
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        replicas = shard.findall("replica")
        assert len(replicas) == 2
        for replica in replicas:
            assert replica.findtext("port") == "9000"
            host = replica.findtext("host") or ""
            assert host.startswith(f"clickhouse-s{number}-"), (number, host)
            hosts.append(host)
    assert sorted(hosts) == sorted(NODES)


def test_each_node_has_its_own_macros_matching_its_place(compose: dict[str, Any]) -> None:
    shard_of = {replica.findtext("host"): str(number)
                for number, shard in enumerate(_remote_servers()[0].findall("shard"), start=1)
                for replica in shard.findall("replica")}
    seen_replicas, seen_files = set(), set()
    for name in sorted(NODES):
        service = compose["services"][name]
        assert service["hostname"] == name
        mounts = _mounts(service)
        macros_file = mounts["/etc/clickhouse-server/config.d/macros.xml"]
        root = _xml(macros_file)
        macros = {child.tag: child.text for child in root.find("macros")}  # type: ignore[union-attr]
        assert macros == {"cluster": "thinkmeter", "shard": shard_of[name], "replica": name}
        assert root.findtext("interserver_http_host") == name
        assert mounts["/etc/clickhouse-server/config.d/cluster.xml"] == CLUSTER_DIR / "clickhouse" / "cluster.xml"
        seen_replicas.add(macros["replica"])
        seen_files.add(macros_file)
        depends = service["depends_on"]
        assert all(depends[k]["condition"] == "service_healthy" for k in KEEPERS)
        assert any(v.startswith(f"{name}-data:") for v in service["volumes"])
    assert len(seen_replicas) == len(seen_files) == 4  # unique per node, cluster-wide


def test_keeper_ensemble() -> None:
    root = _xml(CLUSTER_DIR / "keeper" / "keeper_config.xml")
    keeper = root.find("keeper_server")
    assert keeper is not None and keeper.find("server_id").get("from_env") == "KEEPER_SERVER_ID"  # type: ignore[union-attr]
    raft = {s.findtext("id"): s.findtext("hostname") for s in keeper.findall("raft_configuration/server")}
    assert raft == {"1": "keeper-1", "2": "keeper-2", "3": "keeper-3"}
    clients = {(n.findtext("host"), n.findtext("port")) for n in _xml(CLUSTER_DIR / "clickhouse" / "cluster.xml")
               .findall("zookeeper/node")}
    assert clients == {(host, keeper.findtext("tcp_port")) for host in raft.values()}


def test_keeper_ids_are_unique_and_match_the_raft_configuration(compose: dict[str, Any]) -> None:
    ids = {}
    for name in KEEPERS:
        service = compose["services"][name]
        assert service["hostname"] == name
        assert _mounts(service)["/etc/clickhouse-keeper/keeper_config.xml"] == CLUSTER_DIR / "keeper" / "keeper_config.xml"
        ids[name] = _env(service)["KEEPER_SERVER_ID"]
    assert ids == {"keeper-1": "1", "keeper-2": "2", "keeper-3": "3"}


def test_apps_use_the_cluster_and_fail_over_across_all_nodes(compose: dict[str, Any]) -> None:
    shared = compose["x-thinkmeter-env"]
    assert shared["CLICKHOUSE_CLUSTER"] == _remote_servers()[0].tag
    first_hosts = []
    for name in sorted(APPS):
        env = _env(compose["services"][name])
        assert env["CLICKHOUSE_CLUSTER"] == "thinkmeter" and env["REDIS_URL"] == "redis://redis:6379/1"
        assert env["DATABASE_URL"].startswith("postgres://") and env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        cfg = parse_clickhouse_url(env["CLICKHOUSE_URL"], ROOT)
        assert cfg.kind == "native" and cfg.database == "thinkmeter"
        assert {cfg.host, *(h.split(":")[0] for h in cfg.alt_hosts)} == NODES, name
        assert set(parse_qs(urlsplit(env["CLICKHOUSE_URL"]).query)) == {"alt_hosts"}
        first_hosts.append(cfg.host)
        if name != "migrate":
            assert compose["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert len(set(first_hosts)) >= 3  # query initiators spread over the nodes


def test_processes(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def command(name: str) -> str:
        value = services[name]["command"]
        return value if isinstance(value, str) else " ".join(value)

    assert command("migrate") == "python manage.py migrate --noinput"
    assert {services["migrate"]["depends_on"][n]["condition"] for n in NODES | {"postgres"}} == {"service_healthy"}
    for web in ("web-1", "web-2"):
        assert command(web).startswith("gunicorn thinkmeter.wsgi -b 0.0.0.0:8000")
        assert "ports" not in services[web]  # reached through nginx only
    assert command("worker").startswith("celery -A thinkmeter worker")
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert command("beat").startswith("celery -A thinkmeter beat")
    assert "deploy" not in services["beat"]  # exactly one scheduler
    assert command("otlp-grpc").startswith("python manage.py otlp_grpc --host 0.0.0.0 --port 4317")


def test_nginx_balances_both_web_replicas_and_the_grpc_receivers(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    conf_path = _mounts(nginx)["/etc/nginx/nginx.conf"]
    conf = conf_path.read_text()
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf))
    servers = {name: re.findall(r"^\s*server\s+([\w.-]+:\d+)", body, re.M) for name, body in upstreams.items()}
    assert servers["thinkmeter_web"] == ["web-1:8000", "web-2:8000"]
    assert servers["thinkmeter_otlp_grpc"] == ["otlp-grpc:4317"]
    assert "proxy_pass http://thinkmeter_web;" in conf and "grpc_pass grpc://thinkmeter_otlp_grpc;" in conf
    assert "client_max_body_size 64m;" in conf  # OTLP bodies up to the receiver's own 64 MiB limit
    assert set(nginx["ports"]) == {"8000:80", "4317:4317"}
    assert {nginx["depends_on"][n]["condition"] for n in ("web-1", "web-2", "otlp-grpc")} == {"service_healthy"}
    assert conf.count("{") == conf.count("}")


def test_volumes_are_declared(compose: dict[str, Any]) -> None:
    used = {v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert used == set(compose["volumes"])
    assert {f"{n}-data" for n in NODES | KEEPERS} <= used


READ_CONFIG = """
import json, sys, chdb
conn = chdb.connect(sys.argv[1] + "?config-file=" + sys.argv[2])
query = lambda sql: conn.query(sql, "JSONEachRow").data().splitlines()
print(json.dumps({
    "clusters": [json.loads(r) for r in query("SELECT shard_num, replica_num, host_name, port FROM system.clusters "
                                              "WHERE cluster = 'thinkmeter' ORDER BY shard_num, replica_num")],
    "macros": {json.loads(r)["macro"]: json.loads(r)["substitution"] for r in query("SELECT * FROM system.macros")},
}))
"""


@pytest.mark.parametrize("node", sorted(NODES))
def test_clickhouse_reads_the_node_config_as_intended(compose: dict[str, Any], node: str, tmp_path: Path) -> None:
    """The ClickHouse engine (chdb) loads the node's config.d files the way the server would."""
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.xml").write_text("<clickhouse><tcp_port>9000</tcp_port></clickhouse>")
    for target, source in _mounts(compose["services"][node]).items():
        if target.startswith("/etc/clickhouse-server/config.d/"):
            shutil.copy(source, tmp_path / "config.d" / Path(target).name)
    done = subprocess.run(
        [sys.executable, "-c", READ_CONFIG, str(tmp_path / "store"), str(tmp_path / "config.xml")],
        env={**os.environ, "CLICKHOUSE_CLUSTER_SECRET": "test-secret"}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(r["shard_num"], r["replica_num"], r["host_name"], r["port"]) for r in seen["clusters"]] == [
        (1, 1, "clickhouse-s1-r1", 9000), (1, 2, "clickhouse-s1-r2", 9000),
        (2, 1, "clickhouse-s2-r1", 9000), (2, 2, "clickhouse-s2-r2", 9000),
    ]
    assert seen["macros"] == {"cluster": "thinkmeter", "shard": node[len("clickhouse-s")], "replica": node}
