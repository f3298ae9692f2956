"""Render schema DDL for one ClickHouse server or for a cluster (``CLICKHOUSE_CLUSTER``).

Migrations describe tables, views and changes through a :class:`SchemaContext`
(``ctx.create_table(...)``, ``ctx.create_materialized_view(...)``, ``ctx.add_column(...)``)
and return the statements it renders; they never write engine clauses or ``ON CLUSTER``
themselves. With no cluster the statements are the plain single-node DDL. With a
cluster named ``c`` each table ``t`` becomes:

- ``t_local`` on every node, ``ON CLUSTER 'c'``, with the Replicated variant of its
  engine: ``ReplacingMergeTree(counted)`` →
  ``ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}', counted)``
  (``{shard}`` and ``{replica}`` are the server's macros, ``{database}`` is expanded by the
  server itself);
- ``t``, a ``Distributed('c', <database>, 't_local', <shard key>)`` table with the same
  columns, which every query and insert keeps using under the plain name.

Materialized views read the local source table and write the local target table, so a
row inserted on a shard is rolled up on that shard (and replicated with it). Column
changes go to both the local and the Distributed table. :meth:`SchemaContext.create_global_table`
is for small tables whose every row must be on every node (the migrations record).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# MergeTree engines the schema may use; the Replicated variant of each is "Replicated" + name.
ENGINES = frozenset(
    {
        "MergeTree",
        "ReplacingMergeTree",
        "AggregatingMergeTree",
        "SummingMergeTree",
        "CollapsingMergeTree",
        "VersionedCollapsingMergeTree",
    }
)
ZOOKEEPER_PATH = "/clickhouse/tables/{shard}/{database}/"
GLOBAL_ZOOKEEPER_PATH = "/clickhouse/tables/all/{database}/"  # one replica set spanning every node
LOCAL_SUFFIX = "_local"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CLUSTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def split_engine(engine: str) -> tuple[str, str]:
    """``"ReplacingMergeTree(counted)"`` → ``("ReplacingMergeTree", "counted")``; checks the family."""
    family, paren, rest = engine.strip().partition("(")
    family = family.strip()
    if family not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {sorted(ENGINES)}")
    if paren and not rest.endswith(")"):
        raise ValueError(f"engine {engine!r} has unbalanced parentheses")
    return family, rest[:-1].strip() if paren else ""


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain table name")
    return name


@dataclass(frozen=True)
class SchemaContext:
    """What migrations render for: retention, and the cluster (empty: one server or chdb)."""

    retention_days: int
    cluster: str = ""
    database: str = "default"

    def __post_init__(self) -> None:
        if self.cluster and not CLUSTER_NAME.fullmatch(self.cluster):
            raise ValueError(f"CLICKHOUSE_CLUSTER {self.cluster!r} is not a valid cluster name")
        if not NAME.fullmatch(self.database):
            raise ValueError(f"database {self.database!r} is not a plain name")

    # -- names and clauses ---------------------------------------------------------------

    @property
    def clustered(self) -> bool:
        return bool(self.cluster)

    @property
    def on_cluster(self) -> str:
        """`` ON CLUSTER 'c'`` in cluster mode, else empty."""
        return f" ON CLUSTER '{self.cluster}'" if self.cluster else ""

    def local(self, table: str) -> str:
        """The table that holds ``table``'s rows on a node: ``table_local`` in cluster mode."""
        return _name(table) + LOCAL_SUFFIX if self.cluster else _name(table)

    def engine(self, engine: str, table: str, zookeeper_path: str = ZOOKEEPER_PATH) -> str:
        """The engine clause for ``table`` (already the local name): Replicated in cluster mode."""
        family, args = split_engine(engine)
        if not self.cluster:
            return f"{family}({args})" if args else family
        replicated = [f"'{zookeeper_path}{_name(table)}'", "'{replica}'"] + ([args] if args else [])
        return f"Replicated{family}({', '.join(replicated)})"

    def distributed(self, table: str, shard_by: str) -> str:
        """The Distributed engine clause that spreads ``table`` over the cluster's shards."""
        return f"Distributed('{self.cluster}', '{self.database}', '{self.local(table)}', {shard_by})"

    # -- statements ----------------------------------------------------------------------

    def create_table(
        self,
        name: str,
        columns: Sequence[str],
        *,
        engine: str,
        order_by: str,
        shard_by: str,
        partition_by: str = "",
        ttl: str = "",
        indexes: Sequence[str] = (),
        settings: str = "",
    ) -> list[str]:
        """CREATE TABLE (cluster mode: the replicated local table and its Distributed table).

        ``shard_by`` is the Distributed sharding expression (an integer, for example
        ``cityHash64(project_id, trace_id)``); rows with the same value live on one shard,
        so a ReplacingMergeTree key must be a function of it for duplicates to collapse.
        """
        local = self.local(name)
        body = ",\n    ".join([*columns, *indexes])
        clauses = [f"ENGINE = {self.engine(engine, local)}"]
        if partition_by:
            clauses.append(f"PARTITION BY {partition_by}")
        clauses.append(f"ORDER BY {order_by}")
        if ttl:
            clauses.append(f"TTL {ttl}")
        if settings:
            clauses.append(f"SETTINGS {settings}")
        statements = [f"CREATE TABLE IF NOT EXISTS {local}{self.on_cluster} (\n    {body}\n)\n" + "\n".join(clauses)]
        if self.cluster:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {_name(name)}{self.on_cluster} AS {local}\n"
                f"ENGINE = {self.distributed(name, shard_by)}"
            )
        return statements

    def create_global_table(self, name: str, columns: Sequence[str], *, engine: str, order_by: str) -> list[str]:
        """A small table with every row on every node (cluster mode: one replica set for all nodes).

        Node replica names (the ``{replica}`` macro) must be unique across the cluster.
        """
        body = ",\n    ".join(columns)
        engine_clause = self.engine(engine, name, GLOBAL_ZOOKEEPER_PATH)
        return [
            f"CREATE TABLE IF NOT EXISTS {_name(name)}{self.on_cluster} (\n    {body}\n)\n"
            f"ENGINE = {engine_clause}\nORDER BY {order_by}"
        ]

    def create_materialized_view(
        self, name: str, *, target: str, source: str, select: str, where: str = "", group_by: str = ""
    ) -> list[str]:
        """A materialized view from ``source`` into ``target`` (cluster mode: local to local).

        The source is aliased to its plain name, so ``select`` may qualify columns as
        ``source.column`` in either mode.
        """
        source_clause = f"{self.local(source)} AS {_name(source)}" if self.cluster else _name(source)
        query = f"SELECT {select}\nFROM {source_clause}"
        if where:
            query += f"\nWHERE {where}"
        if group_by:
            query += f"\nGROUP BY {group_by}"
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_name(name)}{self.on_cluster} TO {self.local(target)} AS\n{query}"
        ]

    def alter_table(self, name: str, *actions: str) -> list[str]:
        """ALTER the rows' table (cluster mode: the local table on every node) — indexes,
        TTL, settings, projections. Column changes go through :meth:`add_column` etc."""
        if not actions:
            raise ValueError("alter_table needs at least one action")
        return [f"ALTER TABLE {self.local(name)}{self.on_cluster} " + ", ".join(actions)]

    def _alter_columns(self, name: str, action: str) -> list[str]:
        statements = [f"ALTER TABLE {self.local(name)}{self.on_cluster} {action}"]
        if self.cluster:
            statements.append(f"ALTER TABLE {_name(name)}{self.on_cluster} {action}")
        return statements

    def add_column(self, table: str, definition: str, *, after: str = "") -> list[str]:
        """ADD COLUMN IF NOT EXISTS on the table (cluster mode: local and Distributed)."""
        position = f" AFTER {_name(after)}" if after else ""
        return self._alter_columns(table, f"ADD COLUMN IF NOT EXISTS {definition}{position}")

    def drop_column(self, table: str, column: str) -> list[str]:
        """DROP COLUMN IF EXISTS on the table (cluster mode: local and Distributed)."""
        return self._alter_columns(table, f"DROP COLUMN IF EXISTS {_name(column)}")

    def modify_column(self, table: str, definition: str) -> list[str]:
        """MODIFY COLUMN IF EXISTS on the table (cluster mode: local and Distributed)."""
        return self._alter_columns(table, f"MODIFY COLUMN IF EXISTS {definition}")
