"""Parse ``CLICKHOUSE_URL`` into a transport configuration.

Accepted forms:
``chdb://var/clickhouse`` (embedded, relative to the project root),
``chdb:///abs/dir`` (embedded, absolute),
``clickhouse://user:password@host:9000/db`` (server, native protocol),
``clickhouses://user:password@host:9440/db`` (server, native protocol over TLS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ACCEPTED_FORMS = (
    "chdb://<relative dir>, chdb:///<absolute dir>, "
    "clickhouse://user:password@host:9000/db, clickhouses://user:password@host:9440/db"
)


class ClickHouseConfigError(ValueError):
    """CLICKHOUSE_URL cannot be used."""


@dataclass(frozen=True)
class ClickHouseConfig:
    kind: str  # "chdb" or "native"
    path: Path | None = None
    host: str = "localhost"
    port: int = 9000
    user: str = "default"
    password: str = ""
    database: str = "default"
    secure: bool = False

    def describe(self) -> str:
        """Where the data lives, without credentials."""
        if self.kind == "chdb":
            return f"embedded chdb at {self.path}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.host}:{self.port}/{self.database}"


def parse_clickhouse_url(url: str, base_dir: Path) -> ClickHouseConfig:
    """Return the configuration for ``url``; raise ClickHouseConfigError naming the accepted forms."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        raw = url[len("chdb://") :]
        if not raw or raw == "/":
            raise ClickHouseConfigError(f"CLICKHOUSE_URL {url!r} names no directory; accepted forms: {ACCEPTED_FORMS}")
        path = Path(raw) if raw.startswith("/") else base_dir / raw
        return ClickHouseConfig(kind="chdb", path=path)
    if parts.scheme in {"clickhouse", "clickhouses"}:
        if not parts.hostname:
            raise ClickHouseConfigError(f"CLICKHOUSE_URL {url!r} names no host; accepted forms: {ACCEPTED_FORMS}")
        secure = parts.scheme == "clickhouses"
        return ClickHouseConfig(
            kind="native",
            host=parts.hostname,
            port=parts.port or (9440 if secure else 9000),
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=(parts.path or "/").strip("/") or "default",
            secure=secure,
        )
    raise ClickHouseConfigError(
        f"CLICKHOUSE_URL has unknown scheme {parts.scheme or '(none)'!r}; accepted forms: {ACCEPTED_FORMS}"
    )
