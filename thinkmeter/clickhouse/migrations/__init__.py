"""Numbered ClickHouse schema migrations, applied in order by :mod:`thinkmeter.clickhouse.schema`.

Each module ``NNNN_name.py`` defines ``statements(ctx) -> list[str]``; ``ctx`` is a
:class:`thinkmeter.clickhouse.schema.SchemaContext` (retention days, cluster name).
Statements must be idempotent (``IF NOT EXISTS``) so a half-applied migration can rerun.
"""
