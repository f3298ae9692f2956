"""Parse ``CLICKHOUSE_URL`` into a transport configuration.

Accepted forms:
``chdb://var/clickhouse`` (embedded, relative to the project root),
``chdb:///abs/dir`` (embedded, absolute),
``clickhouse://user:password@host:9000/db`` (server, native protocol),
``clickhouses://user:password@host:9440/db`` (server, native protocol over TLS).

A server URL may name more nodes to fail over to, in order, when the first cannot be
reached: ``clickhouse://user:password@ch1:9000/db?alt_hosts=ch2:9000,ch3`` (a cluster's
replicas; the driver tries them in turn).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

ACCEPTED_FORMS = (
    "chdb://<relative dir>, chdb:///<absolute dir>, "
    "clickhouse://user:password@host:9000/db, clickhouses://user:password@host:9440/db "
    "(optionally ?alt_hosts=host2:9000,host3:9000)"
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
    alt_hosts: tuple[str, ...] = ()  # "host:port" of nodes to fail over to

    def describe(self) -> str:
        """Where the data lives, without credentials."""
        if self.kind == "chdb":
            return f"embedded chdb at {self.path}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        others = f" (failing over to {', '.join(self.alt_hosts)})" if self.alt_hosts else ""
        return f"{scheme}://{self.host}:{self.port}/{self.database}{others}"


def _alt_hosts(url: str, query: str, default_port: int) -> tuple[str, ...]:
    """``alt_hosts=a:9000,b`` → ("a:9000", "b:<default port>"); anything else in the query is an error."""
    params = parse_qs(query, keep_blank_values=True)
    unknown = set(params) - {"alt_hosts"}
    if unknown:
        raise ClickHouseConfigError(f"CLICKHOUSE_URL {url!r} has unknown parameters {sorted(unknown)}; "
                                    f"accepted forms: {ACCEPTED_FORMS}")
    hosts = []
    for item in ",".join(params.get("alt_hosts", [])).split(","):
        host, _, port = item.strip().partition(":")
        if not host and not port:
            continue
        if not host or (port and not port.isdigit()):
            raise ClickHouseConfigError(f"CLICKHOUSE_URL {url!r} has a bad alt_hosts entry {item!r} (host[:port])")
        hosts.append(f"{host}:{port or default_port}")
    return tuple(hosts)


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
        port = parts.port or (9440 if secure else 9000)
        return ClickHouseConfig(
            kind="native",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=(parts.path or "/").strip("/") or "default",
            secure=secure,
            alt_hosts=_alt_hosts(url, parts.query, port),
        )
    raise ClickHouseConfigError(
        f"CLICKHOUSE_URL has unknown scheme {parts.scheme or '(none)'!r}; accepted forms: {ACCEPTED_FORMS}"
    )
