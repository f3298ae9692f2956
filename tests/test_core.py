"""Core models and commands: create_project, API keys, memberships, Django admin."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test import Client

from thinkmeter.models import SCOPES, ApiKey, Membership, Organization, Project, Role


def _create_project(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_project", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_create_project_prints_a_working_key_last() -> None:
    out, err = _create_project("checkout")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tm_") and len(secret) > 30
    assert secret not in err  # the key goes to stdout only
    key = ApiKey.lookup(secret)
    assert key is not None
    assert key.project.slug == "checkout"
    assert key.project.organization.slug == "checkout"  # --org defaults to the project slug
    assert sorted(key.scopes) == sorted(SCOPES) == ["ingest", "read", "write"]
    assert all(key.has_scope(scope) for scope in SCOPES)


@pytest.mark.django_db
def test_keys_are_stored_hashed() -> None:
    out, _ = _create_project("hashed")
    secret = out.strip().splitlines()[-1]
    key = ApiKey.objects.get(project__slug="hashed")
    assert key.digest != secret
    assert len(key.digest) == 64 and secret not in key.digest
    assert secret.startswith(key.prefix) and len(key.prefix) < len(secret) // 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM thinkmeter_apikey")
        stored = [str(value) for row in cursor.fetchall() for value in row]
    assert stored and not any(secret in value for value in stored)


@pytest.mark.django_db
def test_revoked_and_unknown_keys_do_not_authenticate() -> None:
    out, _ = _create_project("revoke-me")
    secret = out.strip().splitlines()[-1]
    key = ApiKey.lookup(secret)
    assert key is not None and key.active
    key.revoke()
    assert ApiKey.lookup(secret) is None
    assert ApiKey.lookup(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert ApiKey.lookup("not-a-key") is None
    assert ApiKey.lookup("") is None


@pytest.mark.django_db
def test_create_project_with_org_and_twice_reuses() -> None:
    first, err = _create_project("billing", "--org", "acme-corp")
    assert "organization acme-corp: created" in err and "project billing: created" in err
    second, err = _create_project("billing", "--org", "acme-corp")
    assert "organization acme-corp: exists" in err and "project billing: exists" in err
    assert Organization.objects.filter(slug="acme-corp").count() == 1
    assert Project.objects.filter(slug="billing").count() == 1
    project = Project.objects.get(slug="billing")
    assert project.organization.slug == "acme-corp"
    keys = [first.strip().splitlines()[-1], second.strip().splitlines()[-1]]
    assert keys[0] != keys[1]
    assert [ApiKey.lookup(k).project.pk for k in keys] == [project.pk, project.pk]  # type: ignore[union-attr]
    assert project.api_keys.count() == 2


@pytest.mark.django_db
def test_create_project_does_not_open_clickhouse() -> None:
    from thinkmeter.clickhouse import client

    client.reset_transport()
    _create_project("no-clickhouse")
    assert client._transport is None


@pytest.mark.django_db
def test_issue_rejects_unknown_scopes(project: Any) -> None:
    with pytest.raises(ValueError, match="unknown scopes"):
        ApiKey.issue(project, ("ingest", "admin"))
    key, secret = ApiKey.issue(project, ("read",))
    assert key.has_scope("read") and not key.has_scope("ingest")
    assert ApiKey.lookup(secret) == key


@pytest.mark.django_db
def test_touch_records_last_use(project: Any, project_key: str) -> None:
    key = ApiKey.lookup(project_key)
    assert key is not None and key.last_used_at is None
    key.touch()
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.django_db
def test_memberships_and_roles(project: Any, other_project: Any) -> None:
    assert {r.value for r in Role} == {"viewer", "finance", "engineer", "admin"}
    user = get_user_model().objects.create_user("ana", password="pw-ana-12345")
    Membership.objects.create(user=user, organization=project.organization, role=Role.FINANCE)
    Membership.objects.create(user=user, organization=other_project.organization)
    roles = dict(Membership.objects.filter(user=user).values_list("organization__slug", "role"))
    assert roles == {"acme": "finance", "globex": "viewer"}
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=user, organization=project.organization, role=Role.ADMIN)


def test_fixtures_make_two_separate_projects(
    project: Any, project_key: str, other_project: Any, other_project_key: str
) -> None:
    assert (project.slug, project.organization.slug) == ("acme", "acme")
    assert (other_project.slug, other_project.organization.slug) == ("globex", "globex")
    assert ApiKey.lookup(project_key).project == project  # type: ignore[union-attr]
    assert ApiKey.lookup(other_project_key).project == other_project  # type: ignore[union-attr]


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["organization", "project", "apikey", "membership"])
def test_admin_pages_load(client: Client, admin_user: Any, project: Any, project_key: str, model: str) -> None:
    Membership.objects.create(user=admin_user, organization=project.organization, role=Role.ADMIN)
    client.force_login(admin_user)
    listing = client.get(f"/admin/thinkmeter/{model}/")
    assert listing.status_code == 200
    assert b"Select" in listing.content
    assert client.get(f"/admin/thinkmeter/{model}/add/").status_code == 200


@pytest.mark.django_db
def test_admin_requires_staff(client: Client) -> None:
    response = client.get("/admin/thinkmeter/apikey/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
