"""The analytics REST API: usage, trace search and detail, and thinking budgets (DESIGN.md §5).

Views are thin: they check who may see what, parse parameters and call
:mod:`dashboards.queries`. Who may see what:

- a project key needs the ``read`` scope and sees its project (prompt text included);
- a person sees the projects of their organizations (a superuser every project);
  ``?project=<slug>`` narrows to one of them (another slug is 404);
- viewers and finance see aggregates; where a project hides per-user drill-down
  (``Project.hide_user_drilldown``) they get 403 for grouping by or filtering on
  user_id or session_id; traces and their spans need the engineer role.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards import queries
from dashboards.serializers import (
    BudgetParamsSerializer,
    BudgetResponseSerializer,
    TraceDetailSerializer,
    TraceListSerializer,
    TraceSearchParamsSerializer,
    UsageResponseSerializer,
)
from thinkmeter.access import ROLE_RANK, require_key_scope, scoped_projects
from thinkmeter.auth import KeyPrincipal
from thinkmeter.models import Membership, Project, Role

USER_DIMENSIONS = ("user_id", "session_id")


# ---------------------------------------------------------------- roles

def roles(user: Any, projects: Sequence[Project]) -> dict[int, str | None]:
    """The caller's role per project: None for a project key (keys are checked by scope),
    admin for a superuser, else the membership role in the project's organization."""
    if isinstance(user, KeyPrincipal):
        return {p.pk: None for p in projects}
    if getattr(user, "is_superuser", False):
        return {p.pk: Role.ADMIN for p in projects}
    by_org = dict(Membership.objects.filter(user=user, organization_id__in={p.organization_id for p in projects})
                  .values_list("organization_id", "role"))
    return {p.pk: by_org.get(p.organization_id) for p in projects}


def at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


def readable(request: Request) -> list[Project]:
    """The projects this request covers; keys must carry the read scope."""
    require_key_scope(request, "read")
    return scoped_projects(request)


def trace_projects(request: Request) -> tuple[list[Project], bool]:
    """Projects whose traces the caller may open, and whether prompt text may be shown.

    Keys (read scope) may; people need the engineer role (admins and superusers too).
    """
    projects = readable(request)
    if isinstance(request.user, KeyPrincipal):
        return projects, True
    role_of = roles(request.user, projects)
    allowed = [p for p in projects if at_least(role_of[p.pk], Role.ENGINEER)]
    if not allowed:
        raise PermissionDenied("traces need the engineer role in the project")
    return allowed, True


def check_user_drilldown(request: Request, projects: Sequence[Project], dimensions: set[str]) -> None:
    """403 when a viewer or finance member asks for per-user data of a project that hides it."""
    asked = sorted(dimensions & set(USER_DIMENSIONS))
    hidden = [p for p in projects if p.hide_user_drilldown]
    if not asked or not hidden or isinstance(request.user, KeyPrincipal):
        return
    role_of = roles(request.user, hidden)
    denied = [p.slug for p in hidden if not at_least(role_of[p.pk], Role.ENGINEER)]
    if denied:
        raise PermissionDenied(
            f"per-user drill-down ({', '.join(asked)}) is hidden in project {', '.join(denied)} "
            "for viewers and finance")


def _query_error(exc: queries.QueryError) -> ParseError:
    return ParseError(str(exc))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- CSV

class CSVRenderer(BaseRenderer):
    """``?format=csv``: the ``rows`` of a response as CSV, one column per key."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        rows: list[dict[str, Any]] = data.get("rows", []) if isinstance(data, dict) else []
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        if "other" in columns:  # keep the flag beside the dimensions, before the measures
            columns.remove("other")
            columns.insert(columns.index("requests") if "requests" in columns else len(columns), "other")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("true" if v is True else "" if v is None else v) for k, v in row.items()})
        return out.getvalue().encode("utf-8")


class AnalyticsView(APIView):
    """Base: errors are always JSON, even when ``?format=csv`` asked for CSV."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if response.status_code >= 400 and isinstance(getattr(request, "accepted_renderer", None), CSVRenderer):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# ---------------------------------------------------------------- usage

DIMENSION_PARAMETERS = [
    OpenApiParameter(d, OpenApiTypes.STR, description=f"Only rows with this {d} (repeat or comma-separate "
                                                       "for several values).")
    for d in queries.DIMENSIONS if d != "project"
]
RANGE_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.STR, description="ISO-8601 date or datetime (UTC when no offset); "
                                                           "default: 30 days before `to`."),
    OpenApiParameter("to", OpenApiTypes.STR, description="Exclusive end; default: the end of the current hour."),
    OpenApiParameter("project", OpenApiTypes.STR, description="Project slug: narrows to one of your projects."),
]


class UsageView(AnalyticsView):
    """Tokens and cost, grouped by dimensions and time buckets."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        operation_id="usage",
        parameters=[
            *RANGE_PARAMETERS,
            OpenApiParameter("group_by", OpenApiTypes.STR,
                             description=f"Comma-separated dimensions: {', '.join(queries.DIMENSIONS)}."),
            OpenApiParameter("interval", OpenApiTypes.STR, enum=list(queries.INTERVALS),
                             description="Split rows by time bucket (rows get `bucket`)."),
            OpenApiParameter("limit", OpenApiTypes.INT,
                             description="Top N groups by cost (default 50); the rest sum into an `other` row."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
            *DIMENSION_PARAMETERS,
        ],
        responses=UsageResponseSerializer,
    )
    def get(self, request: Request) -> Response:
        projects = readable(request)
        params = request.query_params
        try:
            start, end = queries.time_range(params.get("from"), params.get("to"))
            query = queries.UsageQuery(
                project_ids=[p.pk for p in projects], start=start, end=end,
                group_by=queries.parse_group_by(params.get("group_by")),
                interval=queries.parse_interval(params.get("interval")),
                filters=queries.filters_from_query(params, params.getlist),
                limit=queries.parse_limit(params.get("limit")),
            )
        except queries.QueryError as exc:
            raise _query_error(exc) from exc
        check_user_drilldown(request, projects, query.dimensions)
        response = Response({"start": _iso(start), "end": _iso(end), "rows": queries.usage_rows(query)})
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="usage-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
        return response


# ---------------------------------------------------------------- traces

class TraceListView(AnalyticsView):
    """Search traces, newest first."""

    @extend_schema(
        operation_id="traces_list",
        parameters=[*RANGE_PARAMETERS, TraceSearchParamsSerializer,
                    *(p for p in DIMENSION_PARAMETERS if p.name in queries.TRACE_FILTERS)],
        responses=TraceListSerializer,
    )
    def get(self, request: Request) -> Response:
        projects, _ = trace_projects(request)
        params = request.query_params
        checked = TraceSearchParamsSerializer(data=params)
        checked.is_valid(raise_exception=True)
        data = checked.validated_data
        try:
            start, end = queries.time_range(params.get("from"), params.get("to"))
            filters = {k: v for k, v in queries.filters_from_query(params, params.getlist).items()}
            unknown = set(filters) - set(queries.TRACE_FILTERS)
            if unknown:
                raise queries.QueryError(f"traces cannot be filtered by {', '.join(sorted(unknown))}")
            search = queries.TraceSearch(
                project_ids=[p.pk for p in projects], start=start, end=end, filters=filters,
                status=data.get("status"), min_cost=data.get("min_cost"),
                min_reasoning_tokens=data.get("min_reasoning_tokens"), runaway=data.get("runaway"),
                q=data.get("q"), limit=data["limit"], offset=data["offset"],
            )
        except queries.QueryError as exc:
            raise _query_error(exc) from exc
        return Response(queries.search_traces(search))


class TraceDetailView(AnalyticsView):
    """Every span of one trace."""

    @extend_schema(operation_id="traces_retrieve", parameters=[RANGE_PARAMETERS[2]], responses=TraceDetailSerializer)
    def get(self, request: Request, trace_id: str) -> Response:
        projects, include_text = trace_projects(request)
        detail = queries.trace_detail([p.pk for p in projects], trace_id, include_text=include_text)
        if detail is None:
            return Response({"detail": "no such trace"}, status=404)
        return Response(detail)


# ---------------------------------------------------------------- budgets

class BudgetsView(AnalyticsView):
    """Reasoning-token statistics and a recommended thinking budget per task class."""

    @extend_schema(operation_id="budgets", parameters=[RANGE_PARAMETERS[2], BudgetParamsSerializer],
                   responses=BudgetResponseSerializer)
    def get(self, request: Request) -> Response:
        projects = readable(request)
        checked = BudgetParamsSerializer(data=request.query_params)
        checked.is_valid(raise_exception=True)
        data = checked.validated_data
        now = datetime.now(UTC)
        try:
            window = queries.parse_window(data["window"])
            classes = queries.budget_stats(
                [p.pk for p in projects], window.total_seconds() / 86400, tolerance=data["tolerance"],
                task_type=data.get("task_type") or None, score_name=data["score_name"],
                min_samples=data["min_samples"], now=now,
            )
        except queries.QueryError as exc:
            raise _query_error(exc) from exc
        return Response({
            "window": data["window"], "start": _iso(now - window), "end": _iso(now),
            "tolerance": data["tolerance"], "score_name": data["score_name"], "classes": classes,
        })
