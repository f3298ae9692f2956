"""REST API of the alert engine: ``/api/v1/alert-rules``, ``/api/v1/channels``, ``/api/v1/alerts``.

Who may do what:

- listing and reading rules, channels (URLs masked) and alerts: project keys with the
  ``read`` scope, members of the project's organization;
- creating, changing and deleting rules and channels, sending a channel's test message
  and rotating its signing secret: keys with the ``write`` scope, people with the admin
  role (name the project with ``?project=<slug>`` when creating);
- acknowledging, resolving and snoozing alerts: keys with the ``write`` scope, people
  with the engineer role or above.

Objects outside the caller's projects answer 404, as if they did not exist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from alerts import services
from alerts.models import AlertEvent, AlertRule, Channel
from alerts.params import QUOTA_SUBJECTS
from alerts.serializers import (
    AlertEventSerializer,
    AlertRuleSerializer,
    ChannelSerializer,
    SendTestResultSerializer,
    SigningSecretSerializer,
    SnoozeSerializer,
)
from thinkmeter.access import has_role, require_key_scope, scoped_projects, writable_project
from thinkmeter.auth import KeyPrincipal
from thinkmeter.models import Project, Role

PROJECT = OpenApiParameter("project", OpenApiTypes.STR,
                           description="project slug (people; a key implies its project)")


def read_projects(request: Request) -> list[Project]:
    require_key_scope(request, "read")
    return scoped_projects(request)


def check_may(request: Request, project: Project, minimum: str) -> None:
    """Keys: the write scope on their own project; people: at least ``minimum`` in the project."""
    user = request.user
    if isinstance(user, KeyPrincipal):
        require_key_scope(request, "write")
        if user.key.project_id != project.pk:
            raise PermissionDenied("this key belongs to another project")
        return
    if not has_role(user, project, minimum):
        raise PermissionDenied(f"this needs the {minimum} role in project {project.slug}")


def actor(request: Request) -> str:
    return str(getattr(request.user, "username", "") or request.user)


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ProjectScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                           mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """List, read, create, change and delete the objects of the caller's projects.

    Reads cover the caller's readable projects; writes need the admin role or the write scope.
    """

    manage_role = Role.ADMIN
    pagination_class = Pagination

    def projects(self) -> list[Project]:
        return read_projects(self.request)

    def perform_create(self, serializer: BaseSerializer) -> None:
        serializer.save(project=self.target_project())

    def target_project(self) -> Project:
        return writable_project(self.request)

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if self.action == "create":
            context["project"] = self.target_project()
        elif self.action in ("update", "partial_update"):
            context["project"] = self.get_object().project
        return context

    def perform_update(self, serializer: BaseSerializer) -> None:
        check_may(self.request, serializer.instance.project, self.manage_role)  # type: ignore[union-attr]
        serializer.save()

    def perform_destroy(self, instance: Any) -> None:
        check_may(self.request, instance.project, self.manage_role)
        instance.delete()


@extend_schema_view(
    list=extend_schema(summary="List alert rules", parameters=[PROJECT]),
    retrieve=extend_schema(summary="Read an alert rule"),
    create=extend_schema(
        summary="Create an alert rule",
        parameters=[PROJECT],
        description=(
            "Body: `{\"kind\": \"runaway\"|\"quota\"|\"budget\"|\"spike\", \"name\", \"params\", \"filters\", "
            "\"channels\": [ids]}`. Params per kind (defaults in brackets): **runaway** multiplier [2], window "
            "[\"7d\"], min_samples [50], metric [\"reasoning_tokens\"|\"cost\"], scope [\"span\"|\"trace\"], "
            "absolute_cap [none]; **quota** metric, per [" + "|".join(f'\"{s}\"' for s in QUOTA_SUBJECTS)
            + "] (per API key: the key that sent the spans), limit (required, per subject and day), "
            "warn_at [0.8], fire_at [1.0]; **budget** cap_usd [the project's monthly budget], forecast [true], "
            "warn_at [none]; **spike** metric [\"cost\"], z [4], min_value [$1 or 10,000 tokens], "
            "baseline_days [14], min_baseline [3]. Filters: task_type, tier, model, service, environment, user."
        ),
    ),
    update=extend_schema(summary="Replace an alert rule"),
    partial_update=extend_schema(summary="Change an alert rule"),
    destroy=extend_schema(summary="Delete an alert rule (its alert history stays)"),
)
class AlertRuleViewSet(ProjectScopedViewSet):
    serializer_class = AlertRuleSerializer

    def get_queryset(self) -> QuerySet[AlertRule]:
        return (AlertRule.objects.filter(project__in=self.projects()).select_related("project")
                .prefetch_related("channels").order_by("project__slug", "name", "id"))


@extend_schema_view(
    list=extend_schema(summary="List notification channels (URLs masked)", parameters=[PROJECT]),
    retrieve=extend_schema(summary="Read a notification channel (URL masked)"),
    create=extend_schema(
        summary="Create a notification channel",
        parameters=[PROJECT],
        description="`{\"kind\": \"slack\"|\"webhook\", \"name\", \"url\"}`. The URL is a secret: answers show it "
                    "masked. A webhook channel's signing secret is in this answer only (see rotate-secret). "
                    "Webhooks are signed: `X-Thinkmeter-Signature: sha256=HMAC-SHA256(secret, "
                    "\"<X-Thinkmeter-Timestamp>.<body>\")`.",
    ),
    update=extend_schema(summary="Replace a notification channel"),
    partial_update=extend_schema(summary="Change a notification channel"),
    destroy=extend_schema(summary="Delete a notification channel"),
)
class ChannelViewSet(ProjectScopedViewSet):
    serializer_class = ChannelSerializer

    def get_queryset(self) -> QuerySet[Channel]:
        return (Channel.objects.filter(project__in=self.projects()).select_related("project")
                .order_by("project__slug", "name", "id"))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        channel: Channel = serializer.instance  # type: ignore[assignment]
        body = dict(serializer.data)
        if channel.signing_secret:
            body["signing_secret"] = channel.signing_secret  # shown this once
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Send a test message to the channel now", request=None,
                   responses=SendTestResultSerializer)
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request: Request, pk: str | None = None) -> Response:
        channel: Channel = self.get_object()
        check_may(request, channel.project, self.manage_role)
        result = services.send_test(channel)
        body = {"ok": result.ok, "status_code": result.status_code, "error": result.error}
        return Response(SendTestResultSerializer(body).data, status=200 if result.ok else 502)

    @extend_schema(summary="Replace a webhook channel's signing secret (the new one is in this answer only)",
                   request=None, responses=SigningSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        channel: Channel = self.get_object()
        check_may(request, channel.project, self.manage_role)
        if channel.kind != Channel.Kind.WEBHOOK:
            raise ValidationError({"kind": "only webhook channels are signed"})
        channel.signing_secret = Channel.new_signing_secret()
        channel.save(update_fields=["signing_secret", "updated_at"])
        return Response(SigningSecretSerializer({"signing_secret": channel.signing_secret}).data)


EVENT_FILTERS = [
    PROJECT,
    OpenApiParameter("state", OpenApiTypes.STR, description="firing, acknowledged, resolved, or open (the first two)"),
    OpenApiParameter("kind", OpenApiTypes.STR, description="runaway, quota, budget or spike"),
    OpenApiParameter("severity", OpenApiTypes.STR, description="warning or critical"),
    OpenApiParameter("rule", OpenApiTypes.INT, description="rule id"),
]


@extend_schema_view(
    list=extend_schema(summary="List alerts (newest activity first)", parameters=EVENT_FILTERS),
    retrieve=extend_schema(summary="Read an alert with its evidence"),
)
class AlertEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AlertEventSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[AlertEvent]:
        events = AlertEvent.objects.filter(project__in=read_projects(self.request)).select_related("project")
        params = self.request.query_params
        state = params.get("state", "").strip()
        if state:
            if state == "open":
                events = events.filter(state__in=AlertEvent.OPEN_STATES)
            elif state in AlertEvent.State.values:
                events = events.filter(state=state)
            else:
                raise ValidationError({"state": f"one of {', '.join(AlertEvent.State.values)}, open"})
        for name, choices in (("kind", AlertRule.Kind.values), ("severity", AlertEvent.Severity.values)):
            value = params.get(name, "").strip()
            if value:
                if value not in choices:
                    raise ValidationError({name: f"one of {', '.join(choices)}"})
                events = events.filter(**{name: value})
        rule = params.get("rule", "").strip()
        if rule:
            if not rule.isdigit():
                raise ValidationError({"rule": "a rule id"})
            events = events.filter(rule_id=int(rule))
        return events.order_by("-last_seen_at", "-id")

    def _act(self, request: Request) -> AlertEvent:
        event: AlertEvent = self.get_object()
        check_may(request, event.project, Role.ENGINEER)
        return event

    @extend_schema(summary="Acknowledge a firing alert", request=None, responses=AlertEventSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        event = self._act(request)
        try:
            services.acknowledge(event, actor(request))
        except ValueError as exc:
            raise ValidationError({"state": str(exc)}) from exc
        return Response(AlertEventSerializer(event).data)

    @extend_schema(summary="Resolve an alert", request=None, responses=AlertEventSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        event = self._act(request)
        try:
            event = services.resolve(event, actor(request))
        except ValueError as exc:
            raise ValidationError({"state": str(exc)}) from exc
        return Response(AlertEventSerializer(event).data)

    @extend_schema(summary="Snooze an alert's notifications", request=SnoozeSerializer,
                   responses=AlertEventSerializer)
    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: str | None = None) -> Response:
        event = self._act(request)
        incoming = SnoozeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        now = timezone.now()
        until = incoming.validated_data.get("until") or now + timedelta(minutes=incoming.validated_data["minutes"])
        try:
            services.snooze(event, until, actor(request), now)
        except ValueError as exc:
            raise ValidationError({"until": str(exc)}) from exc
        return Response(AlertEventSerializer(event).data)
