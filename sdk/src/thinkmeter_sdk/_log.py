"""The SDK's logger, and logging each distinct problem once.

The instrumentation runs inside the application's LLM calls: a problem of ours must
never reach the application, and must not flood its logs either. ``log_once`` logs the
first occurrence of each problem (by key) with its traceback and counts the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("thinkmeter_sdk")

_seen: Counter[str] = Counter()
_lock = threading.Lock()


def log_once(key: str, message: str, *args: object, exc_info: bool = True, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen; afterwards only count it."""
    with _lock:
        _seen[key] += 1
        first = _seen[key] == 1
    if first:
        logger.log(level, message + " (logged once; later occurrences are counted silently)", *args,
                   exc_info=exc_info)


def occurrences(key: str) -> int:
    """How many times ``key`` was reported (for tests and diagnostics)."""
    with _lock:
        return _seen[key]


def reset() -> None:
    """Forget every key (tests)."""
    with _lock:
        _seen.clear()
