"""Which API key sent each span: ``spans.api_key_id`` (the ``thinkmeter.models.ApiKey`` pk).

The receivers (OTLP/HTTP and gRPC) record the id of the key that authenticated the
export request, so quotas and breakdowns can be scoped per key. Spans stored before this
migration, and rows written without a key, read 0 ("no key"). The column goes right after
``project_id``; ``ingest.rows.SCHEMA`` lists it at the same place (inserts name their
columns, so the order is for readers of ``DESCRIBE spans``). In cluster mode the column
is added to the local tables and to the Distributed ``spans`` (see :mod:`thinkmeter.clickhouse.ddl`).
"""

from __future__ import annotations

from thinkmeter.clickhouse.ddl import SchemaContext


def statements(ctx: SchemaContext) -> list[str]:
    return ctx.add_column("spans", "api_key_id UInt32 DEFAULT 0 CODEC(T64, ZSTD(1))", after="project_id")
