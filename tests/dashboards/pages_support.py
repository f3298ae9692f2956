"""Helpers for the page tests: demo traffic sent through the real OTLP/HTTP endpoint, and people with roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest import demo
from thinkmeter.models import Membership, Project


def send_demo_traffic(client: Any, key: str, *, spans: int = 800, days: float = 20, seed: int = 3,
                      end: datetime | None = None) -> int:
    """POST demo traces to /v1/traces with a project key (Django test client or anything with .post)."""
    sent = 0
    for batch in demo.batches(demo.generate(spans=spans, days=days, seed=seed, end=end or datetime.now(UTC))):
        response = client.post("/v1/traces", data=demo.encode(batch), content_type="application/x-protobuf",
                               HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 200, response.content
        sent += sum(len(t.spans) for t in batch)
    return sent


def person(django_user_model: Any, username: str, project: Project | None, role: str | None,
           superuser: bool = False) -> Any:
    """A user with ``role`` in ``project``'s organization (password "pw")."""
    if superuser:
        user = django_user_model.objects.create_superuser(username=username, password="pw", email="")
    else:
        user = django_user_model.objects.create_user(username=username, password="pw")
    if project is not None and role is not None:
        Membership.objects.create(user=user, organization=project.organization, role=role)
    return user
