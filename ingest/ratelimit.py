"""Per-key token-bucket rate limit for the OTLP receivers (in-process)."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """0 when allowed; else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1 - tokens) / self.rate


_buckets: dict[float, TokenBucket] = {}


def limiter(rate: float) -> TokenBucket:
    bucket = _buckets.get(rate)
    if bucket is None:
        bucket = _buckets[rate] = TokenBucket(rate, burst=max(rate, 1.0))
    return bucket
