"""Fault injection: storage, ClickHouse server, Redis, Celery workers and webhook receivers failing."""
