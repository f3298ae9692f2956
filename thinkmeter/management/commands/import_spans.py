"""``manage.py import_spans <dir> [--project SLUG ...] [--table spans|scores ...]``: load an export.

Reads what ``export_spans`` wrote and inserts it through the ClickHouse client's insert
path into the projects with the same slugs (created when missing). Running it twice
stores nothing twice (see :mod:`thinkmeter.transfer`). Run ``manage.py migrate`` on the
target first. Progress goes to stderr, one summary line to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from thinkmeter import transfer


class Command(BaseCommand):
    help = "Import spans and scores written by export_spans (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path, help="a directory written by export_spans")
        parser.add_argument("--project", action="append", default=[], help="project slug (repeatable; default: all)")
        parser.add_argument("--table", action="append", default=[], choices=sorted(transfer.TABLES),
                            help="table to import (repeatable; default: all)")
        parser.add_argument("--batch-rows", type=int, default=50_000, help="rows per insert")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_rows"] < 1:
            raise CommandError("--batch-rows must be at least 1")
        try:
            result = transfer.import_(options["directory"], slugs=options["project"] or None,
                                      tables=options["table"] or None, batch_rows=options["batch_rows"],
                                      progress=self.stderr.write)
        except transfer.TransferError as exc:
            raise CommandError(str(exc)) from None
        parts = []
        for slug, counts in result.items():
            tables = ", ".join(f"{n:,} {t}" for t, n in counts.items() if not t.endswith("_again"))
            again = counts.get("spans_again", 0)
            parts.append(f"{slug}: {tables}" + (f" ({again:,} spans were already stored)" if again else ""))
        self.stdout.write("imported " + ("; ".join(parts) if parts else "nothing"))
