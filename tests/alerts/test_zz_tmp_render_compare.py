"""TEMPORARY (helper's check, deleted after): alert pages render the same with the old templates."""
from __future__ import annotations

import copy
import difflib
import re
from typing import Any

import pytest

from alerts import services
from alerts.findings import Finding
from alerts.models import Channel
from tests.alerts.helpers import make_rule
from tests.ingest.api_helpers import person_client

pytestmark = pytest.mark.django_db


def norm(html: str) -> list[str]:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r"\s+", " ", html)
    html = re.sub(r"> <", "><", html)
    return html.replace("><", ">\n<").splitlines()


def test_same(project: Any, settings: Any) -> None:
    channel = Channel.objects.create(project=project, kind="webhook", name="o'ps <x>", url="https://example.com/h")
    rule = make_rule(project, "runaway", channels=[channel])
    rule.name = "it's \"quoted\" <b>"
    rule.save()
    services.fire(rule, Finding("t1", "critical", "Runaway", 9000, 4000, {"trace_id": "t1", "p95": 2000,
                                                                          "samples": 70, "task_class": "x"}))
    admin = person_client(project, "admin")
    pages = ["/alerts/", f"/alerts/rules/{rule.pk}/", "/alerts/history/"]
    new = {p: admin.get(p).content.decode() for p in pages}
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = ["/tmp/tplhead", *templates[0]["DIRS"]]
    settings.TEMPLATES = templates
    old = {p: admin.get(p).content.decode() for p in pages}
    for p in pages:
        diff = list(difflib.unified_diff(norm(old[p]), norm(new[p]), lineterm="", n=0))
        print(p, "\n".join(diff))
