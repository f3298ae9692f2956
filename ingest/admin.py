"""Django admin for the price catalog (entries with inline effective-dated rates) and
per-project classification rules.

Saving here goes through the models' signals (:mod:`ingest.signals`), so ingest prices
with the new rates at once; spans already stored keep their costs until
``manage.py reprice`` recomputes a range.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from ingest.models import ClassificationRule, ModelPrice, PriceRate


class PriceRateInline(admin.TabularInline):
    model = PriceRate
    extra = 0
    fields = ("effective_from", "effective_to", "input", "cache_read", "cache_write", "output", "reasoning")
    ordering = ("effective_from",)


class GlobalOrProjectFilter(admin.SimpleListFilter):
    title = "catalog"
    parameter_name = "scope"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("global", "Global catalog"), ("override", "Project overrides")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() == "global":
            return queryset.filter(project__isnull=True)
        if self.value() == "override":
            return queryset.filter(project__isnull=False)
        return queryset


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ("model", "provider", "tier", "reasoning", "project", "pattern", "position")
    list_filter = (GlobalOrProjectFilter, "provider", "tier", "reasoning", "project")
    search_fields = ("model", "pattern", "provider", "note")
    list_select_related = ("project",)
    inlines = [PriceRateInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("project", "model", "provider", "pattern", "tier", "reasoning", "position")}),
        ("Provenance", {"fields": ("source", "note")}),
    )


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(admin.ModelAdmin):
    list_display = ("project", "position", "field", "attribute", "pattern", "task_type", "tier")
    list_display_links = ("pattern",)
    list_filter = ("project", "field", "task_type")
    search_fields = ("pattern", "attribute", "task_type")
    list_select_related = ("project",)
    ordering = ("project", "position", "id")
