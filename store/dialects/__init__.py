"""The store's SQL dialects, one module each, as sqlglot keeps its generators: everything SQLite and
PostgreSQL do differently is a method or a flag of their StoreDialect."""

from __future__ import annotations

import sqlalchemy as sa

from store.dialects.base import StoreDialect
from store.dialects.postgresql import ASYNCPG_DRIVER as PG_ASYNC_DRIVER
from store.dialects.postgresql import PostgreSQLDialect
from store.dialects.sqlite import ASYNC_DRIVER, SYNC_DRIVER, SQLiteDialect

DIALECTS: dict[str, StoreDialect] = {"sqlite": SQLiteDialect(), "postgresql": PostgreSQLDialect()}


def dialect_named(name: str) -> StoreDialect:
    """The dialect of a store whose SQLAlchemy dialect has this name."""
    return DIALECTS[name]


def store_url(url: str | sa.URL, sync: bool = False) -> sa.URL:
    """`url` as a Store's engine opens it: a SQLite one (aiosqlite, or any driver when `sync`) through
    store/dialects/sqlite.py's dialects, a PostgreSQL one on asyncpg through store/dialects/postgresql.py's;
    any other URL as it is."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg":
        return parsed.set(drivername=f"postgresql+{PG_ASYNC_DRIVER}")
    if parsed.get_backend_name() != "sqlite":
        return parsed
    if sync:
        return parsed.set(drivername=f"sqlite+{SYNC_DRIVER}")
    if parsed.get_driver_name() == "aiosqlite":
        return parsed.set(drivername=f"sqlite+{ASYNC_DRIVER}")
    return parsed

