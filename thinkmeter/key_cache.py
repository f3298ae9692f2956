"""Active API keys kept in process for a few seconds: authentication off the database per request.

Every OTLP request and every API call authenticates a key. Reading it from the database
each time cost about a tenth of the serving process's CPU at 20,000 spans/s (one ORM
query per 512-span request, profiled with py-spy during ``bench/load.py``). A key found
active is kept here for at most :data:`MAX_AGE_S` and only while the ``api-keys``
generation (:mod:`thinkmeter.generations`) is unchanged: saving or deleting a key or a
project bumps it (:mod:`thinkmeter.signals`), so a revoked key stops authenticating in
the revoking process at once and in every other process within about a second. A
change that bypasses the model's signals (``QuerySet.update``) is seen after
:data:`MAX_AGE_S`. Unknown and revoked keys are never kept: each such request asks the
database, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from thinkmeter import generations

MAX_AGE_S = 10.0
MAX_KEYS = 10_000  # more distinct active keys than this in ten seconds: start over


class KeyCache:
    """Digest → active key, each entry tagged with the generation and time it was read."""

    def __init__(self, max_age: float = MAX_AGE_S, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.max_keys = max_keys
        self.clock = clock
        self._entries: dict[str, tuple[Any, str | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Any | None:
        """The kept key for ``digest``, or None when there is none, it is too old or a key changed since."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        key, generation, read_at = entry
        if generation != generations.api_keys.current() or self.clock() - read_at > self.max_age:
            self._entries.pop(digest, None)
            return None
        return key

    def put(self, digest: str, key: Any, generation: str | None) -> None:
        """Keep ``key``, read from the database while ``generation`` was current (taken before the read)."""
        with self._lock:
            if len(self._entries) >= self.max_keys:
                self._entries.clear()
            self._entries[digest] = (key, generation, self.clock())

    def forget(self, digest: str | None = None) -> None:
        """Drop one key (by digest), or every key."""
        with self._lock:
            if digest is None:
                self._entries.clear()
            else:
                self._entries.pop(digest, None)


active_keys = KeyCache()
