"""Where to send spans and how: arguments first, then environment variables (pure, no I/O).

Precedence, for the traces URL:

1. ``configure(endpoint=...)`` — Thinkmeter's base URL; ``/v1/traces`` is added;
2. ``THINKMETER_ENDPOINT`` — a base URL too;
3. ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` — the only *full* URL, used as it is;
4. ``OTEL_EXPORTER_OTLP_ENDPOINT`` — a base URL (``/v1/traces`` added, as OTel specifies);
5. ``http://127.0.0.1:8000`` (what ``make run`` serves).

The API key comes from ``api_key=``, then ``THINKMETER_API_KEY``, then an
``Authorization: Bearer`` header in ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` /
``OTEL_EXPORTER_OTLP_HEADERS``. The REST API (budgets, scores) lives at the same base URL.
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` name the service unless
``service_name=`` does; ``OTEL_SDK_DISABLED=true`` turns export off.
Prompt and completion text is captured only when ``capture_content=True`` or
``THINKMETER_CAPTURE_CONTENT`` is true.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TRACES_PATH = "/v1/traces"
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigurationError(ValueError):
    """A setting that cannot work (bad URL, missing key, ...): the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """The resolved settings. ``repr`` never shows the key."""

    base_url: str
    traces_url: str
    api_key: str = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)
    service_name: str | None
    capture_content: bool
    disabled: bool
    source: str  # which setting gave the URL, for error messages

    @property
    def api_url(self) -> str:
        """The REST API root, ``<base>/api/v1``."""
        return self.base_url + "/api/v1"


def env_flag(name: str, env: Mapping[str, str], default: bool = False) -> bool:
    """A boolean environment variable; a value that is neither true nor false is an error."""
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r}: expected true or false")


def check_url(url: str, source: str) -> str:
    """An absolute http(s) URL without a trailing slash, query or fragment."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{source}={url!r} is not an http(s) URL such as http://127.0.0.1:8000"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{source}={url!r}: a base URL takes no query string or fragment")
    return text.rstrip("/")


def base_from_endpoint(url: str, source: str) -> str:
    """Thinkmeter's base URL from a base URL someone gave.

    A base URL that already ends in ``/v1/traces`` (a common slip) is taken as meaning the
    base in front of it, rather than sending to ``.../v1/traces/v1/traces``.
    """
    base = check_url(url, source)
    if base.endswith(TRACES_PATH):
        base = base[: -len(TRACES_PATH)]
        if not urlsplit(base).netloc:
            raise ConfigurationError(f"{source}={url!r}: no host in front of /v1/traces")
    return base


def parse_headers(raw: str) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` syntax: ``key=value,key2=value2`` (values URL-encoded)."""
    from urllib.parse import unquote

    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"OTLP headers: {item!r} is not key=value")
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def resolve(
    endpoint: str | None = None,
    api_key: str | None = None,
    service_name: str | None = None,
    capture_content: bool | None = None,
    env: Mapping[str, str] | None = None,
    require_key: bool = True,
) -> Settings:
    """The settings from these arguments and ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    disabled = env_flag("OTEL_SDK_DISABLED", env)

    traces_env = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if endpoint is not None and endpoint.strip():
        base, source = base_from_endpoint(endpoint, "endpoint"), "endpoint"
        traces_url = base + TRACES_PATH
    elif env.get("THINKMETER_ENDPOINT", "").strip():
        base = base_from_endpoint(env["THINKMETER_ENDPOINT"], "THINKMETER_ENDPOINT")
        source, traces_url = "THINKMETER_ENDPOINT", base + TRACES_PATH
    elif traces_env:
        traces_url = check_url(traces_env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        base = traces_url[: -len(TRACES_PATH)] if traces_url.endswith(TRACES_PATH) else traces_url
        source = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        base = base_from_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "OTEL_EXPORTER_OTLP_ENDPOINT")
        source, traces_url = "OTEL_EXPORTER_OTLP_ENDPOINT", base + TRACES_PATH
    else:
        base, source, traces_url = DEFAULT_BASE_URL, "default", DEFAULT_BASE_URL + TRACES_PATH

    headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    key = (api_key if api_key is not None else env.get("THINKMETER_API_KEY", "")).strip()
    if not key:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if key:
        headers["authorization"] = f"Bearer {key}"
    elif require_key and not disabled:
        raise ConfigurationError(
            "no Thinkmeter API key: pass configure(api_key=...) or set THINKMETER_API_KEY "
            "(`python manage.py create_project <slug>` prints one)"
        )

    if capture_content is None:
        capture_content = env_flag("THINKMETER_CAPTURE_CONTENT", env)
    return Settings(
        base_url=base, traces_url=traces_url, api_key=key, headers=headers,
        service_name=service_name or None, capture_content=capture_content, disabled=disabled, source=source,
    )
