"""REST API of the simulator: ``POST /api/v1/simulations`` runs a policy as a job; ``GET`` reads runs.

- ``POST /api/v1/simulations`` with ``{"policy": <object, or JSON/YAML text>, "from": ISO, "to": ISO,
  "sweep": "threshold:0..1:20", "name": "..."}`` validates the policy (400 with every problem and
  where it is), saves the run and queues it (Celery; the in-process worker in embedded
  mode), answering 202 with the run. Keys need the ``write`` scope (their own project);
  people need the engineer role and name the project with ``?project=<slug>`` (or
  ``"project"`` in the body).
- ``GET /api/v1/simulations`` lists the runs of the projects the caller may read (newest
  first, without results); ``GET /api/v1/simulations/<id>`` gives one run with its
  progress and, when done, its result (the same JSON ``manage.py simulate`` prints).

Runs outside the caller's projects answer 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from simulator import services
from simulator.engine.policies import PolicyError
from simulator.models import SimulationRun
from thinkmeter.access import has_role, readable_projects, require_key_scope, scoped_projects
from thinkmeter.auth import KeyPrincipal
from thinkmeter.models import Project, Role

PROJECT = OpenApiParameter("project", OpenApiTypes.STR, description="project slug (people; a key implies its project)")


class RunSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = SimulationRun
        fields = ["id", "url", "project", "name", "source", "status", "progress", "message", "policy", "sweep",
                  "window_from", "window_to", "error", "created_at", "started_at", "finished_at"]

    def get_url(self, run: SimulationRun) -> str:
        return f"/api/v1/simulations/{run.pk}"


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "result"]


class RunListSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)


class CreateSerializer(serializers.Serializer):
    policy = serializers.JSONField(help_text="The policy: an object, or JSON/YAML text.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    sweep = serializers.CharField(required=False, allow_blank=True, max_length=200, default="",
                                  help_text="PARAM:LOW..HIGH:POINTS, e.g. threshold:0..1:20")
    project = serializers.CharField(required=False, allow_blank=True, default="")
    from_ = serializers.CharField(required=False, allow_blank=True, default="", help_text="ISO-8601 date or time")
    to = serializers.CharField(required=False, allow_blank=True, default="", help_text="ISO-8601 date or time")

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def _target_project(request: Request, body_slug: str) -> Project:
    """The project a new run is for: the key's (write scope), or the one a person names (engineer role)."""
    require_key_scope(request, "write")
    user = request.user
    if isinstance(user, KeyPrincipal):
        if body_slug and body_slug != user.key.project.slug:
            raise PermissionDenied("this key belongs to another project")
        return user.key.project
    projects = scoped_projects(request, slug=body_slug or None)
    if len(projects) != 1:
        raise PermissionDenied("name the project with ?project=<slug>")
    if not has_role(user, projects[0], Role.ENGINEER):
        raise PermissionDenied("running simulations needs the engineer role")
    return projects[0]


class SimulationListView(APIView):
    @extend_schema(summary="List simulation runs", parameters=[PROJECT], responses=RunListSerializer,
                   operation_id="simulations_list")
    def get(self, request: Request) -> Response:
        require_key_scope(request, "read")
        projects = scoped_projects(request)
        runs = SimulationRun.objects.filter(project__in=projects).select_related("project").defer("result")[:100]
        return Response({"runs": RunSerializer(runs, many=True).data})

    @extend_schema(summary="Run a routing policy over the stored traffic", parameters=[PROJECT],
                   request=CreateSerializer, responses={202: RunSerializer})
    def post(self, request: Request) -> Response:
        body = CreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = _target_project(request, data.get("project", ""))
        try:
            start = services.parse_moment(data.get("from"))
            end = services.parse_moment(data.get("to"), end=True)
        except ValueError as exc:
            raise ValidationError({"window": [str(exc)]}) from exc
        try:
            run = services.create_run(project, data["policy"], source=SimulationRun.Source.API, user=request.user,
                                      start=start, end=end, sweep=data.get("sweep") or None, name=data.get("name", ""))
        except PolicyError as exc:
            field = "sweep" if all(e.startswith("sweep") for e in exc.errors) else "policy"
            raise ValidationError({field: exc.errors}) from exc
        except ValueError as exc:
            raise ValidationError({"window": [str(exc)]}) from exc
        services.enqueue(run)
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": f"/api/v1/simulations/{run.pk}"})


class SimulationDetailView(APIView):
    @extend_schema(summary="Read a simulation run (its result when done)", responses=RunDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        require_key_scope(request, "read")
        run = SimulationRun.objects.select_related("project").filter(
            pk=pk, project__in=readable_projects(request.user)).first()
        if run is None:
            raise NotFound("no such simulation")
        return Response(RunDetailSerializer(run).data)
