"""The simulator page: write or pick a policy (or a sweep), run it, see the curve and the comparison.

- ``/simulator/``: the form (project, policy as JSON or YAML with examples to start from,
  window, optional sweep) and the saved runs of the projects the person may read.
  Running needs the engineer role in the project, as the API does.
- ``/simulator/runs/<id>/``: one run — progress while it runs (the page refreshes
  itself), then the cost–quality chart (Plotly, with the sweep's Pareto frontier), the
  comparison against what actually happened, the warnings and the support diagnostics.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dashboards.views import PLOTLY_URL, chart
from simulator import figures, services
from simulator.engine.policies import PolicyError
from simulator.models import SimulationRun
from thinkmeter.access import has_role, readable_projects
from thinkmeter.models import Role

EXAMPLES: dict[str, str] = {
    "Cheapest: tier 1, no thinking": '{"kind": "static", "tier": 1, "thinking_budget": 0}',
    "Thinking only for code": """kind: task_map
routes:
  code_generation: {tier: 3, thinking_budget: 10000}
  math_reasoning: {tier: 3, thinking_budget: 10000}
default: {tier: 1, thinking_budget: 0}""",
    "Keyword / complexity router": """kind: classifier
rules:
  - when: {task_type: [code_generation, math_reasoning]}
    complexity: high
  - when: {keywords: [prove, "step by step", refactor]}
    complexity: high
  - when: {prompt_tokens: {gte: 4000}}
    complexity: medium
default: low
routes:
  low: {tier: 1, thinking_budget: 0}
  medium: {tier: 2, thinking_budget: 4000}
  high: {tier: 3, thinking_budget: 10000}""",
    "Cascade: cheap first, escalate on low quality": """kind: cascade
steps:
  - {tier: 1, thinking_budget: 0}
  - {tier: 3, thinking_budget: 10000}
accept: {min_quality: 0.6}""",
    "Threshold router (30% strong)": """kind: threshold
score: difficulty
calibrate: {strong_share: 0.3}
strong: {tier: 3, thinking_budget: 10000}
weak: {tier: 1, thinking_budget: 0}""",
    "Daily thinking quota per user": """kind: quota
per: user
daily_reasoning_tokens: 200000
policy: {kind: static, tier: 3, thinking_budget: 10000}
downgrade: {tier: 1, thinking_budget: 0}""",
    "Oracle (best possible per request)": '{"kind": "oracle"}',
    "Random baseline": """kind: random
choices:
  - {tier: 1, thinking_budget: 0, weight: 2}
  - {tier: 3, thinking_budget: 10000, weight: 1}
seed: 0""",
}
DEFAULT_EXAMPLE = "Thinking only for code"


def _runnable(request: HttpRequest) -> list[Any]:
    return [p for p in readable_projects(request.user) if has_role(request.user, p, Role.ENGINEER)]


@login_required
def simulator_page(request: HttpRequest) -> HttpResponse:
    readable = readable_projects(request.user)
    runnable = _runnable(request)
    form: dict[str, str] = {"policy": EXAMPLES[DEFAULT_EXAMPLE], "project": request.GET.get("project", ""),
                            "from": "", "to": "", "sweep": "", "name": ""}
    errors: list[str] = []
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() if key != "policy" else request.POST.get(key, "")
                for key in form}
        project = next((p for p in runnable if p.slug == form["project"]), None)
        if project is None:
            errors.append("Pick a project in which you have the engineer role.")
        else:
            try:
                start = services.parse_moment(form["from"])
                end = services.parse_moment(form["to"], end=True)
                run = services.create_run(project, form["policy"], source=SimulationRun.Source.PAGE,
                                          user=request.user, start=start, end=end, sweep=form["sweep"] or None,
                                          name=form["name"])
            except PolicyError as exc:
                errors.extend(exc.errors)
            except ValueError as exc:
                errors.append(str(exc))
            else:
                services.enqueue(run)
                return redirect("simulator-run", pk=run.pk)
    runs = SimulationRun.objects.filter(project__in=readable).select_related("project", "created_by") \
        .defer("result")[:50]
    return render(request, "simulator/index.html", {
        "nav": "simulator", "form": form, "errors": errors, "runnable": runnable, "runs": runs,
        "examples": EXAMPLES, "status": 400 if errors else 200,
    }, status=400 if errors else 200)


def _comparison(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, key, kind in (
        ("Total cost", "cost_usd", "usd"), ("Cost per request", "cost_per_request_usd", "usd"),
        ("Quality", "quality", "quality"), ("Latency p50", "latency_p50_ms", "ms"),
        ("Latency p95", "latency_p95_ms", "ms"),
    ):
        simulated, actual = result.get(key), result.get("actual_" + key)
        change = None
        if simulated is not None and actual:
            change = 100.0 * (simulated - actual) / actual
        rows.append({"label": label, "kind": kind, "simulated": simulated, "actual": actual, "change": change})
    parts_sim = result.get("cost_by_token_type_usd") or {}
    parts_act = result.get("actual_cost_by_token_type_usd") or {}
    for part in ("input", "cache_read", "cache_write", "output", "reasoning"):
        simulated, actual = parts_sim.get(part), parts_act.get(part)
        change = 100.0 * (simulated - actual) / actual if simulated is not None and actual else None
        rows.append({"label": f"· {part.replace('_', ' ')} tokens", "kind": "usd", "simulated": simulated,
                     "actual": actual, "change": change})
    return rows


@login_required
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    run = SimulationRun.objects.select_related("project", "created_by").filter(
        pk=pk, project__in=readable_projects(request.user)).first()
    if run is None:
        raise Http404("no such simulation")
    result = run.result or {}
    context: dict[str, Any] = {"nav": "simulator", "run": run, "result": result, "charts": [],
                               "plotly_url": PLOTLY_URL}
    if run.status == SimulationRun.Status.DONE and result:
        context["charts"] = [chart("cost-quality", figures.cost_quality_figure(result))]
        context["comparison"] = _comparison(result)
        savings = result.get("savings_pct")
        if savings is not None:
            context["savings_label"] = (f"the policy saves {savings:.1f}%" if savings >= 0
                                        else f"the policy costs {-savings:.1f}% more")
        tiers = sorted(set(result.get("share_by_tier", {})) | set(result.get("actual_share_by_tier", {})))
        context["tier_rows"] = [{"tier": t, "simulated": result.get("share_by_tier", {}).get(t),
                                 "actual": result.get("actual_share_by_tier", {}).get(t)} for t in tiers]
        sweep = result.get("sweep")
        if sweep:
            frontier = set(sweep.get("pareto", []))
            context["sweep_rows"] = [{**p, "pareto": i in frontier} for i, p in enumerate(sweep["points"])]
    return render(request, "simulator/run.html", context)
