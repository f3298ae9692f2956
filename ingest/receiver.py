"""Key checks shared by the OTLP receivers (HTTP ``/v1/traces`` and gRPC ``TraceService/Export``).

:func:`check_key` authenticates the project key, checks its ``ingest`` scope and takes a
token from the key's rate-limit bucket. A failure raises :class:`KeyRejected`, which
carries the HTTP status the OTLP/HTTP receiver answers with; the gRPC receiver maps that
status to its own code (401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 429 →
RESOURCE_EXHAUSTED). Missing, invalid and revoked keys get the same status, so nothing
reveals whether a key or project exists.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError

from ingest.ratelimit import limiter
from thinkmeter import metrics
from thinkmeter.models import ApiKey

INGEST_SCOPE = "ingest"


class KeyRejected(Exception):
    """The request's key may not ingest now; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after

    @property
    def unauthenticated(self) -> bool:
        return self.status == 401


KEY_STORE_RETRY_S = 2.0


def check_key(token: str | None) -> ApiKey:
    """The active key for ``token`` with the ingest scope and rate-limit room, else :class:`KeyRejected`.

    ``token`` is the bearer token already taken out of the ``Authorization`` header or
    metadata (None when there was none).
    """
    if token is None:
        raise KeyRejected(401, "missing API key: send Authorization: Bearer <project key>")
    try:
        key = ApiKey.lookup(token)
    except DatabaseError as exc:  # the key store is down or locked: the client should retry, not drop
        raise KeyRejected(503, "API key store unavailable, retry later", retry_after=KEY_STORE_RETRY_S) from exc
    if key is None:
        raise KeyRejected(401, "invalid or revoked API key")
    if not key.has_scope(INGEST_SCOPE):
        raise KeyRejected(403, "this API key lacks the ingest scope")
    wait = limiter(settings.OTLP_RATE_LIMIT_PER_SECOND).take(key.pk)
    if wait:
        metrics.SPANS_REJECTED.labels("rate_limited").inc()
        raise KeyRejected(429, "rate limit exceeded for this API key", retry_after=wait)
    return key
