"""Generation tokens in the shared Django cache: invalidate per-process caches in every process.

Several processes keep caches of database state to stay off the database per span:
classification rules (:mod:`ingest.classify`), project settings in the ingest worker
processes (:mod:`ingest.parallel`), active API keys (:mod:`thinkmeter.key_cache`). When the state changes, the process that changed it
calls :meth:`Generation.bump`, which stores a new random token under the generation's
key in the shared cache — Redis (``REDIS_URL``) across web replicas in server mode, the
file cache shared with the ingest workers in embedded mode. A cache remembers the token
it was built under and rebuilds when :meth:`Generation.current` returns another one.
``current`` asks the shared cache at most once per :data:`CHECK_EVERY_S` per process, so
the hot path pays a clock read, and every process sees a change within about a second.

A cache backend that cannot be reached never fails the caller: ``current`` keeps the last
token it saw (the caches' own maximum age still applies) and ``bump`` logs a warning.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

log = logging.getLogger(__name__)
CHECK_EVERY_S = 1.0
KEY_PREFIX = "thinkmeter:generation"


class Generation:
    """One named generation (``thinkmeter:generation:<name>`` in the shared cache)."""

    def __init__(self, name: str, check_every: float = CHECK_EVERY_S) -> None:
        self.key = f"{KEY_PREFIX}:{name}"
        self.check_every = check_every
        self._token: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> str | None:
        """The latest token this process knows (the shared cache is asked at most every ``check_every`` s)."""
        now = time.monotonic()
        if now - self._checked_at < self.check_every:
            return self._token
        with self._lock:
            if now - self._checked_at >= self.check_every:
                self._checked_at = now
                try:
                    from django.core.cache import cache

                    self._token = cache.get(self.key)
                except Exception as exc:  # noqa: BLE001 - any backend failure: keep the last token
                    log.debug("generation %s not read: %s", self.key, exc)
        return self._token

    def bump(self) -> None:
        """Announce a change: every process's :meth:`current` returns a new token within ``check_every`` s."""
        token = uuid.uuid4().hex
        try:
            from django.core.cache import cache

            cache.set(self.key, token, None)
        except Exception as exc:  # noqa: BLE001 - the change itself is saved; other processes catch up by age
            log.warning("could not announce a change of %s to other processes: %s", self.key, exc)
            return
        with self._lock:
            self._token, self._checked_at = token, time.monotonic()


classification_rules = Generation("classification-rules")
projects = Generation("projects")
api_keys = Generation("api-keys")
