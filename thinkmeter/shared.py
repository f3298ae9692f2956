"""Values that every web replica shares through Redis (``REDIS_URL``); nothing without it.

For computed results that are costly to recompute and the same for every process (the
runaway rules' p95 statistics, :mod:`alerts.stats`): one replica computes, the others
read. Without ``REDIS_URL`` (embedded mode, one serving process) :func:`get` finds nothing
and :func:`put` keeps nothing. A Redis failure is logged and treated as a miss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)
KEY_PREFIX = "thinkmeter:shared"


def enabled() -> bool:
    from django.conf import settings

    return bool(settings.REDIS_URL)


def get(key: str) -> Any | None:
    """The value stored under ``key`` by any replica, or None."""
    if not enabled():
        return None
    from django.core.cache import cache

    try:
        return cache.get(f"{KEY_PREFIX}:{key}")
    except Exception as exc:  # noqa: BLE001 - a miss: the caller computes the value itself
        log.warning("shared value %s not read: %s", key, exc)
        return None


def put(key: str, value: Any, timeout: float) -> None:
    """Store ``value`` for every replica for ``timeout`` seconds."""
    if not enabled():
        return
    from django.core.cache import cache

    try:
        cache.set(f"{KEY_PREFIX}:{key}", value, timeout)
    except Exception as exc:  # noqa: BLE001 - the other replicas compute it themselves
        log.warning("shared value %s not stored: %s", key, exc)


def forget(keys: Iterable[str]) -> None:
    """Remove ``keys`` for every replica."""
    names = [f"{KEY_PREFIX}:{key}" for key in keys]
    if not enabled() or not names:
        return
    from django.core.cache import cache

    try:
        cache.delete_many(names)
    except Exception as exc:  # noqa: BLE001
        log.warning("shared values not removed: %s", exc)
