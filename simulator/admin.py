"""Admin for saved simulation runs (read mostly: they are created by the API, the page or the command)."""

from __future__ import annotations

from django.contrib import admin

from simulator.models import SimulationRun


@admin.register(SimulationRun)
class SimulationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "source", "status", "created_at", "created_by")
    list_filter = ("status", "source", "project")
    readonly_fields = ("result", "error", "progress", "message", "started_at", "finished_at", "created_at")
