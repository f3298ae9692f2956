"""``manage.py reprice --project P --from YYYY-MM-DD --to YYYY-MM-DD``: recompute stored costs.

Run it after a price change: every span with usage in the range (whole UTC days, both
dates included) is priced again with the current catalog, and the rollups of those days
are rebuilt. Idempotent. A progress bar goes to stderr; a summary to stdout.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from ingest import reprice
from thinkmeter.clickhouse import ClickHouseError
from thinkmeter.models import Project

BAR_WIDTH = 30


class ProgressBar:
    """A one-line bar redrawn in place on a terminal; one line per step otherwise (logs, pipes)."""

    def __init__(self, stream: OutputWrapper) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        line = f"reprice [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} {label}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if done >= total else ""), ending="")
        else:
            self.stream.write(line)
        self.stream.flush()


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r}: expected a date as YYYY-MM-DD") from None


class Command(BaseCommand):
    help = "Recompute span costs of a project for a range of days with the current price catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--from", dest="day_from", required=True, help="first day (YYYY-MM-DD, UTC)")
        parser.add_argument("--to", dest="day_to", required=True, help="last day, included (YYYY-MM-DD, UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        if settings.CLICKHOUSE_CLUSTER:
            raise CommandError("reprice does not support cluster mode yet (CLICKHOUSE_CLUSTER is set): its "
                               "mutations would have to target spans_local ON CLUSTER; see platform/README.md")
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        first = _day(options["day_from"], "--from")
        last = _day(options["day_to"], "--to")
        if last < first:
            raise CommandError(f"--to {last} is before --from {first}")
        end = last + timedelta(days=1)
        self.stderr.style_func = None  # progress is not an error: no red
        self.stderr.write(f"repricing {project.slug} from {first}T00:00Z to {end}T00:00Z (exclusive)")
        try:
            result = reprice.reprice(project.pk, first, end, progress=ProgressBar(self.stderr))
        except ClickHouseError as exc:
            raise CommandError(f"ClickHouse failed: {exc}") from exc
        assert result.before is not None and result.after is not None
        self.stdout.write(
            f"{project.slug} {first}..{last}: {len(result.groups)} price groups, {result.spans} spans repriced; "
            f"calls {result.after.requests}, unpriced {result.before.unpriced} -> {result.after.unpriced}, "
            f"cost_total {result.before.cost_total} -> {result.after.cost_total} USD"
        )
