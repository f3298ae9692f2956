"""Saved simulation runs: the policy asked for, its progress and its result.

A run is created queued (by the API, the page or ``manage.py simulate``), executed by
the ``simulator.run`` task (:mod:`simulator.services`), and keeps the result JSON that
:func:`simulator.engine.run.simulate` returned, so it can be shown again later.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from thinkmeter.models import Project


class SimulationRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        API = "api", "API"
        PAGE = "page", "Page"
        CLI = "cli", "Command line"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="simulation_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="simulation_runs")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    name = models.CharField(max_length=200, blank=True)
    policy = models.JSONField(help_text="The policy as plain data (validated).")
    policy_text = models.TextField(blank=True, help_text="The policy as written (JSON or YAML), for display.")
    window_from = models.DateTimeField(null=True, blank=True)
    window_to = models.DateTimeField(null=True, blank=True)
    sweep = models.CharField(max_length=200, blank=True, help_text="e.g. threshold:0..1:20")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"simulation {self.pk} ({self.project.slug}, {self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
