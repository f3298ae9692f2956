"""ClickHouse access for Thinkmeter: the only package that imports chdb or clickhouse_driver.

Use :func:`execute`, :func:`query_df`, :func:`query_arrow` and :func:`insert`; each call
names its project scope and a tag. Schema migrations live in :mod:`.schema` and
``migrations/``.
"""

from thinkmeter.clickhouse.client import (
    PROJECT_PARAM,
    config,
    execute,
    insert,
    query_arrow,
    query_df,
    reset_transport,
    transport,
)
from thinkmeter.clickhouse.config import ClickHouseConfigError, parse_clickhouse_url
from thinkmeter.clickhouse.errors import (
    ClickHouseError,
    ClickHouseUnavailable,
    EmbeddedStoreLocked,
    ScopeError,
)

__all__ = [
    "PROJECT_PARAM",
    "ClickHouseConfigError",
    "ClickHouseError",
    "ClickHouseUnavailable",
    "EmbeddedStoreLocked",
    "ScopeError",
    "config",
    "execute",
    "insert",
    "parse_clickhouse_url",
    "query_arrow",
    "query_df",
    "reset_transport",
    "transport",
]
