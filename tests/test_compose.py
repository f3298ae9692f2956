"""docker-compose.yml (server mode) sets only variables something reads, and is complete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from thinkmeter.settings import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = {"web", "otlp-grpc", "worker", "beat"}

# Containers that are not Thinkmeter read their own, documented variables; one explicit
# allowlist per service (anything else set there is a typo or dead configuration).
THIRD_PARTY_VARIABLES: dict[str, set[str]] = {
    # https://hub.docker.com/r/clickhouse/clickhouse-server (entrypoint.sh)
    "clickhouse": {"CLICKHOUSE_DB", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"},
    # https://hub.docker.com/_/postgres
    "postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"},
    "redis": set(),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_services_exist(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == APP_SERVICES | set(THIRD_PARTY_VARIABLES)


def test_shared_environment_block(compose: dict[str, Any]) -> None:
    shared = compose["x-thinkmeter-env"]
    assert set(shared) <= set(ENVIRONMENT_VARIABLES), set(shared) - set(ENVIRONMENT_VARIABLES)
    assert shared["CLICKHOUSE_URL"] == "clickhouse://thinkmeter:thinkmeter@clickhouse:9000/thinkmeter"
    assert shared["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in shared["DATABASE_URL"]
    assert shared["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert shared["REDIS_URL"] == "redis://redis:6379/1"
    assert shared["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:?set it}"
    assert "DJANGO_ALLOWED_HOSTS" in shared
    # One block, used as is by every app service (YAML aliases resolve to the same mapping).
    for name in APP_SERVICES:
        assert _environment(compose["services"][name]) == {k: str(v) for k, v in shared.items()}, name
    assert "&thinkmeter-env" in COMPOSE.read_text()


@pytest.mark.parametrize("name", sorted(APP_SERVICES | set(THIRD_PARTY_VARIABLES)))
def test_every_variable_is_read(compose: dict[str, Any], name: str) -> None:
    env = set(_environment(compose["services"][name]))
    allowed = set(ENVIRONMENT_VARIABLES) if name in APP_SERVICES else THIRD_PARTY_VARIABLES[name]
    assert env <= allowed, f"{name} sets variables nothing reads: {sorted(env - allowed)}"


def test_interpolated_variables_are_documented() -> None:
    # ${VAR...} in the file comes from the operator's environment and lands in the shared
    # block under the same name, so it must be a setting too.
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert names and names <= set(ENVIRONMENT_VARIABLES), names - set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize("name", sorted(APP_SERVICES | set(THIRD_PARTY_VARIABLES)))
def test_every_service_has_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    check = compose["services"][name].get("healthcheck")
    assert check and check.get("test"), f"{name} has no healthcheck"
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert not check.get("disable")


def test_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    image, _, tag = services["clickhouse"]["image"].partition(":")
    assert image == "clickhouse/clickhouse-server"
    assert re.fullmatch(r"25\.\d+(\.\d+)*", tag), tag
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").read_text().startswith("#") and "FROM python:3.11-slim" in (
        ROOT / "Dockerfile"
    ).read_text()


def test_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def command(name: str) -> str:
        value = services[name]["command"]
        return value if isinstance(value, str) else " ".join(value)

    assert "python manage.py migrate" in command("web")
    assert "gunicorn thinkmeter.wsgi -b 0.0.0.0:8000 --workers 4 --threads 4" in command("web")
    assert command("otlp-grpc").startswith("python manage.py otlp_grpc") and "--port 4317" in command("otlp-grpc")
    assert "--host 0.0.0.0" in command("otlp-grpc")
    assert command("worker").startswith("celery -A thinkmeter worker")
    assert command("beat").startswith("celery -A thinkmeter beat")
    for name in APP_SERVICES - {"web"}:
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    for dependency in ("clickhouse", "postgres", "redis"):
        assert services["web"]["depends_on"][dependency]["condition"] == "service_healthy"


def test_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used: set[str] = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
            else:
                used.add(source)
    assert used == declared
    assert {"clickhouse-data", "postgres-data", "redis-data"} <= declared
    mounts = " ".join(compose["services"]["clickhouse"]["volumes"])
    assert "./platform/clickhouse/config.d/" in mounts and "./platform/clickhouse/users.d/" in mounts


def test_clickhouse_config_files_are_valid_xml() -> None:
    import xml.etree.ElementTree as ET

    users = ET.parse(ROOT / "platform/clickhouse/users.d/thinkmeter.xml").getroot()
    assert users.tag == "clickhouse"
    assert users.findtext("profiles/default/async_insert") == "1"
    assert users.findtext("profiles/default/wait_for_async_insert") == "1"
    config = ET.parse(ROOT / "platform/clickhouse/config.d/thinkmeter.xml").getroot()
    assert config.tag == "clickhouse"
    assert config.findtext("logger/level") in {"warning", "information", "error"}
