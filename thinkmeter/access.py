"""Which projects a caller may read or manage, and what their role lets them see.

A project key reads its own project; a person reads the projects of the organizations
they belong to (a superuser reads every project). ``?project=<slug>`` narrows to one of
them; a slug outside the caller's projects is 404, the same as one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.exceptions import PermissionDenied

from thinkmeter.auth import KeyPrincipal
from thinkmeter.models import Membership, Project, Role

ROLE_RANK = {Role.VIEWER: 0, Role.FINANCE: 1, Role.ENGINEER: 2, Role.ADMIN: 3}


def readable_projects(user: Any) -> list[Project]:
    if isinstance(user, KeyPrincipal):
        return [user.key.project]
    if not getattr(user, "is_authenticated", False):
        return []
    if user.is_superuser:
        return list(Project.objects.select_related("organization").order_by("slug"))
    return list(
        Project.objects.select_related("organization")
        .filter(organization__memberships__user=user)
        .order_by("slug")
        .distinct()
    )


def scoped_projects(request: Any, slug: str | None = None) -> list[Project]:
    """The projects this request covers: all readable ones, or the one named by ``?project=``."""
    user = getattr(request, "user", None)
    projects = readable_projects(user)
    slug = slug or request.GET.get("project")
    if slug:
        projects = [p for p in projects if p.slug == slug]
        if not projects:
            raise Http404("no such project")
    return projects


def role_in(user: Any, project: Project) -> str | None:
    """The person's role in the project's organization (admin for superusers; None for keys)."""
    if isinstance(user, KeyPrincipal):
        return None
    if getattr(user, "is_superuser", False):
        return Role.ADMIN
    membership = Membership.objects.filter(user=user, organization_id=project.organization_id).first()
    return membership.role if membership else None


def has_role(user: Any, project: Project, minimum: str) -> bool:
    role = role_in(user, project)
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


def require_key_scope(request: Any, scope: str) -> None:
    """Keys must carry ``scope`` (read or write); people are checked by role elsewhere."""
    user = getattr(request, "user", None)
    if isinstance(user, KeyPrincipal) and not user.key.has_scope(scope):
        raise PermissionDenied(f"this API key lacks the {scope!r} scope")


def writable_project(request: Any) -> Project:
    """The single project a write request acts on: the key's (scope write) or ?project= with admin role."""
    require_key_scope(request, "write")
    projects = scoped_projects(request)
    user = request.user
    if isinstance(user, KeyPrincipal):
        return projects[0]
    if len(projects) != 1:
        raise PermissionDenied("name the project with ?project=<slug>")
    if not has_role(user, projects[0], Role.ADMIN):
        raise PermissionDenied("managing a project needs the admin role")
    return projects[0]
