"""``manage.py migrate``: Django's migrations, then the ClickHouse schema migrations.

In embedded mode, when the store's ``schema_version`` marker shows ClickHouse is up to
date, chdb is not opened at all, so ``migrate`` can run beside a live embedded server.
``--skip-clickhouse`` leaves ClickHouse alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.migrate import Command as DjangoMigrate

from thinkmeter.clickhouse import client, schema


class Command(DjangoMigrate):
    help = "Apply Django migrations, then ClickHouse schema migrations."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--skip-clickhouse", action="store_true", help="do not touch ClickHouse")

    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if options.get("skip_clickhouse") or options.get("app_label") or options.get("plan"):
            return
        if options.get("database", "default") != "default":
            return
        cfg = client.config()
        if schema.up_to_date_without_opening(cfg):
            if options["verbosity"] >= 1:
                self.stdout.write("ClickHouse schema is up to date.")
            return
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.MIGRATE_HEADING(f"ClickHouse migrations ({cfg.describe()}):"))
        log = self.stdout.write if options["verbosity"] >= 1 else (lambda _: None)
        applied = schema.migrate(schema.context_from_settings(), log=log)
        if options["verbosity"] >= 1 and not applied:
            self.stdout.write("  No ClickHouse migrations to apply.")
