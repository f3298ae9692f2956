"""Per-key token-bucket rate limit for the OTLP receivers: in-process, or in Redis across replicas.

:func:`limiter` returns the bucket for a rate. Without ``REDIS_URL`` (embedded mode, one
serving process) the buckets live in this process. With ``REDIS_URL`` they live in Redis,
so every web replica takes from the same bucket per key: one round trip per request
runs a small Lua script that refills and takes atomically on Redis's clock. If Redis
cannot be reached the request is let through (the limit protects capacity; it must not
turn a Redis outage into an ingest outage) and a warning is logged at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger(__name__)
KEY_PREFIX = "thinkmeter:ratelimit"
REDIS_TIMEOUT_S = 0.5
WARN_EVERY_S = 60.0

# KEYS[1] = bucket; ARGV = rate per second, burst. Returns the seconds to wait (0: taken) as a string.
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class Bucket(Protocol):
    rate: float
    burst: float

    def take(self, key: object) -> float: ...


class TokenBucket:
    """Buckets of this process only."""

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


class RedisTokenBucket:
    """Buckets shared by every process that uses the same Redis (``KEY_PREFIX:<rate>:<key>``)."""

    def __init__(self, rate: float, burst: float, url: str) -> None:
        import redis

        self.rate, self.burst = rate, burst
        self._redis = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                           socket_connect_timeout=REDIS_TIMEOUT_S)
        self._take: Any = self._redis.register_script(TAKE_SCRIPT)
        self._warned_at = -WARN_EVERY_S

    def take(self, key: object) -> float:
        """0 when allowed (or when Redis cannot be asked); else the seconds to wait."""
        import redis

        try:
            return float(self._take(keys=[f"{KEY_PREFIX}:{self.rate:g}:{key}"], args=[self.rate, self.burst]))
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                log.warning("rate limit not applied: Redis cannot be reached (%s)", exc)
            return 0.0


_buckets: dict[float, Bucket] = {}


def limiter(rate: float) -> Bucket:
    """The bucket for ``rate`` requests per second per key (burst: one second's worth, at least 1)."""
    bucket = _buckets.get(rate)
    if bucket is None:
        from django.conf import settings

        burst = max(rate, 1.0)
        url = settings.REDIS_URL
        bucket = _buckets[rate] = RedisTokenBucket(rate, burst, url) if url else TokenBucket(rate, burst)
    return bucket
