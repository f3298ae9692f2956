"""The Content-Security-Policy in a real browser: every kind of page works and nothing is blocked.

Headless Chromium (Debian's, driven by Playwright) records every ``securitypolicyviolation``
event and console error while it signs in and uses the pages the dashboard browser test
does not: the projects page, alert rules (the project picker that submits itself, the
confirm before deleting), the alert history filters, the simulator (the example picker,
a run drawn with Plotly), Swagger UI at /api/docs/ and the Django admin — plus Finance,
whose Plotly charts are the most script- and style-heavy page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.dashboards.pages_support import send_demo_traffic
from tests.support.chromium import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def site(live_server: Any, project: Any, project_key: str, other_project: Any, ch: Any,
         django_user_model: Any) -> str:
    """Demo traffic, an alert rule, a channel and a firing alert, and a superuser admin / csp-pw."""
    from django.utils import timezone

    from alerts.models import AlertEvent, AlertRule, Channel

    send_demo_traffic(Client(), project_key, spans=300, days=5, seed=5)
    channel = Channel.objects.create(project=project, kind=Channel.Kind.WEBHOOK, name="ops hook",
                                     url="https://hooks.example.com/ops")
    rule = AlertRule.objects.create(project=project, name="monthly cap", kind=AlertRule.Kind.BUDGET,
                                    params={"cap_usd": 5.0})
    rule.channels.set([channel])
    now = timezone.now()
    AlertEvent.objects.create(project=project, rule=rule, rule_name=rule.name, kind=rule.kind, fingerprint="f",
                              title="budget crossed", value=6.0, threshold=5.0, first_seen_at=now, last_seen_at=now)
    django_user_model.objects.create_superuser("admin", "admin@localhost", "csp-pw")
    return str(live_server.url)


@pytest.fixture
def browser_page(site: str) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page and the list its console errors, page errors and failed requests go to."""
    with chromium_page(1280, 900, RECORD_VIOLATIONS) as opened:
        yield opened


def violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__csp || []"))


def visit(page: Any, url: str, problems: list[str]) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert violations(page) == [], (url, violations(page))
    assert problems == [], (url, problems)


def test_pages_work_under_the_content_security_policy(site: str, browser_page: tuple[Any, list[str]]) -> None:
    page, problems = browser_page
    response = page.goto(f"{site}/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "csp-pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/")
    visit(page, f"{site}/", problems)

    # Finance: Plotly draws every chart from the server's JSON
    visit(page, f"{site}/finance/", problems)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart[data-figure]')].every(el => el.dataset.rendered === '1')",
        timeout=30_000)
    assert page.locator(".chart .main-svg").count() >= 5
    assert violations(page) == []

    # Alerts: the project picker submits itself (app.js, no inline handler)
    visit(page, f"{site}/alerts/", problems)
    assert page.locator("text=monthly cap").count() >= 1
    with page.expect_navigation():
        page.select_option("select[name=project]", "acme")
    assert "project=acme" in page.url
    # deleting asks first: dismissing the question keeps the rule
    page.once("dialog", lambda dialog: dialog.dismiss())
    delete = page.locator("form[data-confirm] button").first
    if delete.count():
        delete.click()
        page.wait_for_timeout(300)
        assert "project=acme" in page.url and page.locator("text=monthly cap").count() >= 1

    visit(page, f"{site}/alerts/history/", problems)
    with page.expect_navigation():
        page.select_option("select[name=state]", "open")
    assert "state=open" in page.url and page.locator("text=budget crossed").count() >= 1

    # Simulator: the example picker fills the policy; a run is drawn when done
    visit(page, f"{site}/simulator/", problems)
    page.select_option("#policy-example", "Cheapest: tier 1, no thinking")
    assert '"tier": 1' in page.input_value("#policy")
    with page.expect_navigation():
        page.click("#simulation-form button[type=submit]")
    assert "/simulator/runs/" in page.url
    page.wait_for_selector(".chart .main-svg", timeout=90_000)
    assert violations(page) == [] and problems == [], (violations(page), problems)

    # Swagger UI (drf-spectacular-sidecar, its init script a file of its own) lists the API
    visit(page, f"{site}/api/docs/", problems)
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() >= 30
    assert violations(page) == []

    # the Django admin
    visit(page, f"{site}/admin/", problems)
    visit(page, f"{site}/admin/thinkmeter/apikey/", problems)
    visit(page, f"{site}/admin/alerts/alertrule/", problems)
    assert problems == [] and violations(page) == []
