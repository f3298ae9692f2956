"""``manage.py export_spans <dir> [--project SLUG ...]``: write span data to Parquet files.

One ``<dir>/<project>/<table>.parquet`` per project and table (``spans``, ``scores``)
and ``<dir>/manifest.json``; ``import_spans`` reads them on the target installation
(see :mod:`thinkmeter.transfer` and platform/README.md). Progress goes to stderr, one
summary line to stdout. In embedded mode stop the server first (chdb admits one process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from thinkmeter import transfer
from thinkmeter.models import Project


class Command(BaseCommand):
    help = "Export spans and scores to Parquet files (one per project and table) for import_spans."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, help="an empty or new directory")
        parser.add_argument("--project", action="append", default=[], help="project slug (repeatable; default: all)")
        parser.add_argument("--chunk-rows", type=int, default=transfer.CHUNK_ROWS, help="rows read per query")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs: list[str] = options["project"]
        projects = Project.objects.select_related("organization").order_by("slug")
        if slugs:
            projects = projects.filter(slug__in=slugs)
            missing = set(slugs) - {p.slug for p in projects}
            if missing:
                raise CommandError(f"no such projects: {', '.join(sorted(missing))}")
        if options["chunk_rows"] < 1:
            raise CommandError("--chunk-rows must be at least 1")
        try:
            manifest = transfer.export(options["directory"], list(projects), chunk_rows=options["chunk_rows"],
                                       progress=self.stderr.write)
        except transfer.TransferError as exc:
            raise CommandError(str(exc)) from None
        rows = {t: sum(e["tables"].get(t, {}).get("rows", 0) for e in manifest["projects"]) for t in transfer.TABLES}
        self.stdout.write(
            f"exported {len(manifest['projects'])} projects to {options['directory']}: "
            + ", ".join(f"{n:,} {t}" for t, n in rows.items())
        )
