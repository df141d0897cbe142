"""The SQLite dialects of a Store's engines: SQLAlchemy's aiosqlite and pysqlite ones, rendering FROM hints.

SQLite's INDEXED BY and NOT INDEXED are table hints, written `select(...).with_hint(table, "INDEXED BY ix",
"sqlite")`; SQLAlchemy's SQLite compiler drops every FROM hint. These dialects' compiler renders them as
given. They are registered with SQLAlchemy under drivers of their own (`sqlite+segmentql_aiosqlite://`,
`sqlite+segmentql_pysqlite://`), which only a Store's engines name (`store_url`): any other engine in the
process compiles as SQLAlchemy does.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

ASYNC_DRIVER = "segmentql_aiosqlite"
SYNC_DRIVER = "segmentql_pysqlite"


class HintedSQLiteCompiler(SQLiteCompiler):
    """SQLite's statement compiler, with FROM hints (INDEXED BY, NOT INDEXED) written after their table."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


class AioSQLiteDialect(SQLiteDialect_aiosqlite):
    """aiosqlite, compiling with HintedSQLiteCompiler: the async engines of a SQLite store."""

    statement_compiler = HintedSQLiteCompiler
    supports_statement_cache = True


class PySQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, compiling with HintedSQLiteCompiler: the worker threads' engine of a SQLite file."""

    statement_compiler = HintedSQLiteCompiler
    supports_statement_cache = True


registry.register(f"sqlite.{ASYNC_DRIVER}", __name__, AioSQLiteDialect.__name__)
registry.register(f"sqlite.{SYNC_DRIVER}", __name__, PySQLiteDialect.__name__)


def store_url(url: str | sa.URL, sync: bool = False) -> sa.URL:
    """`url` as a Store's engine opens it: a SQLite one (aiosqlite, or any driver when `sync`) through the
    dialect above; any other URL as it is."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return parsed
    if sync:
        return parsed.set(drivername=f"sqlite+{SYNC_DRIVER}")
    if parsed.get_driver_name() == "aiosqlite":
        return parsed.set(drivername=f"sqlite+{ASYNC_DRIVER}")
    return parsed

