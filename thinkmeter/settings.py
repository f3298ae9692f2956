"""Django settings for Thinkmeter, read from the environment.

Every variable has an embedded-mode default that needs nothing but ``pip install``:
chdb under ``var/clickhouse``, SQLite under ``var/``, tasks on an in-process worker.
The README lists every variable; ``tests/test_compose.py`` checks that the compose
file sets only variables read here (``ENVIRONMENT_VARIABLES``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# Every environment variable the settings read, with its meaning (the README table mirrors it).
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "DJANGO_SECRET_KEY": "secret key (default: a random key generated once into var/secret_key)",
    "DJANGO_DEBUG": "1 for development error pages (default 0)",
    "DJANGO_ALLOWED_HOSTS": "comma-separated host names served (default 127.0.0.1,localhost)",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "comma-separated origins trusted for CSRF behind a proxy",
    "THINKMETER_HTTPS": "1 when served over HTTPS (directly or behind a proxy setting X-Forwarded-Proto): secure cookies, redirect to https, HSTS (default 0)",
    "THINKMETER_HSTS_SECONDS": "Strict-Transport-Security max-age when THINKMETER_HTTPS=1 (default 31536000; 0 = no HSTS)",
    "DATABASE_URL": "Django database (default sqlite:///var/thinkmeter.sqlite3)",
    "CLICKHOUSE_URL": "chdb://<dir> (embedded, default chdb://var/clickhouse) or clickhouse[s]://user:pass@host:9000/db",
    "CLICKHOUSE_RETENTION_DAYS": "days spans are kept before ClickHouse's TTL drops them (default 395)",
    "CLICKHOUSE_CLUSTER": "cluster name for replicated/distributed tables (server mode only; default empty)",
    "CELERY_BROKER_URL": "Celery broker (for example redis://redis:6379/0); unset: in-process worker",
    "REDIS_URL": "Redis for caches and rate limits in server mode (default: none, in-process)",
    "THINKMETER_WEBHOOK_ALLOW_HOSTS": "hosts outgoing webhooks may reach although private or loopback",
    "THINKMETER_GRPC_PORT": "port of the OTLP/gRPC receiver started inside `manage.py serve` (default 4317; 0 = off)",
    "THINKMETER_MAX_SPANS_PER_REQUEST": "spans accepted in one export request (default 50000)",
    "THINKMETER_RATE_LIMIT_PER_SECOND": "ingest requests per second per API key (default 200)",
    "THINKMETER_INGEST_PROCESSES": "worker processes `manage.py serve` starts for decoding spans (default: CPU count)",
    "THINKMETER_INGEST_LINGER_MS": "how long a span insert waits for more requests to join it (default 100)",
    "THINKMETER_BASE_URL": "public URL of this installation, used in alert links (default http://127.0.0.1:8000)",
    "THINKMETER_LOG_LEVEL": "log level (default INFO)",
}


def env(name: str, default: str = "") -> str:
    """Read one documented environment variable."""
    assert name in ENVIRONMENT_VARIABLES, f"undocumented setting {name}"
    return os.environ.get(name, default)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env("DJANGO_DEBUG", "0").lower() in {"1", "true", "yes"}
def _secret_key() -> str:
    """DJANGO_SECRET_KEY, else (embedded mode) a random key generated once and kept in var/."""
    configured = env("DJANGO_SECRET_KEY")
    if configured:
        return configured
    import secrets

    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "thinkmeter",
    "ingest",
    "dashboards",
    "alerts",
    "simulator",
]

MIDDLEWARE = [
    "thinkmeter.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "thinkmeter.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "thinkmeter.urls"
WSGI_APPLICATION = "thinkmeter.wsgi.application"
ASGI_APPLICATION = "thinkmeter.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "thinkmeter" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not env("DATABASE_URL"):
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'thinkmeter.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded mode: take the write lock when a transaction starts and wait for it, so
    # concurrent read-then-write transactions queue instead of failing "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Failed sign-ins are counted in the cache (thinkmeter.login_limit): after 5 for one username
# from one address, or 50 from one address, within 15 minutes, sign-ins from there wait.
AUTHENTICATION_BACKENDS = ["thinkmeter.login_limit.RateLimitedModelBackend"]
LOGIN_FAILURES_PER_USER = 5
LOGIN_FAILURES_PER_ADDRESS = 50
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
# Static files (including plotly.js) are served by the project itself, from the app
# directories, in every mode: no CDN and no collectstatic step needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The OTLP receivers read the raw body themselves and enforce their own 64 MiB limit
# (decompressed), so Django's form-body cap must not cut the body first.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
OTLP_MAX_BODY_BYTES = 64 * 1024 * 1024
OTLP_MAX_SPANS_PER_REQUEST = int(env("THINKMETER_MAX_SPANS_PER_REQUEST", "50000"))
OTLP_RATE_LIMIT_PER_SECOND = float(env("THINKMETER_RATE_LIMIT_PER_SECOND", "200"))
OTLP_GRPC_PORT = int(env("THINKMETER_GRPC_PORT", "4317"))
INGEST_PROCESSES = int(env("THINKMETER_INGEST_PROCESSES") or os.cpu_count() or 1)
INGEST_LINGER_MS = float(env("THINKMETER_INGEST_LINGER_MS", "100"))
BASE_URL = env("THINKMETER_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

CLICKHOUSE_URL = env("CLICKHOUSE_URL", "chdb://var/clickhouse")
CLICKHOUSE_RETENTION_DAYS = int(env("CLICKHOUSE_RETENTION_DAYS", "395"))
CLICKHOUSE_CLUSTER = env("CLICKHOUSE_CLUSTER")

CELERY_BROKER_URL = env("CELERY_BROKER_URL")
REDIS_URL = env("REDIS_URL")
WEBHOOK_ALLOW_HOSTS = env_list("THINKMETER_WEBHOOK_ALLOW_HOSTS")

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        # Embedded: shared by the serving process and its ingest worker processes.
        else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
    )
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "thinkmeter.auth.ProjectKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "thinkmeter.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Thinkmeter API",
    "DESCRIPTION": "Cost and reasoning-token analytics for LLM applications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the project (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AlertKindEnum": "alerts.models.AlertRule.Kind",
        "ChannelKindEnum": "alerts.models.Channel.Kind",
    },
    # Every operation's error answers (400/401/403/404/503) are documented too.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "thinkmeter.schema_errors.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("THINKMETER_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# ---------------------------------------------------------------- security
# Secrets come from the environment only (DJANGO_SECRET_KEY; database and broker passwords
# inside DATABASE_URL, CLICKHOUSE_URL, CELERY_BROKER_URL, REDIS_URL). Headers: X-Frame-Options,
# nosniff, Referrer-Policy and Cross-Origin-Opener-Policy (SecurityMiddleware), and
# Content-Security-Policy and Permissions-Policy (thinkmeter.security_headers).
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
HTTPS = env("THINKMETER_HTTPS", "0").lower() in {"1", "true", "yes"}
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Probes and Prometheus scrape the app over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    # The proxy in front terminates TLS and says so (it must overwrite the client's header).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(env("THINKMETER_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
