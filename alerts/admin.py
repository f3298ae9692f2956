"""Admin for alert rules, channels, events and deliveries (channel URLs masked in lists)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin

from alerts import channels
from alerts.models import AlertEvent, AlertRule, Channel, Delivery, DeliveryAttempt, Notification


class ChannelAdminForm(forms.ModelForm):
    """The URL is write-only here too: the form never shows it; leave it blank to keep it."""

    url = forms.URLField(max_length=2000, required=False, assume_scheme="https",
                         widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                         help_text="A secret: not shown. Leave blank to keep the current URL.")

    class Meta:
        model = Channel
        fields = ["project", "kind", "name", "url", "enabled"]

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url") or ""
        if not url:
            if self.instance.pk is None:
                raise forms.ValidationError("required")
            return str(self.instance.url)
        try:
            channels.check_url_shape(url, settings.WEBHOOK_ALLOW_HOSTS)
        except channels.UnsafeDestination as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = ("name", "project", "kind", "masked_url", "enabled", "created_at")
    list_filter = ("kind", "enabled", "project")
    search_fields = ("name",)
    readonly_fields = ("masked_url", "masked_secret")

    def get_fields(self, request: Any, obj: Any = None) -> Any:
        return ["project", "kind", "name", "url", "enabled", *(["masked_url", "masked_secret"] if obj else [])]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "kind", "enabled", "cooldown_minutes", "last_evaluated_at")
    list_filter = ("kind", "enabled", "project")
    search_fields = ("name",)
    filter_horizontal = ("channels",)
    readonly_fields = ("last_evaluated_at", "last_error")


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "project", "kind", "severity", "state", "count", "last_seen_at")
    list_filter = ("state", "severity", "kind", "project")
    search_fields = ("title", "fingerprint")
    readonly_fields = ("fingerprint", "first_seen_at", "last_seen_at", "evidence", "count", "notified_count")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    readonly_fields = ("channel", "status", "attempts", "delivered_at", "last_status_code", "last_error")
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "rule", "reason", "created_at")
    list_filter = ("reason", "project")
    readonly_fields = ("message",)
    inlines = [DeliveryInline]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    readonly_fields = ("number", "started_at", "duration_ms", "status_code", "ok", "error", "retry_after")
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "notification", "channel", "status", "attempts", "delivered_at", "last_status_code")
    list_filter = ("status",)
    inlines = [AttemptInline]
