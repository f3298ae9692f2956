"""Pricing catalog and classification rules (Django models).

A :class:`ModelPrice` matches model names by regular expression; global entries have no
project, per-project overrides do and win. Its :class:`PriceRate` rows are effective-dated
prices in USD per million tokens per usage type; ``reasoning`` empty means the output
rate, ``cache_read``/``cache_write`` empty mean the input rate.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from thinkmeter.models import Project


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from exc


class ModelPrice(models.Model):
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="price_overrides",
        help_text="Empty: the global catalog. Set: an override for this project.",
    )
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=64)
    pattern = models.CharField(max_length=500, validators=[validate_regex])
    tier = models.PositiveSmallIntegerField(default=2)
    reasoning = models.BooleanField(default=False, help_text="The model produces thinking tokens.")
    source = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Lower first; the first matching pattern wins.")

    class Meta:
        ordering = ["position", "id"]
        unique_together = [("project", "model")]

    def __str__(self) -> str:
        return f"{self.model} ({self.project.slug if self.project else 'global'})"


class PriceRate(models.Model):
    model_price = models.ForeignKey(ModelPrice, on_delete=models.CASCADE, related_name="rates")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Exclusive; empty while current.")
    input = models.DecimalField(max_digits=12, decimal_places=6)
    cache_read = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cache_write = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output = models.DecimalField(max_digits=12, decimal_places=6)
    reasoning = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["model_price", "effective_from"]

    def __str__(self) -> str:
        return f"{self.model_price.model} from {self.effective_from}"


class ClassificationRule(models.Model):
    """Assigns a task type (and optionally a tier) to spans that do not carry one."""

    class Field(models.TextChoices):
        ATTRIBUTE = "attribute", "Attribute value"
        SERVICE = "service", "Service name"
        SPAN_NAME = "span_name", "Span name"
        PROMPT = "prompt", "Prompt text (regex)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classification_rules")
    position = models.PositiveIntegerField(default=0)
    field = models.CharField(max_length=16, choices=Field.choices)
    attribute = models.CharField(max_length=200, blank=True, help_text="Attribute key, for field=attribute.")
    pattern = models.CharField(max_length=500, validators=[validate_regex], help_text="Regular expression (search).")
    task_type = models.CharField(max_length=64)
    tier = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["project", "position", "id"]

    def __str__(self) -> str:
        return f"{self.field}~/{self.pattern}/ → {self.task_type}"
