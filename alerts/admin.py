"""Admin for alert rules, channels, events and deliveries (channel URLs masked in lists)."""

from __future__ import annotations

from django.contrib import admin

from alerts.models import AlertEvent, AlertRule, Channel, Delivery, DeliveryAttempt, Notification


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "kind", "masked_url", "enabled", "created_at")
    list_filter = ("kind", "enabled", "project")
    search_fields = ("name",)
    readonly_fields = ("masked_secret",)
    exclude = ("signing_secret",)


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
