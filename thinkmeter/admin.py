"""Django admin for organizations, projects, API keys and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from thinkmeter.models import ApiKey, Membership, Organization, Project


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "organization", "monthly_budget_usd", "store_prompts")
    list_filter = ("organization",)
    search_fields = ("slug", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "project", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("project",)
    readonly_fields = ("prefix", "digest", "created_at", "last_used_at")
    fields = ("project", "name", "scopes", "prefix", "digest", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = ApiKey.issue(obj.project, tuple(obj.scopes or ("ingest", "read", "write")), obj.name)
        obj.pk, obj.prefix, obj.digest = key.pk, key.prefix, key.digest
        messages.warning(request, f"New API key (shown once, copy it now): {secret}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            key.revoke()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("organization", "role")
