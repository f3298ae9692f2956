"""A headless Debian Chromium page (driven by Playwright) that records what went wrong.

Shared by the browser tests: console errors, page errors and failed requests go to a
list the test asserts on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium_page(width: int, height: int, init_script: str | None = None) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page of the given viewport, and the list its console/page errors and HTTP ≥ 400 go to."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (tests/run_tests.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        try:
            yield page, problems
        finally:
            browser.close()
