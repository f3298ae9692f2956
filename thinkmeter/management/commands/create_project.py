"""``manage.py create_project <slug> [--org <slug>]``: create what is missing and print a new key.

The key (scopes ingest, read and write) is the last line of stdout. Never opens ClickHouse.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from thinkmeter.models import ApiKey, Organization, Project


class Command(BaseCommand):
    help = "Create an organization and project if missing, and print a new API key as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="project slug")
        parser.add_argument("--org", default=None, help="organization slug (default: the project slug)")
        parser.add_argument("--name", default=None, help="display name")
        parser.add_argument("--key-name", default="created by create_project")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["slug"]
        org_slug: str = options["org"] or slug
        org, org_created = Organization.objects.get_or_create(slug=org_slug, defaults={"name": org_slug})
        project, created = Project.objects.get_or_create(
            slug=slug, defaults={"organization": org, "name": options["name"] or slug}
        )
        if not created and project.organization_id != org.pk and options["org"]:
            self.stderr.write(f"project {slug} already belongs to organization {project.organization.slug}")
        _, secret = ApiKey.issue(project, name=options["key_name"])
        self.stderr.write(
            f"organization {org.slug}: {'created' if org_created else 'exists'}; "
            f"project {project.slug}: {'created' if created else 'exists'}; new key (ingest, read, write):"
        )
        self.stdout.write(secret)
