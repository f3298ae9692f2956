"""``manage.py bootstrap``: on a fresh install, create an admin user and a demo project.

Prints the credentials and key once; does nothing when they already exist.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from thinkmeter.models import ApiKey, Membership, Organization, Project, Role


class Command(BaseCommand):
    help = "Create an admin user and a demo project if none exist, printing their credentials once."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@localhost", password)
            self.stdout.write(self.style.SUCCESS(f"Admin user created: admin / {password}  (shown once)"))
        if not Project.objects.exists():
            org, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo organization"})
            project = Project.objects.create(organization=org, slug="demo", name="Demo project")
            for admin in user_model.objects.filter(is_superuser=True):
                Membership.objects.get_or_create(user=admin, organization=org, defaults={"role": Role.ADMIN})
            _, secret = ApiKey.issue(project, name="demo key")
            self.stdout.write(self.style.SUCCESS(f"Demo project 'demo' created; API key (shown once): {secret}"))
