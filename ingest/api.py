"""REST API for prices, unpriced models, scores and classification rules (under ``/api/v1/``).

Project keys authenticate with ``Authorization: Bearer`` and imply their project: the
``read`` scope for GET, ``write`` to change prices and rules (``write`` or ``ingest`` to
post scores). People use session login and name the project with ``?project=<slug>``;
reading needs membership, changing prices and rules the admin role, posting scores the
engineer role. Every ClickHouse query is limited to the caller's projects.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboards.page_filters import parse_moment
from ingest import scores, unpriced
from ingest.catalog import catalog
from ingest.models import ClassificationRule, ModelPrice, PriceRate
from ingest.serializers import (
    HEX_TRACE,
    MAX_POSITION,
    CatalogPriceListSerializer,
    CatalogPriceSerializer,
    ClassificationRuleListSerializer,
    ClassificationRuleSerializer,
    ScoreInSerializer,
    ScoreListSerializer,
    ScoreSerializer,
    UnpricedListSerializer,
)
from thinkmeter.access import has_role, require_key_scope, scoped_projects, writable_project
from thinkmeter.auth import KeyPrincipal
from thinkmeter.models import Project, Role

UNPRICED_DEFAULT_DAYS = 30

PROJECT = OpenApiParameter(
    "project", OpenApiTypes.STR, description="project slug (people; a key implies its project)"
)
RATE_FIELDS = ("effective_to", "input", "cache_read", "cache_write", "output", "reasoning")


def read_projects(request: Request) -> list[Project]:
    """The projects a GET covers; keys need the read scope."""
    require_key_scope(request, "read")
    return scoped_projects(request)


def score_project(request: Request) -> Project:
    """The project a score goes to: a key with write or ingest scope, or an engineer's ?project=."""
    user = request.user
    if isinstance(user, KeyPrincipal) and not (user.key.has_scope("write") or user.key.has_scope("ingest")):
        raise PermissionDenied("posting scores needs an API key with the 'write' or 'ingest' scope")
    projects = scoped_projects(request)
    if isinstance(user, KeyPrincipal):
        return projects[0]
    if len(projects) != 1:
        raise PermissionDenied("name the project with ?project=<slug>")
    if not has_role(user, projects[0], Role.ENGINEER):
        raise PermissionDenied("posting scores needs the engineer role or above")
    return projects[0]


def _precedence(entry: ModelPrice) -> tuple[int, int, int]:
    """Matching order: a project's overrides, then the global catalog, each by position."""
    return (0 if entry.project_id is not None else 1, entry.position, entry.pk)  # type: ignore[attr-defined]


def _prices_for(model: str, entries: list[ModelPrice]) -> list[ModelPrice]:
    wanted = model.strip().lower()
    found = []
    for entry in entries:
        try:
            matches = re.search(entry.pattern, wanted, re.IGNORECASE) is not None
        except re.error:
            matches = False
        if matches or entry.model.lower() == wanted:
            found.append(entry)
    return found


class PricesView(APIView):
    """The price catalog as the caller's projects see it; per-project overrides."""

    @extend_schema(
        summary="List the price catalog (global entries and the project's overrides)",
        parameters=[
            PROJECT,
            OpenApiParameter("provider", OpenApiTypes.STR, description="only this provider (e.g. openai)"),
            OpenApiParameter("model", OpenApiTypes.STR,
                             description="only entries that price this model name (pattern match or same name), "
                                         "in matching order: for one project the first is the one ingest uses"),
        ],
        responses=CatalogPriceListSerializer,
    )
    def get(self, request: Request) -> Response:
        projects = read_projects(request)
        entries = ModelPrice.objects.filter(Q(project__isnull=True) | Q(project__in=projects))
        provider = request.query_params.get("provider", "").strip()
        if provider:
            entries = entries.filter(provider__iexact=provider)
        found = sorted(entries.select_related("project").prefetch_related("rates"), key=_precedence)
        model = request.query_params.get("model", "").strip()
        if model:
            found = _prices_for(model, found)
        return Response(CatalogPriceListSerializer({"results": found}).data)

    @extend_schema(
        summary="Create or replace a per-project price override",
        description="Overrides win over the global catalog for this project only. Posting a model name that "
                    "already has an override replaces it (its rates are matched by effective_from, so price ids "
                    "of unchanged periods stay). Stored spans keep their costs until `manage.py reprice`.",
        parameters=[PROJECT],
        request=CatalogPriceSerializer,
        responses={201: CatalogPriceSerializer, 200: CatalogPriceSerializer},
    )
    def post(self, request: Request) -> Response:
        project = writable_project(request)
        incoming = CatalogPriceSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        rates = data.pop("rates")
        with transaction.atomic():
            entry, created = ModelPrice.objects.update_or_create(project=project, model=data.pop("model"),
                                                                 defaults=data)
            kept = []
            for rate in rates:
                row, _ = PriceRate.objects.update_or_create(
                    model_price=entry, effective_from=rate["effective_from"],
                    defaults={name: rate.get(name) for name in RATE_FIELDS},
                )
                kept.append(row.pk)
            entry.rates.exclude(pk__in=kept).delete()  # type: ignore[attr-defined]
        entry = ModelPrice.objects.select_related("project").prefetch_related("rates").get(pk=entry.pk)
        return Response(CatalogPriceSerializer(entry).data, status=status.HTTP_201_CREATED if created else 200)


class PriceDetailView(APIView):
    @extend_schema(summary="Delete a per-project price override", parameters=[PROJECT], responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = writable_project(request)
        entry = ModelPrice.objects.filter(pk=pk, project=project).first()
        if entry is None:
            if ModelPrice.objects.filter(pk=pk, project__isnull=True).exists():
                raise PermissionDenied("global catalog entries are changed in the admin or by `manage.py "
                                       "update_prices`; post an override for your project instead")
            return Response({"detail": "no such price override in this project"}, status=404)
        entry.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def time_range(request: Request, default_days: int) -> tuple[datetime, datetime]:
    """``?from=&to=`` (dates or ISO-8601 times, UTC; a date as ``to`` includes that day)."""
    errors: dict[str, str] = {}
    end = datetime.now(UTC)
    text_to = request.query_params.get("to", "").strip()
    if text_to:
        try:
            end = parse_moment(text_to, end=True)
        except ValueError as exc:
            errors["to"] = str(exc)
    start = end - timedelta(days=default_days)
    text_from = request.query_params.get("from", "").strip()
    if text_from:
        try:
            start = parse_moment(text_from)
        except ValueError as exc:
            errors["from"] = str(exc)
    if not errors and start >= end:
        errors["from"] = f"must be before 'to' ({start.isoformat()} >= {end.isoformat()})"
    if errors:
        raise ValidationError(errors)
    return start, end


class UnpricedView(APIView):
    @extend_schema(
        summary="Models seen in spans with token usage but no price",
        description="Per project and model: spans, LLM calls and tokens without a price, first and last seen. "
                    "`price_now` names the catalog entry that matches now, if one was added since: run "
                    "`manage.py reprice` over the range to price those spans.",
        parameters=[
            PROJECT,
            OpenApiParameter("from", OpenApiTypes.STR, description="ISO-8601 date or time, UTC (default: 30 "
                                                                    "days before `to`)"),
            OpenApiParameter("to", OpenApiTypes.STR, description="ISO-8601 date (included) or time (excluded), "
                                                                  "UTC (default: now)"),
        ],
        responses=UnpricedListSerializer,
    )
    def get(self, request: Request) -> Response:
        projects = read_projects(request)
        start, end = time_range(request, UNPRICED_DEFAULT_DAYS)
        slugs = {p.pk: p.slug for p in projects}
        results = []
        for row in unpriced.unpriced_models(list(slugs), start, end):
            entry = catalog.match(row["project_id"], row["model"]) if row["model"] else None
            results.append({**row, "project": slugs[row["project_id"]], "price_now": entry.model if entry else None})
        return Response(UnpricedListSerializer({"from": start, "to": end, "results": results}).data)


class ScoresView(APIView):
    @extend_schema(
        summary="Record a score for a trace or one of its spans",
        description="A later score with the same trace, span and name replaces the earlier one. The trace does "
                    "not have to be stored yet (scores may arrive before the exporter's batch).",
        parameters=[PROJECT],
        request=ScoreInSerializer,
        responses={201: ScoreSerializer},
    )
    def post(self, request: Request) -> Response:
        project = score_project(request)
        incoming = ScoreInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        stored = scores.record(scores.Score(project_id=project.pk, **incoming.validated_data))
        body = {**asdict(stored), "project": project.slug}
        return Response(ScoreSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Read back a trace's scores (the latest per span and name)",
        parameters=[PROJECT, OpenApiParameter("trace_id", OpenApiTypes.STR, required=True,
                                              description="32 hex digits")],
        responses=ScoreListSerializer,
    )
    def get(self, request: Request) -> Response:
        projects = read_projects(request)
        trace_id = request.query_params.get("trace_id", "").strip().lower()
        if not HEX_TRACE.match(trace_id):
            raise ValidationError({"trace_id": "required: 32 hex digits (the OTLP trace id)"})
        slugs = {p.pk: p.slug for p in projects}
        rows = scores.latest_for_trace(list(slugs), trace_id)
        results = [{**row, "project": slugs[row["project_id"]]} for row in rows]
        return Response(ScoreListSerializer({"results": results}).data)


class ClassificationRulesView(APIView):
    @extend_schema(summary="List classification rules, in the order they are tried", parameters=[PROJECT],
                   responses=ClassificationRuleListSerializer)
    def get(self, request: Request) -> Response:
        projects = read_projects(request)
        rules = ClassificationRule.objects.filter(project__in=projects).select_related("project")
        ordered = rules.order_by("project__slug", "position", "id")
        return Response(ClassificationRuleListSerializer({"results": list(ordered)}).data)

    @extend_schema(summary="Add a classification rule", parameters=[PROJECT],
                   request=ClassificationRuleSerializer, responses={201: ClassificationRuleSerializer})
    def post(self, request: Request) -> Response:
        project = writable_project(request)
        incoming = ClassificationRuleSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(incoming.validated_data)
        if data.get("position") is None:
            last = ClassificationRule.objects.filter(project=project).aggregate(m=Max("position"))["m"]
            data["position"] = 0 if last is None else min(last + 10, MAX_POSITION)
        rule = ClassificationRule.objects.create(project=project, **data)
        return Response(ClassificationRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class ClassificationRuleDetailView(APIView):
    @extend_schema(summary="Delete a classification rule", parameters=[PROJECT], responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = writable_project(request)
        deleted, _ = ClassificationRule.objects.filter(pk=pk, project=project).delete()
        if not deleted:
            return Response({"detail": "no such rule in this project"}, status=404)
        return Response(status=status.HTTP_204_NO_CONTENT)

