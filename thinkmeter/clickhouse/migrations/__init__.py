"""Numbered ClickHouse schema migrations, applied in order by :mod:`thinkmeter.clickhouse.schema`.

Each module ``NNNN_name.py`` defines ``statements(ctx) -> list[str]``; ``ctx`` is a
:class:`thinkmeter.clickhouse.ddl.SchemaContext` (retention days, cluster name,
database). Migrations build their statements with its helpers — ``ctx.create_table``,
``ctx.create_materialized_view``, ``ctx.add_column``, ``ctx.alter_table`` — so the same
migration renders plain tables for one server and replicated local tables with
Distributed tables and ``ON CLUSTER`` for a cluster. Statements must be idempotent
(``IF NOT EXISTS``) so a half-applied migration can rerun.
"""
