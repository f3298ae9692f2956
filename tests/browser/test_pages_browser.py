"""Every dashboard page in headless Chromium (Debian's), driven by Playwright, against seeded data.

The demo traffic goes through the real ingest path (``manage.py seed_demo`` posting to
the live server's ``/v1/traces``). The test signs in, loads each page, checks that every
chart div holds a drawn Plotly figure and that the browser logged no errors, changes
filters and watches the URL and the chart follow, and saves full-page screenshots under
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.support.chromium import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def site(live_server: Any, project: Any, project_key: str, ch: Any, django_user_model: Any) -> str:
    """The live server's URL, with demo traffic stored and a superuser admin / browser-pw.

    Done before Playwright starts: its sync API runs an event loop in this thread, and
    Django refuses database calls from a thread with a running loop.
    """
    call_command("seed_demo", "--url", live_server.url, "--key", project_key, "--project", project.slug,
                 "--spans", "1500", "--days", "20", "--seed", "11", "--concurrency", "2")
    django_user_model.objects.create_superuser("admin", "admin@localhost", "browser-pw")
    return str(live_server.url)


@pytest.fixture
def browser_page(site: str) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page and the list its console errors, page errors and failed requests go to."""
    with chromium_page(1440, 900) as opened:
        yield opened


def _charts_drawn(page: Any) -> int:
    """Wait until every chart div is drawn; return how many there are (each with Plotly's SVG)."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart[data-figure]')].every(el => el.dataset.rendered === '1')",
        timeout=30_000,
    )
    charts = page.query_selector_all(".chart[data-figure]")
    for chart in charts:
        assert chart.query_selector(".main-svg") is not None, chart.get_attribute("id")
    drawn = page.query_selector_all(".chart.js-plotly-plot .main-svg")
    assert len(drawn) >= len(charts)
    return len(charts)


def _shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _y_labels(page: Any, chart_id: str) -> set[str]:
    return set(page.evaluate(
        "(id) => document.getElementById(id).data.filter(t => t.type === 'bar').flatMap(t => t.y)",
        f"chart-{chart_id}",
    ))


def test_every_page_in_chromium(site: str, browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page

    page.goto(f"{site}/finance/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "browser-pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/finance/")
    assert _charts_drawn(page) == 9
    _shoot(page, "finance")

    # Changing a filter changes the URL and the chart.
    before = _y_labels(page, "by_tier")
    assert len(before) > 1
    spend_before = page.inner_text("[data-kpi=spend]")
    with page.expect_navigation():
        page.select_option("select[name=tier]", "2")
    assert "tier=2" in page.url
    assert _charts_drawn(page) == 9
    assert _y_labels(page, "by_tier") == {"tier 2"}
    assert page.inner_text("[data-kpi=spend]") != spend_before
    assert page.locator("select[name=tier]").input_value() == "2"
    _shoot(page, "finance-tier-2")

    # The range picker keeps the filter and moves the window; a custom range takes dates.
    with page.expect_navigation():
        page.select_option("select[name=range]", "7d")
    assert "range=7d" in page.url and "tier=2" in page.url
    _charts_drawn(page)
    page.select_option("select[name=range]", "custom")
    assert page.locator("input[name=from]").is_visible()
    page.fill("input[name=from]", "2020-01-01")
    with page.expect_navigation():
        page.fill("input[name=to]", "2020-01-31")  # both dates set: the form submits itself
    page.wait_for_load_state()
    assert "from=2020-01-01" in page.url and "to=2020-01-31" in page.url
    assert "Nothing matches this view" in page.content()

    page.goto(f"{site}/engineering/")
    assert _charts_drawn(page) == 5
    _shoot(page, "engineering")
    page.goto(f"{site}/engineering/?task_type=code_generation")
    assert _charts_drawn(page) == 5
    assert _y_labels(page, "escalation") == {"code_generation"}

    # The explorer, then a trace from it: the waterfall draws, the span table lists the spans.
    page.goto(f"{site}/traces/?min_reasoning=1")
    assert _charts_drawn(page) == 0
    _shoot(page, "traces")
    page.locator("#trace-table tbody tr a").first.click()
    page.wait_for_url("**/traces/*/")
    assert _charts_drawn(page) == 1
    assert page.locator("#span-table tbody tr").count() >= 2
    _shoot(page, "trace")

    for name, path in (("prices", "/prices/"), ("report", "/finance/report/")):
        page.goto(f"{site}{path}")
        assert _charts_drawn(page) == 0
        assert page.locator("h1").first.is_visible()
        _shoot(page, name)
    assert page.locator("table.grid tfoot").count() == 4

    assert problems == [], problems
