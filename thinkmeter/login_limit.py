"""Failed sign-ins are limited: per username and client address, and per client address.

:class:`RateLimitedModelBackend` is Django's ``ModelBackend`` that counts failed password
checks in the Django cache — Redis when ``REDIS_URL`` is set, so every process and
machine shares the counts; the file cache under ``var/`` in embedded mode, shared by
the serving process and its workers. After ``LOGIN_FAILURES_PER_USER`` failures for one
username from one address (or ``LOGIN_FAILURES_PER_ADDRESS`` from one address, any
usernames) within ``LOGIN_FAILURE_WINDOW_SECONDS``, sign-ins from there are refused —
even with the right password — until the window that began with the first failure
ends. A successful sign-in clears its username's count. It guards every password form
(``/login/`` and ``/admin/login/``); the sign-in page answers 429 with Retry-After.

The client address is ``REMOTE_ADDR``: behind a reverse proxy, have the proxy (or a
middleware you trust) set it from the forwarded header.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

PREFIX = "thinkmeter:login-failures"


def _limits() -> tuple[int, int, int]:
    return (int(getattr(settings, "LOGIN_FAILURES_PER_USER", 5)),
            int(getattr(settings, "LOGIN_FAILURES_PER_ADDRESS", 50)),
            int(getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 900)))


def client_address(request: HttpRequest | None) -> str:
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


def _keys(username: str, address: str) -> tuple[str, str]:
    name = username.strip().lower()
    user_key = hashlib.sha256(f"{name}\0{address}".encode()).hexdigest()
    address_key = hashlib.sha256(address.encode()).hexdigest()
    return f"{PREFIX}:user:{user_key}", f"{PREFIX}:addr:{address_key}"


def _count(key: str, now: float) -> tuple[int, float]:
    """(failures, window end) of a counter; (0, 0) when there is none or its window is over."""
    value = cache.get(key)
    if not value or value[1] <= now:
        return 0, 0.0
    return int(value[0]), float(value[1])


def locked_for(request: HttpRequest | None, username: str) -> int:
    """Seconds until sign-ins for ``username`` from this request's address are allowed again (0: now)."""
    per_user, per_address, _ = _limits()
    now = time.time()
    waits = [end - now for key, limit in zip(_keys(username, client_address(request)), (per_user, per_address),
                                              strict=True)
             for count, end in [_count(key, now)] if count >= limit]
    return max(1, int(max(waits) + 0.999)) if waits else 0


def record_failure(request: HttpRequest | None, username: str) -> None:
    """Count one failed sign-in against the username-and-address and the address counters."""
    _, _, window = _limits()
    now = time.time()
    for key in _keys(username, client_address(request)):
        count, end = _count(key, now)
        end = end or now + window
        cache.set(key, (count + 1, end), timeout=max(1, int(end - now + 0.999)))


def clear(request: HttpRequest | None, username: str) -> None:
    """A successful sign-in forgets its username's failures (the address counter keeps counting)."""
    cache.delete(_keys(username, client_address(request))[0])


class RateLimitedModelBackend(ModelBackend):
    """``ModelBackend`` that refuses sign-ins while their username and address are locked out."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if username is None:
            from django.contrib.auth import get_user_model

            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        if locked_for(request, str(username)):
            raise PermissionDenied("too many failed sign-ins; try again later")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(request, str(username))
        else:
            clear(request, str(username))
        return user
