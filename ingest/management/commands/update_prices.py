"""``manage.py update_prices [--file catalog.json]``: load or refresh the price catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest import catalog_loader
from ingest.catalog import invalidate


class Command(BaseCommand):
    help = "Load the shipped price catalog (or another file in the same format); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=catalog_loader.DEFAULT_CATALOG)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            data = catalog_loader.read(options["file"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        models, rates = catalog_loader.load(data)
        invalidate()
        self.stdout.write(f"price catalog {data.get('version', '?')}: {models} models, {rates} rates loaded")
