"""DRF serializers for the pricing, scores and classification-rule API (``ingest.api``).

Money and rates are decimal strings (USD per million tokens, at most 6 decimals); times
are ISO-8601 UTC. Serializer names are prefixed so the OpenAPI components they produce
stay unique across apps.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from ingest.models import ClassificationRule, ModelPrice, PriceRate

HEX_TRACE = re.compile(r"^[0-9a-f]{32}$")
HEX_SPAN = re.compile(r"^[0-9a-f]{16}$")
SCORE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
QUALITY = "quality"
MAX_RATE = Decimal("1000000")


def check_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise serializers.ValidationError(f"not a valid regular expression: {exc}") from exc


def _rate_field(required: bool) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12, decimal_places=6, min_value=Decimal(0), max_value=MAX_RATE,
        required=required, allow_null=not required, default=None if not required else serializers.empty,
        help_text="USD per million tokens" + ("" if required else "; empty: the default (see the model)"),
    )



MAX_POSITION = 2_147_483_647  # PositiveIntegerField's range on every database (PostgreSQL's integer)

class PriceRateSerializer(serializers.ModelSerializer):
    """One effective-dated set of rates (USD per million tokens)."""

    price_id = serializers.IntegerField(source="pk", read_only=True, help_text="stored in spans.price_id")
    effective_from = serializers.DateField()
    effective_to = serializers.DateField(required=False, allow_null=True, default=None,
                                         help_text="exclusive; empty while current")
    input = _rate_field(True)
    output = _rate_field(True)
    cache_read = _rate_field(False)
    cache_write = _rate_field(False)
    reasoning = _rate_field(False)

    class Meta:
        model = PriceRate
        fields = ["price_id", "effective_from", "effective_to", "input", "cache_read", "cache_write", "output",
                  "reasoning"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("effective_to")
        if end is not None and end <= attrs["effective_from"]:
            raise serializers.ValidationError({"effective_to": "must be after effective_from (it is exclusive)"})
        return attrs


class CatalogPriceSerializer(serializers.ModelSerializer):
    """A catalog entry: which model names it prices (pattern), its provider, tier and rates."""

    project: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True,
        help_text="null: the global catalog; else this project's override",
    )
    model = serializers.CharField(max_length=200)
    provider = serializers.CharField(max_length=64)
    pattern = serializers.CharField(max_length=500, validators=[check_regex],
                                    help_text="regular expression searched in the model name (case-insensitive)")
    tier = serializers.IntegerField(min_value=1, max_value=255, default=2)
    reasoning = serializers.BooleanField(default=False)
    source = serializers.URLField(max_length=500, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    note = serializers.CharField(required=False, allow_blank=True, default="")
    position = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, default=0,
                                        help_text="lower first; among a project's overrides the first match wins")
    rates = PriceRateSerializer(many=True)

    class Meta:
        model = ModelPrice
        fields = ["id", "project", "model", "provider", "pattern", "tier", "reasoning", "source", "note", "position",
                  "rates"]
        validators: list[Any] = []  # (project, model) is handled by the view: POST replaces an override

    def validate_provider(self, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise serializers.ValidationError("must not be blank")
        return value

    def validate_model(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("must not be blank")
        return value

    def validate_rates(self, rates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rates:
            raise serializers.ValidationError("give at least one rate period")
        ordered = sorted(rates, key=lambda r: r["effective_from"])
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            end: date | None = earlier.get("effective_to")
            if end is None or end > later["effective_from"]:
                raise serializers.ValidationError(
                    f"periods overlap: {earlier['effective_from']} .. {end or 'open'} and the one from "
                    f"{later['effective_from']} (give the earlier period an effective_to)"
                )
        return ordered


class UnpricedModelSerializer(serializers.Serializer):
    project = serializers.CharField(help_text="project slug")
    model = serializers.CharField()
    provider = serializers.CharField()
    spans = serializers.IntegerField(help_text="distinct spans with usage and no price")
    requests = serializers.IntegerField(help_text="LLM calls among them (one per provider response)")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    price_now = serializers.CharField(allow_null=True,
                                      help_text="the catalog entry that matches the model now (then run reprice)")


class UnpricedListSerializer(serializers.Serializer):
    # "from" and "to" are Python keywords: declared through the class namespace.
    locals()["from"] = serializers.DateTimeField(help_text="start of the range (included)")
    locals()["to"] = serializers.DateTimeField(help_text="end of the range (excluded)")
    results = UnpricedModelSerializer(many=True)


class ScoreInSerializer(serializers.Serializer):
    """A score for a trace (or one of its spans), e.g. a verifier's verdict or a user's rating."""

    trace_id = serializers.CharField(help_text="32 hex digits")
    span_id = serializers.CharField(required=False, allow_blank=True, default="", help_text="16 hex digits")
    name = serializers.CharField(default=QUALITY, help_text="'quality' (0..1) feeds the simulator; any other "
                                 "name takes any finite number")
    value = serializers.FloatField()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    source = serializers.CharField(required=False, allow_blank=True, default="api", max_length=64)  # type: ignore[assignment]

    def validate_trace_id(self, value: str) -> str:
        value = value.strip().lower()
        if not HEX_TRACE.match(value):
            raise serializers.ValidationError("must be 32 hex digits (the OTLP trace id)")
        return value

    def validate_span_id(self, value: str) -> str:
        value = value.strip().lower()
        if value and not HEX_SPAN.match(value):
            raise serializers.ValidationError("must be 16 hex digits (the OTLP span id) or empty")
        return value

    def validate_name(self, value: str) -> str:
        if not SCORE_NAME.match(value):
            raise serializers.ValidationError("1 to 64 characters among letters, digits, _ . : -")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        value = attrs["value"]
        if not math.isfinite(value):
            raise serializers.ValidationError({"value": "must be a finite number"})
        if attrs["name"] == QUALITY and not 0.0 <= value <= 1.0:
            raise serializers.ValidationError({"value": "a quality score is between 0 and 1"})
        return attrs


class ScoreSerializer(serializers.Serializer):
    project = serializers.CharField(help_text="project slug")
    trace_id = serializers.CharField()
    span_id = serializers.CharField()
    name = serializers.CharField()
    value = serializers.FloatField()
    source = serializers.CharField()  # type: ignore[assignment]
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class ScoreListSerializer(serializers.Serializer):
    results = ScoreSerializer(many=True)


class CatalogPriceListSerializer(serializers.Serializer):
    results = CatalogPriceSerializer(many=True)


class ClassificationRuleSerializer(serializers.ModelSerializer):
    """A rule giving a task type (and optionally a tier) to LLM spans that carry none."""

    project: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    pattern = serializers.CharField(max_length=500, validators=[check_regex],
                                    help_text="regular expression, searched in the field's text")
    position = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, required=False,
                                        help_text="lower first; default: after the project's last rule")
    tier = serializers.IntegerField(min_value=1, max_value=255, required=False, allow_null=True, default=None)

    class Meta:
        model = ClassificationRule
        fields = ["id", "project", "position", "field", "attribute", "pattern", "task_type", "tier"]

    def validate_task_type(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("must not be blank")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("field") == ClassificationRule.Field.ATTRIBUTE and not attrs.get("attribute", "").strip():
            raise serializers.ValidationError({"attribute": "name the attribute key when field is 'attribute'"})
        if attrs.get("field") != ClassificationRule.Field.ATTRIBUTE:
            attrs["attribute"] = ""
        return attrs


class ClassificationRuleListSerializer(serializers.Serializer):
    results = ClassificationRuleSerializer(many=True)
