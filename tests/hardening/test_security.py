"""Security settings: hashed API keys, sign-in rate limits, CSRF on every form, response headers,
production settings that pass ``check --deploy``, secrets from the environment only, and a
lock file that covers every declared dependency.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from thinkmeter import login_limit
from thinkmeter.models import SCOPES, ApiKey
from thinkmeter.security_headers import DEFAULT_POLICY, render_policy

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------- API keys


def test_api_keys_are_stored_as_digests_only(project: Any) -> None:
    key, secret = ApiKey.issue(project, SCOPES, name="digest")
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith("tm_") and len(secret) >= 40
    assert row["prefix"] == secret[:10]
    stored = " ".join(str(value) for value in row.values())
    assert secret not in stored and secret[10:] not in stored
    assert ApiKey.lookup(secret) == key
    assert ApiKey.lookup(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_admin_shows_a_new_key_once_and_never_again(django_user_model: Any, project: Any) -> None:
    admin = django_user_model.objects.create_superuser("root", "root@localhost", PASSWORD)
    client = Client()
    client.force_login(admin)
    created = client.post("/admin/thinkmeter/apikey/add/", {"project": project.pk, "name": "ci", "scopes": '["read"]'},
                          follow=True)
    assert created.status_code == 200
    shown = re.findall(r"tm_[A-Za-z0-9_\-]{40,}", created.content.decode())
    assert len(shown) == 1, "the new key is shown exactly once, in the confirmation message"
    secret = shown[0]
    key = ApiKey.lookup(secret)
    assert key is not None and key.name == "ci"
    pages = ["/admin/thinkmeter/apikey/", f"/admin/thinkmeter/apikey/{key.pk}/change/",
             f"/admin/thinkmeter/apikey/{key.pk}/history/", f"/admin/thinkmeter/project/{project.pk}/change/",
             "/admin/thinkmeter/apikey/?q=tm_", "/"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert secret not in response.content.decode() and secret[10:] not in response.content.decode(), path


def test_the_api_never_answers_a_key(project: Any, project_key: str, caplog: pytest.LogCaptureFixture) -> None:
    """No REST answer or log line carries the key that made the request."""
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {project_key}"}
    caplog.set_level("DEBUG")
    for path in ("/api/v1/prices", "/api/v1/alert-rules", "/api/v1/channels", "/api/v1/simulations",
                 "/api/v1/classification-rules", "/api/schema/", "/api/v1/alerts"):
        response = client.get(path, **auth)
        assert response.status_code == 200, path
        assert project_key not in response.content.decode() and project_key[10:] not in response.content.decode()
    wrong = client.get("/api/v1/prices", HTTP_AUTHORIZATION=f"Bearer {project_key}x")
    assert wrong.status_code == 401 and project_key not in wrong.content.decode()
    assert project_key[10:] not in caplog.text


# ---------------------------------------------------------------------- sign-in rate limit


@pytest.fixture
def fresh_limits(settings: Any) -> Iterator[Any]:
    """A cache of this test's own, so counts start at zero and other tests' caches stay untouched."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"login-limit-{secrets.token_hex(4)}"}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast checks: timing matters here
    cache.clear()
    yield settings
    cache.clear()


def sign_in(username: str, password: str, address: str, path: str = "/login/") -> Any:
    client = Client(REMOTE_ADDR=address)
    return client.post(path, {"username": username, "password": password}), client


def test_failed_sign_ins_lock_that_username_from_that_address(fresh_limits: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_user("alice", password=PASSWORD)
    django_user_model.objects.create_user("bob", password=PASSWORD)
    for _ in range(fresh_limits.LOGIN_FAILURES_PER_USER - 1):
        response, _ = sign_in("alice", "wrong", "10.0.0.1")
        assert response.status_code == 200 and b"didn't match" in response.content
    last, _ = sign_in("alice", "wrong", "10.0.0.1")  # the failure that reaches the limit says so
    assert last.status_code == 429
    refused, client = sign_in("alice", PASSWORD, "10.0.0.1")  # the right password, but locked out
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= fresh_limits.LOGIN_FAILURE_WINDOW_SECONDS
    assert b"Too many failed sign-ins" in refused.content
    assert "_auth_user_id" not in client.session
    assert sign_in("ALICE ", PASSWORD, "10.0.0.1")[0].status_code == 429  # the same username, spelled otherwise
    admin_login, _ = sign_in("alice", PASSWORD, "10.0.0.1", "/admin/login/")
    assert admin_login.status_code == 200 and "_auth_user_id" not in admin_login.wsgi_request.session
    assert sign_in("alice", PASSWORD, "10.0.0.2")[0].status_code == 302  # another address
    assert sign_in("bob", PASSWORD, "10.0.0.1")[0].status_code == 302  # another user


def test_the_lock_ends_with_its_window(fresh_limits: Any, django_user_model: Any) -> None:
    fresh_limits.LOGIN_FAILURE_WINDOW_SECONDS = 3
    django_user_model.objects.create_user("alice", password=PASSWORD)
    for _ in range(fresh_limits.LOGIN_FAILURES_PER_USER):
        sign_in("alice", "wrong", "10.0.0.1")
    assert sign_in("alice", PASSWORD, "10.0.0.1")[0].status_code == 429
    time.sleep(3.2)
    assert sign_in("alice", PASSWORD, "10.0.0.1")[0].status_code == 302


def test_a_good_sign_in_clears_its_count(fresh_limits: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_user("alice", password=PASSWORD)
    for _ in range(2):
        for _ in range(fresh_limits.LOGIN_FAILURES_PER_USER - 1):  # one short of the limit, twice over
            assert sign_in("alice", "wrong", "10.0.0.1")[0].status_code == 200
        assert sign_in("alice", PASSWORD, "10.0.0.1")[0].status_code == 302


def test_many_usernames_from_one_address_lock_the_address(fresh_limits: Any, django_user_model: Any) -> None:
    fresh_limits.LOGIN_FAILURES_PER_ADDRESS = 12
    django_user_model.objects.create_user("carol", password=PASSWORD)
    for i in range(11):
        assert sign_in(f"user{i}", "guess", "10.0.0.9")[0].status_code == 200
    assert sign_in("user11", "guess", "10.0.0.9")[0].status_code == 429
    assert sign_in("carol", PASSWORD, "10.0.0.9")[0].status_code == 429
    assert sign_in("carol", PASSWORD, "10.0.0.10")[0].status_code == 302


COUNT_IN_CHILD = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
django.setup()
from django.test.utils import override_settings
from django.test import RequestFactory
with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": sys.argv[1]}}):
    from thinkmeter import login_limit
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.1.2.3")
    for _ in range(int(sys.argv[2])):
        login_limit.record_failure(request, "dave")
"""


def test_counts_are_shared_across_processes_through_redis(settings: Any, django_user_model: Any,
                                                           tmp_path: Path) -> None:
    """Failures counted by another process (another web worker) lock the sign-in here: the counts
    live in Redis (REDIS_URL), not in a process's memory."""
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": server.url(3)}}
        django_user_model.objects.create_user("dave", password=PASSWORD)
        child = subprocess.run([sys.executable, "-c", COUNT_IN_CHILD, server.url(3), str(settings.LOGIN_FAILURES_PER_USER)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert child.returncode == 0, child.stderr[-2000:]
        assert sign_in("dave", PASSWORD, "10.1.2.3")[0].status_code == 429
        assert sign_in("dave", PASSWORD, "10.1.2.4")[0].status_code == 302
    finally:
        server.stop()


def test_locked_for_reports_the_time_left(fresh_limits: Any) -> None:
    from django.test import RequestFactory

    request = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.7")
    assert login_limit.locked_for(request, "erin") == 0
    for _ in range(fresh_limits.LOGIN_FAILURES_PER_USER):
        login_limit.record_failure(request, "erin")
    left = login_limit.locked_for(request, "erin")
    assert fresh_limits.LOGIN_FAILURE_WINDOW_SECONDS - 5 <= left <= fresh_limits.LOGIN_FAILURE_WINDOW_SECONDS


# ---------------------------------------------------------------------- CSRF


CSRF_EXEMPT = {"otlp-traces": "OTLP/HTTP: authenticated by the project key header, never by a cookie"}


def every_route() -> Iterator[tuple[str, str]]:
    """(name, a concrete path) for every named route outside the admin."""
    samples = {"int": "1", "str": "0123456789abcdef0123456789abcdef", "version": "1.0.0", "pk": "1"}

    def walk(patterns: Any, prefix: str, namespace: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace != "admin" and pattern.name:
                route = prefix + str(pattern.pattern)
                route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: samples.get(m.group(1), "1"), route)
                route = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: samples.get(m.group(1) or "str", "1"), route)
                route = route.replace("^", "").replace("$", "").replace("\\.", ".")
                if pattern.name == "alerts-event-action":
                    route = route.replace(samples["str"], "acknowledge")
                yield pattern.name, "/" + route

    yield from walk(get_resolver().url_patterns, "", "")


def test_every_post_without_a_csrf_token_is_refused(django_user_model: Any, project: Any) -> None:
    """Signed in, a POST without the token to any page or API route answers 403 CSRF, before the view runs."""
    from alerts.models import AlertRule, Channel
    from ingest.models import ModelPrice

    admin = django_user_model.objects.create_superuser("root", "root@localhost", PASSWORD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    routes = dict(every_route())
    assert {"login", "alerts-rules", "prices", "api-prices", "simulator", "alerts-rule-edit"} <= set(routes)
    bodies = {"alerts-rules": {"form": "rule", "rule-project": project.pk, "rule-name": "x", "rule-kind": "budget",
                               "rule-cooldown_minutes": 60, "rule-group_seconds": 60}}
    token = client.get("/alerts/").cookies["csrftoken"].value
    for name, path in sorted(routes.items(), key=lambda item: item[0] == "logout"):  # sign out last
        if name in CSRF_EXEMPT:
            continue
        response = client.post(path, bodies.get(name, {"name": "x"}))
        assert response.status_code == 403, (name, path, response.status_code)
        if b"CSRF" not in response.content:  # an HTML-only view: the token alone must make the difference
            with_token = client.post(path, {"name": "x"}, HTTP_X_CSRFTOKEN=token)
            assert with_token.status_code != 403, (name, path)
    channel_form = {"form": "channel", "channel-project": project.pk, "channel-kind": "webhook",
                    "channel-name": "x", "channel-url": "https://hooks.example.com/x"}
    assert client.post("/alerts/", channel_form).status_code == 403
    price = {"model": "m", "provider": "openai", "pattern": "^m$", "tier": 1,
             "rates": [{"effective_from": "2024-01-01", "input": "1", "output": "1"}]}
    assert client.post(f"/api/v1/prices?project={project.slug}", price, content_type="application/json").status_code == 403
    assert not AlertRule.objects.exists() and not Channel.objects.exists()
    assert not ModelPrice.objects.filter(project=project).exists()
    # the same form with its token goes through: the 403s above were the missing token, nothing else
    client.force_login(admin)
    token = client.get("/alerts/").cookies["csrftoken"].value
    created = client.post("/alerts/", {**bodies["alerts-rules"], "csrfmiddlewaretoken": token})
    assert created.status_code == 302 and AlertRule.objects.count() == 1


def test_the_sign_in_form_needs_its_token(django_user_model: Any) -> None:
    django_user_model.objects.create_user("frank", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login/", {"username": "frank", "password": PASSWORD}).status_code == 403
    token = client.get("/login/").cookies["csrftoken"].value
    assert client.post("/login/", {"username": "frank", "password": PASSWORD,
                                   "csrfmiddlewaretoken": token}).status_code == 302


def templates() -> list[Path]:
    found = [p for top in ("thinkmeter", "ingest", "dashboards", "alerts", "simulator")
             for p in (ROOT / top).rglob("templates/**/*.html")]
    assert len(found) > 10
    return found


def test_every_post_form_in_the_templates_carries_the_token() -> None:
    missing = []
    for path in templates():
        text = path.read_text()
        for form in re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", text, re.S | re.I):
            if "{% csrf_token %}" not in form:
                missing.append(f"{path.relative_to(ROOT)}: {form[:80]}")
    assert missing == []


# ---------------------------------------------------------------------- headers and CSP


def test_pages_answers_and_static_files_carry_the_security_headers(django_user_model: Any) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("gina", password=PASSWORD))
    for path in ("/", "/login/", "/finance/", "/api/v1/prices", "/static/thinkmeter/app.css", "/healthz",
                 "/api/docs/", "/nowhere/"):
        response = client.get(path)
        assert response.status_code in (200, 401, 404), path
        headers = response.headers
        assert headers["Content-Security-Policy"] == render_policy(DEFAULT_POLICY), path
        if not path.startswith("/static/"):  # WhiteNoise answers static files before the frame middleware
            assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", path
        assert "camera=()" in headers["Permissions-Policy"], path
    directives = dict(part.split(" ", 1) for part in render_policy(DEFAULT_POLICY).split("; "))
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    for sources in directives.values():  # no other origin, no eval, no wildcard anywhere
        assert not re.search(r"unsafe-eval|https?:|\*", sources), sources


def test_templates_have_no_inline_script() -> None:
    """What the CSP would block: inline <script> code, on* handler attributes, javascript: URLs."""
    problems = []
    for path in templates():
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            if "src=" not in tag and not re.search(r'type="(application/json|text/plain)"', tag):
                problems.append(f"{path.relative_to(ROOT)}: {tag}")
        problems += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text, re.I)]
        problems += [f"{path.relative_to(ROOT)}: javascript: URL" for _ in re.findall(r"javascript:", text, re.I)]
    assert problems == []


def test_https_mode_redirects_and_sends_hsts(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    client = Client()
    plain = client.get("/login/")
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200  # probes stay on plain HTTP
    secure = client.get("/login/", secure=True)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# ---------------------------------------------------------------------- production settings


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "THINKMETER_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "thinkmeter.example.com", "THINKMETER_HTTPS": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}", "CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
    })
    env.update(extra)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(("extra", "warning"), [
    ({"THINKMETER_HTTPS": "0"}, "security.W004"),  # no HSTS, insecure cookies, no redirect
    ({"DJANGO_DEBUG": "1"}, "security.W018"),
    ({"DJANGO_SECRET_KEY": "short"}, "security.W009"),
])
def test_check_deploy_notices_what_is_missing(tmp_path: Path, extra: dict[str, str], warning: str) -> None:
    """The check above can fail: each weakened setting is reported."""
    result = check_deploy(production_env(tmp_path, **extra))
    assert result.returncode != 0 and warning in result.stdout + result.stderr, result.stdout + result.stderr


SHOW_SETTINGS = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinkmeter.settings")
django.setup()
from django.conf import settings
print(settings.SECRET_KEY)
print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT,
      settings.SECURE_HSTS_SECONDS, settings.DEBUG)
"""


def test_the_secret_key_comes_from_the_environment(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    result = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    key, flags = result.stdout.splitlines()[-2:]
    assert key == env["DJANGO_SECRET_KEY"]
    assert flags == "True True True 31536000 False"


# ---------------------------------------------------------------------- no secrets in the repository


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "project API key": re.compile(r"\btm_[A-Za-z0-9_\-]{40,}"),
    "webhook signing secret": re.compile(r"\bwhsec_[A-Za-z0-9_\-]{30,}"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}"),
    "Django secret key setting": re.compile(r"^\s*SECRET_KEY\s*=\s*['\"]", re.M),
}


# Made-up or published example values that tests use on purpose (each with where and why).
KNOWN_FAKES = {
    "AKIAIOSFODNN7EXAMPLE": "AWS documentation's example key: the redaction tests (tests/ingest)",
    "hooks.slack.com/services/T0SECRET/B0SECRET/abcdefghijklmnopq": "made-up Slack URL: the URL-masking tests",
}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_secret_is_written_in_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 100
    found = []
    for path in files:
        if path.suffix in {".png", ".jpg", ".gz", ".parquet", ".whl", ".lock"} or path.stat().st_size > 5_000_000:
            continue
        text = path.read_text(errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                if not any(match.group(0).startswith(fake) for fake in KNOWN_FAKES):
                    found.append(f"{path.relative_to(ROOT)}: {what}: {match.group(0)[:12]}…")
    assert found == []


def test_the_secret_scan_finds_what_it_looks_for() -> None:
    samples = ["tm_" + secrets.token_urlsafe(32), "whsec_" + secrets.token_urlsafe(32), "AKIA" + "ABCDEFGHIJKLMNOP",
               "SECRET_KEY" + " = 'x'", "-----BEGIN RSA " + "PRIVATE KEY-----", "ghp_" + "a1" * 20]
    for sample in samples:
        assert any(p.search(sample) for p in SECRET_PATTERNS.values()), sample


def test_application_code_reads_credentials_from_settings_only() -> None:
    """No user:password@ URL in application code: connection strings come from the environment."""
    credentials = re.compile(r"[a-z+]+://[^/\s:@'\"]+:[^/\s@'\"]+@")
    found = []
    for top in ("thinkmeter", "ingest", "dashboards", "alerts", "simulator"):
        for path in (ROOT / top).rglob("*.py"):
            for match in credentials.finditer(path.read_text()):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    allowed_examples = {"user:pass@", "user:password@"}
    assert [f for f in found if not any(a in f for a in allowed_examples)] == []


def test_compose_takes_the_secret_key_from_the_environment_and_keeps_databases_private() -> None:
    """The compose files interpolate DJANGO_SECRET_KEY (required); their database passwords are
    defaults on the compose network, which publishes no database port to the host."""
    import yaml

    for compose_file in (ROOT / "docker-compose.yml", ROOT / "platform" / "cluster" / "docker-compose.yml"):
        if not compose_file.exists():
            continue
        text = compose_file.read_text()
        assert "DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY:?set it}" in text, compose_file
        services = yaml.safe_load(text)["services"]
        for name, service in services.items():
            if any(word in name for word in ("postgres", "clickhouse", "redis", "keeper")):
                assert not service.get("ports"), f"{compose_file.name}: {name} publishes {service['ports']}"


# ---------------------------------------------------------------------- locked dependencies


def test_the_lock_pins_every_declared_dependency() -> None:
    import tomllib

    from tests.hardening.audit_lock import canonical, pinned

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {canonical(re.split(r"[<>=!~\[;\s]", item, maxsplit=1)[0]) for item in declared}
    locked = pinned(ROOT / "requirements.lock")
    assert names - set(locked) == set(), "run `make lock` after changing pyproject.toml"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!\-]*", version) for version in locked.values())


def test_the_audit_ignore_list_names_advisories_only() -> None:
    from tests.hardening.audit_lock import IGNORE_FILE, ignored

    assert IGNORE_FILE.exists()
    for advisory in ignored():
        assert re.fullmatch(r"(PYSEC|GHSA|CVE|OSV)-[0-9A-Za-z\-]+", advisory), advisory
