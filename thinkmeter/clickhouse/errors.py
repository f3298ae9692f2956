"""The one exception type that ClickHouse failures become, whatever the transport."""

from __future__ import annotations


class ClickHouseError(Exception):
    """A statement failed. ``tag`` names what asked for it; ``message`` is ClickHouse's own text."""

    def __init__(self, tag: str, message: str, code: int | None = None) -> None:
        self.tag = tag
        self.message = message
        self.code = code
        super().__init__(f"ClickHouse statement {tag!r} failed: {message}")


class ClickHouseUnavailable(ClickHouseError):
    """ClickHouse could not be reached or refused work for now; retrying later may succeed."""


class EmbeddedStoreLocked(ClickHouseUnavailable):
    """Another process holds the embedded chdb directory."""


class ScopeError(ClickHouseError):
    """A statement was issued without naming the projects it serves."""
