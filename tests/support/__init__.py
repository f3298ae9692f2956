"""Helpers shared by several test packages (processes the tests start: Redis, Celery workers)."""
