"""Running simulations: read the project's traffic, price its tiers, replay a policy, save the run.

:func:`run_simulation` is the whole job for one project and policy (used by
``manage.py simulate`` and by the ``simulator.run`` task); :func:`create_run` validates
a request and saves it queued; :func:`execute_run` runs a saved run, recording its
progress, its result or its error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.db import OperationalError
from django.utils import timezone

from simulator import loader
from simulator.engine.policies import (
    Policy,
    PolicyError,
    Sweep,
    attributes_of,
    keyword_sets_of,
    load_text,
    parse_policy,
    parse_sweep,
    with_value,
)
from simulator.engine.requests import build_requests
from simulator.engine.run import simulate
from simulator.models import SimulationRun
from simulator.prices import tier_prices
from thinkmeter.models import Project

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def parse_moment(value: str | None, *, end: bool = False) -> datetime | None:
    """An ISO-8601 date or date-time as UTC; a bare date as ``end`` means the whole day (up to the next midnight)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, dtime.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def read_policy(policy: Any) -> tuple[Any, str, Policy]:
    """Policy input (JSON/YAML text or already-parsed data) → (plain data, text, validated policy)."""
    if isinstance(policy, str):
        data = load_text(policy)
        text = policy
    else:
        data = policy
        import json

        text = json.dumps(policy, indent=2)
    return data, text, parse_policy(data)


def read_sweep(text: str | None, data: Any) -> Sweep | None:
    if not text or not str(text).strip():
        return None
    sweep = parse_sweep(str(text))
    for value in sweep.values():
        parse_policy(with_value(data, sweep, value))
    return sweep


def run_simulation(project: Project, policy_data: Any, *, start: datetime | None = None, end: datetime | None = None,
                   sweep: Sweep | None = None, min_samples: int = 10, seed: int = 0,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Load the project's calls in [start, end) (all stored data when not given) and replay the policy."""
    report = progress or (lambda fraction, message: None)
    if start is not None and end is not None and end <= start:
        raise ValueError("the window ends before it starts: --to must be after --from")
    policy = parse_policy(policy_data)
    report(0.01, "finding the data")
    window = loader.data_window(project.pk, start, end)
    notes: list[str] = []
    if window is None:
        window = loader.Window(start or timezone.now(), end or timezone.now())
        spans, scores = loader._to_frame([]), None
        used: dict[int, list[tuple[str, int]]] = {}
    else:
        spans, scores = loader.load_spans(
            project.pk, window, attributes=attributes_of(policy), keyword_sets=keyword_sets_of(policy),
            progress=lambda f, m: report(0.02 + 0.38 * f, m))
        used = loader.tier_models(project.pk, window)
    if keyword_sets_of(policy) and not project.store_prompts:
        notes.append(f"project {project.slug} does not store prompt text: keyword rules never match "
                     "(turn on store_prompts to route on keywords)")
    report(0.4, f"building the request table from {len(spans):,} calls")
    table = build_requests(spans, scores if scores is not None and len(scores) else None)
    last_day = (window.end - timedelta(microseconds=1)).date()
    prices, price_notes = tier_prices(project.pk, project.tier_models, used, last_day)
    result = simulate(table, prices, policy_data, sweep=sweep, min_samples=min_samples, seed=seed,
                      progress=lambda f, m: report(0.45 + 0.55 * f, m))
    result["warnings"] = price_notes + notes + result["warnings"]
    result["project"] = project.slug
    result["window"] = {"from": _iso(window.start), "to": _iso(window.end)}
    result["tier_models"] = {str(t): (p.model if p else None) for t, p in prices.items()}
    result["tier_models_source"] = {
        str(t): ("project" if str(t) in {str(k) for k in (project.tier_models or {})} else "most used")
        for t in prices
    }
    return result


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def create_run(project: Project, policy: Any, *, source: str, user: Any = None, start: datetime | None = None,
               end: datetime | None = None, sweep: str | None = None, name: str = "") -> SimulationRun:
    """Validate and save a queued run (raises :class:`PolicyError` or ValueError for bad input)."""
    data, text, _ = read_policy(policy)
    read_sweep(sweep, data)
    if start is not None and end is not None and end <= start:
        raise ValueError("the window ends before it starts: 'to' must be after 'from'")
    return SimulationRun.objects.create(
        project=project, created_by=user if getattr(user, "pk", None) else None, source=source, name=name[:200],
        policy=data, policy_text=text, window_from=start, window_to=end, sweep=sweep or "",
    )


def _update(run_id: int, *, attempts: int = 5, **fields: Any) -> None:
    """Update a run's row, retrying briefly when SQLite (embedded mode) is busy with another writer."""
    for attempt in range(attempts):
        try:
            SimulationRun.objects.filter(pk=run_id).update(**fields)
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


class _Recorder:
    """Writes a run's progress to the database at most twice a second (best effort)."""

    def __init__(self, run: SimulationRun) -> None:
        self.run = run
        self.written = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.written < 0.5 and fraction < 1.0:
            return
        self.written = now
        try:
            _update(self.run.pk, attempts=1, progress=round(min(max(fraction, 0.0), 1.0), 4), message=message[:300])
        except OperationalError:
            log.info("simulation %s: progress not recorded (database busy)", self.run.pk)


def execute_run(run_id: int) -> str:
    """Run a saved simulation; returns its final status."""
    run = SimulationRun.objects.select_related("project").get(pk=run_id)
    if run.finished:
        return run.status
    _update(run.pk, status=SimulationRun.Status.RUNNING, started_at=timezone.now(), progress=0.0, message="starting")
    try:
        sweep = read_sweep(run.sweep, run.policy)
        result = run_simulation(run.project, run.policy, start=run.window_from, end=run.window_to, sweep=sweep,
                                progress=_Recorder(run))
    except (PolicyError, ValueError) as exc:
        _fail(run, str(exc))
        return SimulationRun.Status.FAILED
    except Exception as exc:  # recorded on the run for whoever polls it
        log.exception("simulation %s failed", run.pk)
        _fail(run, f"{type(exc).__name__}: {exc}")
        return SimulationRun.Status.FAILED
    _update(run.pk, status=SimulationRun.Status.DONE, progress=1.0, message="done", result=result,
            finished_at=timezone.now())
    return SimulationRun.Status.DONE


def _fail(run: SimulationRun, error: str) -> None:
    _update(run.pk, status=SimulationRun.Status.FAILED, error=error[:5000], message="failed",
            finished_at=timezone.now())


def enqueue(run: SimulationRun) -> Any:
    """Queue the run on the Celery app (the in-process worker in embedded mode)."""
    from simulator.tasks import run_simulation_task

    return run_simulation_task.delay(run.pk)
