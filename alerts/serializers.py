"""REST serializers for alert rules, channels and alert events.

Channel URLs are secrets: they are accepted on write and answered masked
(``url_masked``); a webhook's signing secret is shown in full once, in the answer to
the request that created (or rotated) it. Rule parameters are validated per kind by
:func:`alerts.params.parse_params`, which also fills in the defaults the answer shows.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from alerts import channels
from alerts.models import AlertEvent, AlertRule, Channel
from alerts.params import ParamError, parse_filters, parse_params


class ChannelSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.URLField(write_only=True, max_length=2000,
                               help_text="Slack incoming-webhook URL or webhook endpoint (a secret: never answered)")
    url_masked = serializers.CharField(source="masked_url", read_only=True)
    signing_secret = serializers.CharField(source="masked_secret", read_only=True,
                                           help_text="webhooks: masked; shown in full only when created or rotated")

    class Meta:
        model = Channel
        fields = ["id", "project", "kind", "name", "url", "url_masked", "enabled", "signing_secret", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_url(self, value: str) -> str:
        try:
            channels.check_url_shape(value, settings.WEBHOOK_ALLOW_HOSTS)
        except channels.UnsafeDestination as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("a channel's kind cannot change; create another channel")
        return value


class SendTestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class SigningSecretSerializer(serializers.Serializer):
    signing_secret = serializers.CharField()


class AlertRuleSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    params = serializers.JSONField(required=False, help_text="per kind; see the API docs of alert rules")
    filters = serializers.JSONField(required=False,
                                    help_text="task_type, tier, model, service, environment, user: a value or a list")
    channels = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=Channel.objects.all())

    class Meta:
        model = AlertRule
        fields = ["id", "project", "kind", "name", "params", "filters", "channels", "enabled", "cooldown_minutes",
                  "group_seconds", "created_at", "updated_at", "last_evaluated_at", "last_error"]
        read_only_fields = ["id", "created_at", "updated_at", "last_evaluated_at", "last_error"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        project = self.context.get("project")
        if project is not None:  # another project's channel answers like one that does not exist
            fields["channels"].child_relation.queryset = Channel.objects.filter(project=project)  # type: ignore[attr-defined]
        return fields

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("a rule's kind cannot change; create another rule")
        return value

    def validate_channels(self, value: list[Channel]) -> list[Channel]:
        project = self.context.get("project")
        wrong = [c.pk for c in value if project is not None and c.project_id != project.pk]
        if wrong:
            raise serializers.ValidationError(f"channels {wrong} belong to another project")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind") or (self.instance.kind if self.instance is not None else None)
        if kind is None:
            raise serializers.ValidationError({"kind": "required"})
        errors: dict[str, Any] = {}
        if "params" in attrs or self.instance is None:
            try:
                attrs["params"] = parse_params(kind, attrs.get("params"))
            except ParamError as exc:
                errors["params"] = exc.errors
        if "filters" in attrs:
            try:
                attrs["filters"] = parse_filters(attrs.get("filters"))
            except ParamError as exc:
                errors["filters"] = exc.errors
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class AlertEventSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rule: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True)  # null once the rule is deleted (its alert history stays)
    trace_url = serializers.SerializerMethodField()
    snoozed = serializers.SerializerMethodField()

    class Meta:
        model = AlertEvent
        fields = ["id", "project", "rule", "rule_name", "kind", "fingerprint", "state", "severity", "title", "value",
                  "threshold", "evidence", "trace_url", "count", "first_seen_at", "last_seen_at", "last_notified_at",
                  "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "snoozed_until", "snoozed"]
        read_only_fields = fields

    def get_trace_url(self, event: AlertEvent) -> str | None:
        return (event.evidence or {}).get("trace_url") or None

    def get_snoozed(self, event: AlertEvent) -> bool:
        from django.utils import timezone

        return event.snoozed_until is not None and event.snoozed_until > timezone.now()


class SnoozeSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(required=False, min_value=1, max_value=30 * 24 * 60)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("minutes" in attrs) == ("until" in attrs):
            raise serializers.ValidationError("give either minutes or until")
        return attrs
