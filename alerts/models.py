"""Alert rules, notification channels, alert events, notifications and their deliveries.

- :class:`AlertRule`: what to watch in a project (kind, params, filters) and which
  channels hear about it; ``cooldown_minutes`` and ``group_seconds`` govern how often.
- :class:`Channel`: a Slack incoming webhook or a generic webhook. The URL is a secret
  (pages and API answers show :meth:`Channel.masked_url`); webhooks get a signing secret.
- :class:`AlertEvent`: one episode of one condition (``fingerprint``), firing →
  acknowledged → resolved, with its evidence and how many times it occurred.
- :class:`Notification`: one message about one or more events (a burst is one message).
- :class:`Delivery`: one notification to one channel — the idempotency record: a
  delivered row is never sent again, whatever the task queue redelivers.
  :class:`DeliveryAttempt` keeps each HTTP attempt.
- :class:`SweepState`: how far the periodic runaway sweep has read a project's spans.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from alerts import channels
from thinkmeter.models import Project


class Channel(models.Model):
    class Kind(models.TextChoices):
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "Webhook (signed JSON)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000, help_text="A secret: shown masked after it is saved.")
    signing_secret = models.CharField(max_length=100, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.masked_url})"

    @property
    def masked_url(self) -> str:
        return channels.mask_url(self.url)

    @property
    def masked_secret(self) -> str:
        return channels.mask_secret(self.signing_secret)

    @staticmethod
    def new_signing_secret() -> str:
        return "whsec_" + secrets.token_urlsafe(32)

    def save(self, *args: object, **kwargs: object) -> None:
        if self.kind == self.Kind.WEBHOOK and not self.signing_secret:
            self.signing_secret = self.new_signing_secret()
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        RUNAWAY = "runaway", "Runaway call or trace (k × p95 of its task class)"
        QUOTA = "quota", "Quota per user, session or API key and day"
        BUDGET = "budget", "Monthly budget"
        SPIKE = "spike", "Hourly spike"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="A condition seen again within this time updates its event instead of notifying again.")
    group_seconds = models.PositiveIntegerField(
        default=60, help_text="Events of this rule within this many seconds of a notification go out as one message.")
    flush_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertEvent(models.Model):
    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    class Severity(models.TextChoices):
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    OPEN_STATES = (State.FIRING, State.ACKNOWLEDGED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_events")
    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    rule_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=AlertRule.Kind.choices)
    fingerprint = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.FIRING)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.CRITICAL)
    title = models.CharField(max_length=500)
    value = models.FloatField()
    threshold = models.FloatField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    count = models.PositiveIntegerField(default=1, help_text="Times the condition was seen in this episode.")
    notified_count = models.PositiveIntegerField(default=0, help_text="Occurrences covered by notifications sent.")
    notify_pending = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    snoozed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [
            models.Index(fields=["project", "state", "-last_seen_at"], name="alerts_event_project_state"),
            models.Index(fields=["rule", "fingerprint"], name="alerts_event_fingerprint"),
        ]
        constraints = [
            # one open episode per condition: concurrent firings of one fingerprint cannot open two
            models.UniqueConstraint(fields=["rule", "fingerprint"], condition=Q(state__in=["firing", "acknowledged"]),
                                    name="alerts_event_one_open_per_fingerprint"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class Notification(models.Model):
    class Reason(models.TextChoices):
        FIRING = "firing", "Firing"
        ESCALATED = "escalated", "Escalated"
        REMINDER = "reminder", "Reminder"
        RESOLVED = "resolved", "Resolved"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_notifications")
    rule = models.ForeignKey(AlertRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    events = models.ManyToManyField(AlertEvent, related_name="notifications")
    message = models.JSONField(help_text="The content, frozen when created: every retry sends the same.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"notification #{self.pk} ({self.reason})"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Waiting to retry"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="alerts_delivery_once_per_channel"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.idempotency_key} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        return f"tm-{self.notification_id}-{self.channel_id}"  # type: ignore[attr-defined]


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    retry_after = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error[:40]}"  # type: ignore[attr-defined]


class SweepState(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="alert_sweep")
    swept_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.project} swept until {self.swept_until:%Y-%m-%d %H:%M:%S}"
