"""Where a page's time went, in its ``Server-Timing`` header (shown by the browser's network panel).

A page view decorated with :func:`timed_page` collects a :class:`Timing` and measures its
steps with :func:`measure`; :func:`dashboards.page_fetch.gather` adds each data call it
runs (they overlap, so their sum may exceed the page's time). The header reads, for
example, ``data.per_call;dur=640.2, data;dur=812.4, render;dur=20.3, total;dur=930.1``.
``bench/load.py`` reports these per page, which is how a slow part shows up under load.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

HEADER = "Server-Timing"
_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Timing:
    parts: list[tuple[str, float]] = field(default_factory=list)

    def add(self, name: str, seconds: float) -> None:
        self.parts.append((_NAME.sub("_", name), seconds))

    def header(self) -> str:
        return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in self.parts)


_current: ContextVar[Timing | None] = ContextVar("server_timing", default=None)


def current() -> Timing | None:
    """The timing of the page being served on this thread, or None."""
    return _current.get()


@contextmanager
def page_timing() -> Iterator[Timing]:
    """Collect the timings of one page (the view sets the header from the result)."""
    timing = Timing()
    token = _current.set(timing)
    try:
        yield timing
    finally:
        _current.reset(token)


@contextmanager
def measure(name: str) -> Iterator[None]:
    """Time a step of the current page (nothing when no page is being timed)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timing = current()
        if timing is not None:
            timing.add(name, time.perf_counter() - started)


def timed_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a page view: its response carries the ``Server-Timing`` of its steps and ``total``."""

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        with page_timing() as timing:
            started = time.perf_counter()
            response = view(request, *args, **kwargs)
            timing.add("total", time.perf_counter() - started)
        response[HEADER] = timing.header()
        return response

    return wrapper


def parse(header: str) -> dict[str, float]:
    """``name;dur=ms, ...`` → {name: milliseconds} (what :meth:`Timing.header` writes)."""
    out: dict[str, float] = {}
    for item in header.split(","):
        name, _, rest = item.strip().partition(";dur=")
        try:
            out[name] = float(rest)
        except ValueError:
            continue
    return out
