"""Authentication by project API key (``Authorization: Bearer tm_...``) for the REST API.

A key implies its project. DRF sees a :class:`KeyPrincipal` as the user and the
:class:`ApiKey` as ``request.auth``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from thinkmeter.models import ApiKey


class KeyPrincipal:
    """The identity of a request made with a project key."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    is_active = True

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.pk = None
        self.username = f"key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ProjectKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[KeyPrincipal, ApiKey] | None:
        token = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            return None
        key = ApiKey.lookup(token)
        if key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        key.touch()
        return KeyPrincipal(key), key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="thinkmeter"'


class ProjectKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    """Describes project-key authentication in the OpenAPI schema."""

    target_class = "thinkmeter.auth.ProjectKeyAuthentication"
    name = "projectKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "Project API key: Authorization: Bearer tm_..."}
