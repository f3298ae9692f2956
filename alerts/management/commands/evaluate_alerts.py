"""``manage.py evaluate_alerts [--project <slug>]``: run the alert engine's periodic work once.

Evaluates the quota, budget and spike rules, sweeps the runaway rules over spans
ingested since the last sweep, and runs maintenance (grouped messages, reminders,
stuck deliveries); prints one JSON object with what it did. Useful from cron when
neither Celery beat nor ``manage.py serve`` runs the schedule, and for debugging rules.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts import services
from alerts.models import AlertRule
from thinkmeter.models import Project


class Command(BaseCommand):
    help = "Evaluate alert rules, sweep for runaway spans and run delivery maintenance once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="only this project's rules (slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        now = services.now_utc()
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"no project {options['project']!r}")
            evaluated = failed = 0
            for rule in AlertRule.objects.filter(project=project, enabled=True).exclude(kind=AlertRule.Kind.RUNAWAY):
                try:
                    services.evaluate_rule(rule, now)
                    evaluated += 1
                except Exception as exc:
                    failed += 1
                    self.stderr.write(f"rule {rule.pk} ({rule.name}): {exc}")
            result: dict[str, Any] = {"evaluated": evaluated, "failed": failed,
                                      "runaway_findings": services.sweep_project(project, now)}
        else:
            result = {**services.evaluate_all(now), "runaway_findings": services.sweep_all(now)}
        result["maintenance"] = services.maintenance(now)
        self.stdout.write(json.dumps(result))
