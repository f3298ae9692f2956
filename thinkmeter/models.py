"""Core models: organizations, projects, API keys and memberships with roles.

API keys are stored as a SHA-256 digest with a short visible prefix; the full key is
shown once, when created. Keys are random 32-byte tokens, so a fast digest is as safe
as a slow password hash and keeps per-request authentication cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, models
from django.utils import timezone

KEY_PREFIX = "tm_"
SCOPES = ("ingest", "read", "write")


class Organization(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    monthly_budget_usd = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("1000.00"))
    store_prompts = models.BooleanField(
        default=False, help_text="Store prompt and completion text (after redaction). Off: token counts only."
    )
    hide_user_drilldown = models.BooleanField(
        default=False, help_text="Viewers and finance see aggregates only, no per-user breakdown."
    )
    tier_models = models.JSONField(
        default=dict, blank=True, help_text='The model used for each tier, e.g. {"1": "gpt-4.1-mini", "3": "o3"}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, default="default")
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.project.slug})"

    @classmethod
    def issue(cls, project: Project, scopes: tuple[str, ...] = SCOPES, name: str = "default") -> tuple[ApiKey, str]:
        """Create a key; return it and the full secret, which is never retrievable again."""
        unknown = set(scopes) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; allowed: {', '.join(SCOPES)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            project=project, name=name, prefix=secret[:10], digest=_digest(secret), scopes=list(scopes)
        )
        return key, secret

    @classmethod
    def lookup(cls, secret: str) -> ApiKey | None:
        """The active key for ``secret``, or None (unknown and revoked look the same).

        Active keys are kept in process for a few seconds (:mod:`thinkmeter.key_cache`).
        """
        if not secret.startswith(KEY_PREFIX):
            return None
        from thinkmeter import generations
        from thinkmeter.key_cache import active_keys

        digest = _digest(secret)
        kept = active_keys.get(digest)
        if kept is not None:
            return kept
        generation = generations.api_keys.current()
        key = cls.objects.select_related("project").filter(prefix=secret[:10], digest=digest).first()
        if key is None or key.revoked_at is not None or not hmac.compare_digest(key.digest, digest):
            return None
        active_keys.put(digest, key, generation)
        return key

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def touch(self) -> None:
        """Record use, at most once a minute per key (no write per request).

        Bookkeeping only: when the write fails (the database locked by concurrent
        requests) it is logged and skipped, never failing the request that used the key.
        """
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1):
            try:
                ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            except DatabaseError as exc:
                logging.getLogger(__name__).warning("could not record the use of API key %s…: %s", self.prefix, exc)
                return
            self.last_used_at = now

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    FINANCE = "finance", "Finance"
    ENGINEER = "engineer", "Engineer"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        unique_together = [("user", "organization")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"
