"""Alert pages: rules and channels (``/alerts/``) and the alert history (``/alerts/history/``).

Members see the rules, channels (URLs masked) and alerts of their projects (or the one
named by ``?project=``). Admins of a project manage its rules and channels and send a
channel's test message; engineers and admins acknowledge, resolve and snooze alerts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alerts import services
from alerts.forms import PARAM_HINTS, ChannelForm, RuleForm
from alerts.models import AlertEvent, AlertRule, Channel
from thinkmeter.access import ROLE_RANK, readable_projects, scoped_projects
from thinkmeter.models import Membership, Project, Role

View = Callable[..., HttpResponse]

SNOOZE_CHOICES = [(60, "1 hour"), (240, "4 hours"), (1440, "1 day"), (10080, "1 week")]


def _roles(user: Any, projects: list[Project]) -> dict[int, str]:
    if getattr(user, "is_superuser", False):
        return {p.pk: Role.ADMIN for p in projects}
    by_org = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
    return {p.pk: by_org[p.organization_id] for p in projects if p.organization_id in by_org}


def _with_role(projects: list[Project], roles: dict[int, str], minimum: str) -> list[Project]:
    return [p for p in projects if p.pk in roles and ROLE_RANK[Role(roles[p.pk])] >= ROLE_RANK[Role(minimum)]]


def _context(request: HttpRequest, nav: str) -> tuple[list[Project], dict[int, str], dict[str, Any]]:
    projects = scoped_projects(request)
    roles = _roles(request.user, readable_projects(request.user))
    context = {"nav": nav, "projects": projects, "project_choices": readable_projects(request.user),
               "selected_project": request.GET.get("project", "")}
    return projects, roles, context


def _back(request: HttpRequest, default: str = "/alerts/") -> HttpResponseRedirect:
    target = request.POST.get("next") or default
    if not target.startswith("/") or target.startswith("//"):
        target = default
    return HttpResponseRedirect(target)


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """The 403 page every alerts view shows when the role is not enough."""
    return render(request, "alerts/forbidden.html", {"reason": reason}, status=403)


@login_required
def rules_page(request: HttpRequest) -> HttpResponse:
    projects, roles, context = _context(request, "alerts")
    managed = _with_role(projects, roles, Role.ADMIN)
    rule_form = RuleForm(projects=managed, prefix="rule")
    channel_form = ChannelForm(projects=managed, prefix="channel")
    if request.method == "POST":
        if not managed:
            return _forbidden(request, "Managing alerts needs the admin role.")
        if request.POST.get("form") == "rule":
            rule_form = RuleForm(request.POST, projects=managed, prefix="rule")
            if rule_form.is_valid():
                data = rule_form.cleaned_data
                with transaction.atomic():
                    rule = AlertRule.objects.create(
                        project=data["project"], name=data["name"], kind=data["kind"], params=data["params"],
                        filters=data["filters"], enabled=data["enabled"], cooldown_minutes=data["cooldown_minutes"],
                        group_seconds=data["group_seconds"])
                    rule.channels.set(data["channels"])
                messages.success(request, f"Rule “{rule.name}” created.")
                return HttpResponseRedirect(request.get_full_path())
        elif request.POST.get("form") == "channel":
            channel_form = ChannelForm(request.POST, projects=managed, prefix="channel")
            if channel_form.is_valid():
                channel = channel_form.save()
                note = ""
                if channel.signing_secret:
                    note = (f" Its signing secret (shown once; verify X-Thinkmeter-Signature with it): "
                            f"{channel.signing_secret}")
                messages.success(request, f"Channel “{channel.name}” created.{note}")
                return HttpResponseRedirect(request.get_full_path())
    rules = (AlertRule.objects.filter(project__in=projects).select_related("project").prefetch_related("channels")
             .order_by("project__slug", "name"))
    open_counts: dict[int, int] = {}
    for rule_id in AlertEvent.objects.filter(project__in=projects, state__in=AlertEvent.OPEN_STATES).values_list(
            "rule_id", flat=True):
        if rule_id is not None:
            open_counts[rule_id] = open_counts.get(rule_id, 0) + 1
    context.update({
        "rules": [{"rule": r, "open": open_counts.get(r.pk, 0), "manage": r.project_id in {p.pk for p in managed}}
                  for r in rules],
        "channels": [{"channel": c, "manage": c.project_id in {p.pk for p in managed}}
                     for c in Channel.objects.filter(project__in=projects).select_related("project")],
        "rule_form": rule_form, "channel_form": channel_form, "can_manage": bool(managed),
        "param_hints": PARAM_HINTS,
    })
    return render(request, "alerts/rules.html", context)


def _acting_on(model: Any, minimum: str, reason: str) -> Callable[[View], View]:
    """View decorator: the view gets the ``model`` row named by the URL's ``pk`` instead of ``pk``.

    A row outside the user's projects answers 404, as if it did not exist; a role below
    ``minimum`` in its project answers the 403 page with ``reason``.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, pk: int, **kwargs: Any) -> HttpResponse:
            obj = get_object_or_404(model.objects.select_related("project"), pk=pk)
            readable = readable_projects(request.user)
            if obj.project_id not in {p.pk for p in readable}:
                raise Http404("not found")
            if obj.project_id not in {p.pk for p in _with_role(readable, _roles(request.user, readable), minimum)}:
                return _forbidden(request, reason)
            return view(request, obj, **kwargs)

        return wrapped

    return decorate


@login_required
@_acting_on(AlertRule, Role.ADMIN, "Changing a rule needs the admin role.")
def rule_edit(request: HttpRequest, rule: AlertRule) -> HttpResponse:
    form = RuleForm(request.POST or None, projects=[rule.project], rule=rule)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            for name in ("name", "params", "filters", "enabled", "cooldown_minutes", "group_seconds"):
                setattr(rule, name, data[name])
            rule.save()
            rule.channels.set(data["channels"])
        messages.success(request, f"Rule “{rule.name}” saved.")
        return HttpResponseRedirect(f"/alerts/?project={rule.project.slug}")
    return render(request, "alerts/rule_edit.html", {"nav": "alerts", "rule": rule, "form": form,
                                                     "param_hints": PARAM_HINTS})


@login_required
@require_POST
@_acting_on(AlertRule, Role.ADMIN, "Deleting a rule needs the admin role.")
def rule_delete(request: HttpRequest, rule: AlertRule) -> HttpResponse:
    rule.delete()
    messages.success(request, f"Rule “{rule.name}” deleted; its alert history stays.")
    return _back(request)


@login_required
@require_POST
@_acting_on(Channel, Role.ADMIN, "Testing a channel needs the admin role.")
def channel_test(request: HttpRequest, channel: Channel) -> HttpResponse:
    result = services.send_test(channel)
    if result.ok:
        messages.success(request, f"Test message sent to “{channel.name}” (HTTP {result.status_code}).")
    else:
        messages.error(request, f"Test message to “{channel.name}” failed: {result.error}")
    return _back(request)


@login_required
@require_POST
@_acting_on(Channel, Role.ADMIN, "Deleting a channel needs the admin role.")
def channel_delete(request: HttpRequest, channel: Channel) -> HttpResponse:
    channel.delete()
    messages.success(request, f"Channel “{channel.name}” deleted.")
    return _back(request)


@login_required
def history_page(request: HttpRequest) -> HttpResponse:
    projects, roles, context = _context(request, "alerts")
    events = AlertEvent.objects.filter(project__in=projects).select_related("project", "rule")
    state = request.GET.get("state", "")
    if state == "open":
        events = events.filter(state__in=AlertEvent.OPEN_STATES)
    elif state in AlertEvent.State.values:
        events = events.filter(state=state)
    kind = request.GET.get("kind", "")
    if kind in AlertRule.Kind.values:
        events = events.filter(kind=kind)
    for name in ("rule", "event"):
        value = request.GET.get(name, "")
        if value.isdigit():
            events = events.filter(**{"rule_id" if name == "rule" else "pk": int(value)})
    page = Paginator(events.order_by("-last_seen_at", "-id"), 50).get_page(request.GET.get("page"))
    engineer_projects = {p.pk for p in _with_role(projects, roles, Role.ENGINEER)}
    now = timezone.now()
    context.update({
        "page": page, "state": state, "kind": kind, "states": AlertEvent.State.choices,
        "kinds": AlertRule.Kind.choices, "now": now, "snooze_choices": SNOOZE_CHOICES,
        "rows": [{"event": e, "act": e.project_id in engineer_projects,
                  "snoozed": e.snoozed_until is not None and e.snoozed_until > now} for e in page.object_list],
        "query": request.GET.urlencode(),
    })
    return render(request, "alerts/history.html", context)


@login_required
@require_POST
@_acting_on(AlertEvent, Role.ENGINEER, "Acknowledging, resolving and snoozing alerts needs the engineer role.")
def event_action(request: HttpRequest, event: AlertEvent, action: str) -> HttpResponse:
    by = request.user.get_username()
    try:
        if action == "acknowledge":
            services.acknowledge(event, by)
        elif action == "resolve":
            services.resolve(event, by)
        elif action == "snooze":
            minutes = int(request.POST.get("minutes", "60"))
            services.snooze(event, timezone.now() + timedelta(minutes=minutes), by)
        else:
            raise Http404("unknown action")
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert #{event.pk}: {action}d." if action != "snooze" else
                         f"Alert #{event.pk} snoozed.")
    return _back(request, "/alerts/history/")
