"""``manage.py simulate``: replay a project's stored traffic under a routing policy.

    manage.py simulate --project P --policy FILE [--from 2026-01-01] [--to 2026-01-31]
                       [--sweep threshold:0..1:20] [--min-samples 10] [--seed 0] [--no-save]

Prints exactly one JSON object on stdout (progress goes to stderr) with at least
``requests, cost_usd, actual_cost_usd, quality, actual_quality, latency_p50_ms,
latency_p95_ms, share_by_tier, support, ci95 {cost_usd, quality}, warnings``. ``--policy``
is a JSON or YAML file (``-`` reads stdin). Without dates it covers all stored data; a
bare ``--to`` date includes that whole day. The run is saved (it shows on /simulator/)
unless ``--no-save``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from simulator import services
from simulator.engine.policies import PolicyError
from simulator.models import SimulationRun
from thinkmeter.clickhouse import ClickHouseError
from thinkmeter.models import Project


class Command(BaseCommand):
    help = "Replay a project's stored traffic under a routing policy; print one JSON object."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--policy", required=True, help="policy file, JSON or YAML ('-' for stdin)")
        parser.add_argument("--from", dest="start", default=None, help="ISO-8601 date or time (default: all data)")
        parser.add_argument("--to", dest="end", default=None, help="ISO-8601 date (inclusive) or time (exclusive)")
        parser.add_argument("--sweep", default=None, help="PARAM:LOW..HIGH:POINTS, e.g. threshold:0..1:20")
        parser.add_argument("--min-samples", type=int, default=10,
                            help="observations a task type needs at a configuration to estimate it (default 10)")
        parser.add_argument("--seed", type=int, default=0, help="random seed of the estimates and intervals")
        parser.add_argument("--no-save", action="store_true", help="do not save the run")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r} (see manage.py create_project)")
        if options["min_samples"] < 1:
            raise CommandError("--min-samples must be at least 1")
        text = self._read(options["policy"])
        try:
            data, _, _ = services.read_policy(text)
            sweep = services.read_sweep(options["sweep"], data)
            start = services.parse_moment(options["start"])
            end = services.parse_moment(options["end"], end=True)
        except PolicyError as exc:
            raise CommandError("invalid policy:\n  " + "\n  ".join(exc.errors)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        live = self.stderr.isatty()
        shown = {"step": -1}

        def progress(fraction: float, message: str) -> None:
            step = int(fraction * 20)
            if live:
                self.stderr.write(f"\rsimulate {100 * fraction:5.1f}%  {message[:70]:<70}", ending="")
            elif step != shown["step"]:
                shown["step"] = step
                self.stderr.write(f"simulate {100 * fraction:5.1f}%  {message}")
            self.stderr.flush()

        started = timezone.now()
        try:
            result = services.run_simulation(project, data, start=start, end=end, sweep=sweep,
                                             min_samples=options["min_samples"], seed=options["seed"],
                                             progress=progress)
        except PolicyError as exc:
            raise CommandError("invalid policy:\n  " + "\n  ".join(exc.errors)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except ClickHouseError as exc:
            raise CommandError(f"could not read the project's traffic: {exc}") from exc
        if live:
            self.stderr.write("")
        if not options["no_save"]:
            run = SimulationRun.objects.create(
                project=project, source=SimulationRun.Source.CLI, policy=data, policy_text=text,
                window_from=start, window_to=end, sweep=options["sweep"] or "", status=SimulationRun.Status.DONE,
                progress=1.0, message="done", result=result, started_at=started, finished_at=timezone.now(),
            )
            result = {**result, "run_id": run.pk}
        self.stdout.write(json.dumps(result, separators=(",", ":"), allow_nan=False))

    def _read(self, path: str) -> str:
        if path == "-":
            return sys.stdin.read()
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"--policy: no file {path!r}")
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--policy: cannot read {path!r}: {exc}") from exc
