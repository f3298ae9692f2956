"""Active API keys are kept in process briefly; a revoked or changed key is never served from there."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache

from thinkmeter import generations
from thinkmeter.key_cache import KeyCache
from thinkmeter.models import ApiKey, Organization, Project


@pytest.fixture
def project() -> Project:
    org = Organization.objects.create(slug="keys", name="Keys")
    return Project.objects.create(organization=org, slug="keys", name="Keys")


@pytest.mark.django_db
def test_an_active_key_is_authenticated_from_memory_after_the_first_lookup(
        project: Project, django_assert_num_queries: object) -> None:
    _, secret = ApiKey.issue(project)
    with django_assert_num_queries(1):  # type: ignore[operator]
        first = ApiKey.lookup(secret)
    with django_assert_num_queries(0):  # type: ignore[operator]
        again = ApiKey.lookup(secret)
    assert first is not None and again is first and again.project.slug == "keys"


@pytest.mark.django_db
def test_unknown_keys_are_not_kept(django_assert_num_queries: object) -> None:
    secret = "tm_" + uuid.uuid4().hex
    with django_assert_num_queries(2):  # type: ignore[operator]
        assert ApiKey.lookup(secret) is None
        assert ApiKey.lookup(secret) is None


@pytest.mark.django_db
def test_a_revoked_key_stops_authenticating_at_once(project: Project) -> None:
    key, secret = ApiKey.issue(project)
    assert ApiKey.lookup(secret) is not None
    ApiKey.objects.get(pk=key.pk).revoke()  # another instance of the row: the signal still reaches the cache
    assert ApiKey.lookup(secret) is None


@pytest.mark.django_db
def test_a_changed_scope_or_a_deleted_project_is_seen_at_once(project: Project) -> None:
    key, secret = ApiKey.issue(project)
    assert ApiKey.lookup(secret).has_scope("ingest")  # type: ignore[union-attr]
    key.scopes = ["read"]
    key.save()
    assert not ApiKey.lookup(secret).has_scope("ingest")  # type: ignore[union-attr]
    project.delete()
    assert ApiKey.lookup(secret) is None


@pytest.mark.django_db
def test_a_change_announced_by_another_process_is_seen_within_a_second(
        project: Project, django_assert_num_queries: object) -> None:
    _, secret = ApiKey.issue(project)
    ApiKey.lookup(secret)
    cache.set(generations.api_keys.key, uuid.uuid4().hex, None)  # what another process's bump() writes
    time.sleep(generations.api_keys.check_every + 0.1)
    with django_assert_num_queries(1):  # type: ignore[operator]
        assert ApiKey.lookup(secret) is not None


@pytest.mark.django_db
def test_a_change_that_bypasses_the_signals_is_seen_after_the_maximum_age(project: Project) -> None:
    now = [100.0]
    kept = KeyCache(max_age=10, clock=lambda: now[0])
    key, _ = ApiKey.issue(project)
    kept.put(key.digest, key, generations.api_keys.current())
    now[0] += 9
    assert kept.get(key.digest) is key
    now[0] += 2
    assert kept.get(key.digest) is None


def test_the_cache_never_holds_more_than_its_bound() -> None:
    kept = KeyCache(max_keys=3)
    generation = generations.api_keys.current()
    for number in range(7):
        kept.put(f"digest-{number}", object(), generation)
    assert sum(kept.get(f"digest-{n}") is not None for n in range(7)) <= 3
    assert kept.get("digest-6") is not None  # the newest is kept
