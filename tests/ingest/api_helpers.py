"""Helpers shared by the pricing, scores and reprice tests: cache hygiene, people, API clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Forget the catalog snapshot and rule cache around each test.

    Test transactions roll back without delete signals, so an override created by one
    test would otherwise linger in this process's in-memory catalog.
    """
    from ingest import catalog, classify

    catalog.invalidate()
    classify.rule_cache.invalidate()
    yield
    catalog.invalidate()
    classify.rule_cache.invalidate()


@pytest.fixture(autouse=True)
def shipped_catalog(db: None) -> None:
    """The global catalog that migration ingest.0002 loads.

    A transactional test elsewhere in the suite (``transaction=True`` without
    ``serialized_rollback``) flushes every table, data-migration rows included; then load
    the same file again inside this test's transaction.
    """
    from ingest import catalog_loader
    from ingest.models import ModelPrice

    if not ModelPrice.objects.filter(project__isnull=True).exists():
        catalog_loader.load(catalog_loader.read())


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + secret)
    return client


def issue_key(project: Any, *scopes: str) -> str:
    from thinkmeter.models import ApiKey

    _, secret = ApiKey.issue(project, tuple(scopes), name="scoped test key")
    return secret


def person_client(project: Any, role: str, username: str | None = None) -> APIClient:
    """A logged-in person with ``role`` in the project's organization."""
    from django.contrib.auth import get_user_model

    from thinkmeter.models import Membership

    user = get_user_model().objects.create_user(username or f"{role}-{project.slug}", password="pw")
    Membership.objects.create(user=user, organization=project.organization, role=role)
    client = APIClient()
    client.force_login(user)
    client.session_user = user  # type: ignore[attr-defined]
    return client
