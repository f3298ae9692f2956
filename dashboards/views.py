"""Dashboard pages: Finance, Engineering, the trace explorer and Prices.

Thin views: read the page state (:mod:`dashboards.page_filters`), fetch data
(:mod:`dashboards.page_data`), build figures (:mod:`dashboards.figures`) and render.

Who sees what (roles come from :class:`thinkmeter.models.Membership`; superusers are admin):

- every member (viewer, finance, engineer, admin) sees Finance, the monthly report,
  Engineering's aggregate charts and Prices;
- per-user figures (top users, the user filter) are left out for viewers and finance in
  projects with ``hide_user_drilldown``;
- traces (the explorer, a trace page, Engineering's runaway-traces table) need the
  engineer role in the trace's project: others get a 403 page (or no table);
- prompt and completion text show only to engineers and admins, and only if the project
  stored it (``store_prompts``).

Pages cover every project the person may read, or the one named by ``?project=``.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import plotly
import plotly.graph_objects as go
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboards import figures, page_data, page_fetch, server_timing
from dashboards.forecast import forecast_month_end
from dashboards.page_filters import RANGES, PageFilters, month_start, next_month, parse
from ingest.models import ModelPrice
from thinkmeter.access import ROLE_RANK, readable_projects, scoped_projects
from thinkmeter.models import Membership, Project, Role

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_URL = f"/assets/plotly-{plotly.__version__}.min.js"
FILTER_LABELS = {"service": "Service", "environment": "Environment", "model": "Model", "task_type": "Task type",
                 "tier": "Tier", "user": "User"}
TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,64}$")


# ---------------------------------------------------------------- plotly.js, served by us

@lru_cache(maxsize=1)
def _plotly_bytes() -> tuple[bytes, bytes]:
    raw = PLOTLY_JS.read_bytes()
    return raw, gzip.compress(raw, compresslevel=6)


@require_GET
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    """The plotly.js bundled in the installed plotly package (no CDN: users may run offline).

    The URL carries the version, so browsers may cache it for good.
    """
    if version != plotly.__version__:
        raise Http404("unknown plotly version")
    etag = f'"plotly-{plotly.__version__}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    raw, packed = _plotly_bytes()
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    response = HttpResponse(packed if gzipped else raw, content_type="text/javascript; charset=utf-8")
    if gzipped:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["ETag"] = etag
    return response


# ---------------------------------------------------------------- shared page state

@dataclass
class Chart:
    """One figure on a page: its element id and the JSON Plotly draws."""

    id: str
    json: str
    height: int


def chart(chart_id: str, fig: go.Figure) -> Chart:
    # Escaped so that no "</script>" inside a label can end the script element.
    text = fig.to_json().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Chart(id=chart_id, json=text, height=int(fig.layout.height or 320))


@dataclass
class PageView:
    """Who is looking at which projects with which filters."""

    request: HttpRequest
    projects: list[Project]
    readable: list[Project]
    roles: dict[int, str]
    pf: PageFilters
    notices: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [p.pk for p in self.projects]

    def can(self, project: Project, minimum: str) -> bool:
        role = self.roles.get(project.pk)
        return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]

    def with_role(self, minimum: str) -> list[Project]:
        return [p for p in self.projects if self.can(p, minimum)]

    def user_drilldown_projects(self) -> list[Project]:
        """Projects whose per-user figures this person may see."""
        return [p for p in self.projects if not p.hide_user_drilldown or self.can(p, Role.ENGINEER)]

    def names(self) -> dict[str, str]:
        """Project slug → name (spend by project comes back keyed by slug)."""
        return {p.slug: p.name for p in self.readable}

    def slugs(self) -> dict[int, str]:
        """Project id → slug of the projects in view (for data fetched off the request thread)."""
        return {p.pk: p.slug for p in self.readable}


def roles_for(user: Any, projects: list[Project]) -> dict[int, str]:
    """The person's role in each project (one query; superusers are admin everywhere)."""
    if getattr(user, "is_superuser", False):
        return {p.pk: Role.ADMIN for p in projects}
    by_org = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
    return {p.pk: by_org[p.organization_id] for p in projects if p.organization_id in by_org}


def page_view(request: HttpRequest, extra_keys: tuple[str, ...] = ()) -> PageView:
    readable = readable_projects(request.user)
    projects = scoped_projects(request)
    pf = parse(request.GET, extra_keys=extra_keys)
    view = PageView(request=request, projects=projects, readable=readable, roles=roles_for(request.user, readable), pf=pf)
    if "user" in pf.filters and len(view.user_drilldown_projects()) < len(projects):
        del pf.filters["user"]
        view.notices.append("Per-user drill-down is turned off for your role in a project in view: "
                            "the user filter was ignored.")
    return view


def base_context(view: PageView, nav: str, *, filters: bool = True,
                 options: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The layout's context; ``options`` are the filter selects' values when already fetched."""
    pf = view.pf
    context: dict[str, Any] = {
        "nav": nav, "pf": pf if filters else None, "notices": view.notices, "plotly_url": PLOTLY_URL,
        "ranges": list(RANGES.items()), "range_last_day": pf.end - timedelta(microseconds=1),
        "project_choices": view.readable, "base_url": view.request.build_absolute_uri("/").rstrip("/"),
        "projects": view.projects, "charts": [],
    }
    if filters:
        if options is None:
            options = page_data.filter_options(view.ids, pf) if view.ids else {}
        fields: list[dict[str, Any]] = []
        for name, label in FILTER_LABELS.items():
            if name == "user":
                if len(view.user_drilldown_projects()) == len(view.projects):
                    fields.append({"name": name, "label": label, "value": pf.filters.get(name, ""), "choices": None})
                continue
            values = options.get(name, [])
            current = pf.filters.get(name, "")
            if current and current not in values:
                values = [*values, current]
            if not values:
                continue
            choices = [(v, f"Tier {v}" if name == "tier" and v != "0" else ("Untiered" if name == "tier" else v))
                       for v in values]
            fields.append({"name": name, "label": label, "value": current, "choices": choices})
        context["filter_fields"] = fields
    return context


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "dashboards/forbidden.html", {"reason": reason, "nav": ""}, status=403)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records") if not df.empty else []


# ---------------------------------------------------------------- finance

@login_required
@server_timing.timed_page
def finance(request: HttpRequest) -> HttpResponse:
    view = page_view(request)
    pf, ids = view.pf, view.ids
    now = datetime.now(UTC)
    drill = view.user_drilldown_projects()
    with server_timing.measure("data"):
        data = page_fetch.finance_page(ids, pf, now, names=view.names(), slugs=view.slugs(),
                                       user_ids=[p.pk for p in drill])
    context = base_context(view, "finance", options=data.options)
    by = data.by
    totals = page_data.frame_totals(by["task_type"])  # every group plus "other": the whole view
    context["has_data"] = bool(totals.get("requests"))
    context["has_any_data"] = context["has_data"] or page_data.has_any_data(ids)
    budget = float(sum(p.monthly_budget_usd for p in view.projects))
    context["budget"] = budget
    context["month_label"] = f"{now:%B %Y}"
    charts: list[Chart] = []
    month = data.month if context["has_any_data"] else None
    if month is not None and (month.month_to_date > 0 or context["has_data"]):
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        forecast = forecast_month_end(
            month.month_to_date, month.history, (month.month_end - now).total_seconds() / 86400,
            today_so_far=month.today_so_far, today_elapsed=(now - today).total_seconds() / 86400,
        )
        charts.append(chart("budget", figures.budget_burn(
            month.daily, month_start=month.month_start, month_end=month.month_end, now=now, budget=budget,
            forecast=forecast,
        )))
        context.update({
            "forecast": forecast, "month_to_date": month.month_to_date,
            "budget_share": month.month_to_date / budget if budget else None,
            "forecast_share": forecast.share_of(budget),
        })
    if context["has_data"]:
        context["totals"] = totals
        context["reasoning_share"] = totals["cost_reasoning"] / totals["cost_total"] if totals["cost_total"] else 0
        context["mean_cost"] = totals["cost_total"] / totals["requests"]
        context["unpriced"] = data.unpriced
        charts.append(chart("over_time", figures.spend_over_time(data.over_time, interval=pf.interval)))
        charts.append(chart("parts", figures.cost_parts_donut(totals)))
        for dimension, frame in by.items():
            charts.append(chart(f"by_{dimension}", figures.spend_by(frame)))
        charts.append(chart("reasoning_share", figures.reasoning_share_by(by["task_type"])))
        context["users_hidden"] = len(drill) < len(view.projects)
        if data.top_users is not None:
            charts.append(chart("top_users", figures.top_users(data.top_users)))
        context["csv_links"] = {
            "By day and part": f"/api/v1/usage?{pf.api_querystring(format='csv', interval='day')}",
            "By task type and tier": f"/api/v1/usage?{pf.api_querystring(format='csv', group_by='task_type,tier')}",
            "By model": f"/api/v1/usage?{pf.api_querystring(format='csv', group_by='model')}",
            "By project": f"/api/v1/usage?{pf.api_querystring(format='csv', group_by='project')}",
        }
    context["charts"] = {c.id: c for c in charts}
    context["report_url"] = f"/finance/report/?month={now:%Y-%m}" + (f"&project={pf.project}" if pf.project else "")
    with server_timing.measure("render"):
        return render(request, "dashboards/finance.html", context)


MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@login_required
def finance_report(request: HttpRequest) -> HttpResponse:
    """The printable monthly report: totals by project, tier, model and task type, with parts."""
    view = page_view(request)
    now = datetime.now(UTC)
    text = request.GET.get("month") or f"{now:%Y-%m}"
    match = MONTH.match(text)
    error = ""
    if not match or not 1 <= int(match.group(2)) <= 12:
        error = f"Month must look like 2026-03, got {text!r}; showing this month."
        start = month_start(now)
    else:
        start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
    end = next_month(start)
    context = base_context(view, "finance", filters=False)
    context["error"] = error
    context["month"] = start
    context["previous"] = f"{(start - timedelta(days=1)):%Y-%m}"
    context["next"] = f"{end:%Y-%m}" if end <= now else ""
    context["generated"] = now
    context["budget"] = float(sum(p.monthly_budget_usd for p in view.projects))
    report = page_data.month_report(view.ids, start, end, view.names()) if view.ids else {}
    sections = []
    titles = {"project": "By project", "tier": "By tier", "model": "By model", "task_type": "By task type"}
    for key, title in titles.items():
        rows = _records(report.get(key, pd.DataFrame()))
        total = {c: sum(float(r[c]) for r in rows) for c in
                 ("requests", "cost_input", "cost_cache", "cost_output", "cost_reasoning", "cost_total")}
        sections.append({"title": title, "rows": rows, "total": total})
    context["sections"] = sections
    context["grand"] = sections[0]["total"] if sections else {}
    context["has_data"] = bool(sections and sections[0]["rows"])
    context["project_names"] = ", ".join(p.name for p in view.projects) or "no projects"
    qs = f"&project={view.pf.project}" if view.pf.project else ""
    context["qs_project"] = qs
    return render(request, "dashboards/finance_report.html", context)


# ---------------------------------------------------------------- engineering

RUNAWAY_ROWS = page_fetch.RUNAWAY_ROWS


@login_required
@server_timing.timed_page
def engineering(request: HttpRequest) -> HttpResponse:
    view = page_view(request)
    pf, ids = view.pf, view.ids
    engineer_projects = view.with_role(Role.ENGINEER)
    with server_timing.measure("data"):
        data = page_fetch.engineering_page(ids, pf, slugs=view.slugs(),
                                           trace_ids=[p.pk for p in engineer_projects])
    context = base_context(view, "engineering", options=data.options)
    totals = data.totals
    context["has_data"] = bool(totals.get("requests"))
    context["has_any_data"] = context["has_data"] or page_data.has_any_data(ids)
    charts: list[Chart] = []
    if context["has_data"]:
        context["totals"] = totals
        escalation = data.escalation if data.escalation is not None else pd.DataFrame()
        charts += [
            chart("reasoning", figures.reasoning_distribution(data.distribution)),
            chart("latency", figures.latency_by_tier(data.latency)),
            chart("escalation", figures.escalation_rate(escalation)),
            chart("frontier", figures.quality_frontier(data.quality)),
            chart("budget_used", figures.budget_vs_used(data.budget)),
        ]
        if not escalation.empty:
            total_requests = float(escalation["requests"].sum())
            context["escalation_total"] = float(escalation["escalated"].sum()) / total_requests if total_requests else 0
        context["can_see_traces"] = bool(engineer_projects)
        if engineer_projects:
            context["runaways"] = data.runaways or []
            context["runaway_more"] = len(context["runaways"]) >= RUNAWAY_ROWS
    context["charts"] = {c.id: c for c in charts}
    with server_timing.measure("render"):
        return render(request, "dashboards/engineering.html", context)


# ---------------------------------------------------------------- traces

TRACE_KEYS = ("min_cost", "min_reasoning", "status", "runaway", "page")
PAGE_SIZE = 50
MAX_PAGES = 2000  # the search API's offset limit is 100,000


def _number(text: str, kind: type, errors: list[str], label: str) -> Any:
    if not text:
        return kind(0)
    try:
        value = kind(text)
    except ValueError:
        errors.append(f"{label} must be a number, got {text!r}; ignored.")
        return kind(0)
    if value < 0:
        errors.append(f"{label} cannot be negative; ignored.")
        return kind(0)
    return value


@login_required
def traces(request: HttpRequest) -> HttpResponse:
    view = page_view(request, extra_keys=TRACE_KEYS)
    allowed = view.with_role(Role.ENGINEER)
    if not allowed:
        return forbidden(request, "The trace explorer shows individual requests, so it needs the engineer or "
                                  "admin role. Finance and Engineering show the aggregates.")
    view.projects = allowed
    view.readable = [p for p in view.readable if view.can(p, Role.ENGINEER)]
    context = base_context(view, "traces")
    pf = view.pf
    extra = pf.extra
    min_cost = _number(extra.get("min_cost", ""), float, pf.errors, "Minimum cost")
    min_reasoning = _number(extra.get("min_reasoning", ""), int, pf.errors, "Minimum reasoning tokens")
    page = min(max(_number(extra.get("page", ""), int, pf.errors, "Page"), 1), MAX_PAGES)
    status = extra.get("status", "") if extra.get("status", "") in ("", "ok", "error") else ""
    rows, next_offset = page_data.search_traces(
        view.ids, pf, min_cost=min_cost, min_reasoning=min_reasoning, status=status,
        runaway=True if extra.get("runaway") == "1" else None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )
    context["rows"] = rows
    context["page"] = page
    context["next_qs"] = pf.querystring(page=str(page + 1)) if next_offset is not None and page < MAX_PAGES else ""
    context["prev_qs"] = pf.querystring(page=str(page - 1) if page > 2 else None) if page > 1 else ""
    context["has_any_data"] = bool(rows) or page_data.has_any_data(view.ids)
    context["extra_fields"] = [
        {"name": "min_cost", "label": "Min cost ($)", "value": extra.get("min_cost", ""), "choices": None,
         "input_type": "number", "step": "0.0001", "placeholder": "0"},
        {"name": "min_reasoning", "label": "Min reasoning", "value": extra.get("min_reasoning", ""), "choices": None,
         "input_type": "number", "step": "1", "placeholder": "0"},
        {"name": "status", "label": "Status", "value": status,
         "choices": [("", "Any"), ("ok", "OK"), ("error", "Error")]},
        {"name": "runaway", "label": "Runaway", "value": extra.get("runaway", ""),
         "choices": [("", "All traces"), ("1", "Runaway only")]},
    ]
    return render(request, "dashboards/traces.html", context)


@login_required
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    view = page_view(request)
    view.projects = view.readable
    allowed = view.with_role(Role.ENGINEER)
    reason = "A trace shows individual requests, so it needs the engineer or admin role."
    if not allowed:
        return forbidden(request, reason)
    if not TRACE_ID.match(trace_id):
        raise Http404("not a trace id")
    found = page_data.trace([p.pk for p in allowed], trace_id, include_text=any(p.store_prompts for p in allowed))
    if found is None:
        others = [p.pk for p in view.readable if p not in allowed]
        if others and page_data.trace(others, trace_id, include_text=False) is not None:
            return forbidden(request, reason + " You have a lesser role in this trace's project.")
        raise Http404("no such trace in your projects")
    detail, spans = found
    view.projects = [next(p for p in allowed if p.slug == spans["project"].iloc[0])]
    project = view.projects[0]
    context = base_context(view, "traces", filters=False)
    for span in detail["spans"]:
        span["color"] = figures.span_color(span["kind"], span["status"])
    counted = spans[spans["counted"]]
    context.update({
        "trace": detail, "project": project, "spans": detail["spans"],
        "charts": {"waterfall": chart("waterfall", figures.span_waterfall(spans))},
        "started": datetime.fromisoformat(detail["start"].replace("Z", "+00:00")),
        "cost": float(detail["cost_usd"]), "errors": int((spans["status"] == "error").sum()),
        "estimated": bool(counted["reasoning_estimated"].any()),
        "unpriced": int((~counted["priced"]).sum()),
        "show_text": project.store_prompts,
    })
    return render(request, "dashboards/trace_detail.html", context)


# ---------------------------------------------------------------- prices

@login_required
def prices(request: HttpRequest) -> HttpResponse:
    view = page_view(request)
    context = base_context(view, "prices", filters=False)
    today = datetime.now(UTC).date()
    entries = (
        ModelPrice.objects.filter(project__isnull=True) | ModelPrice.objects.filter(project__in=view.projects)
    ).select_related("project").prefetch_related("rates").order_by("project_id", "position", "id")
    catalog: list[dict[str, Any]] = []
    for entry in entries:
        rates = list(entry.rates.all())
        current = next((r for r in rates if r.effective_from <= today and (r.effective_to is None or today < r.effective_to)), None)
        catalog.append({"entry": entry, "current": current, "history": len(rates),
                        "since": current.effective_from if current else None,
                        "until": current.effective_to if current else None})
    context["catalog"] = catalog
    context["providers"] = sorted({entry.provider for entry in entries})
    context["unpriced"] = page_data.unpriced_models(view.ids)
    context["names"] = view.names()
    context["is_admin"] = request.user.is_staff and any(r == Role.ADMIN for r in view.roles.values())
    return render(request, "dashboards/prices.html", context)
