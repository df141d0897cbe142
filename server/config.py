"""Settings, read from the environment (SEGMENTQL_*) and overridden by command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when one is opened: `segmentql --help` reads these settings
    from store.engine import Store

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./segmentql.db"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SEGMENTQL_{name}", default)


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: _env("DATABASE_URL", DEFAULT_DATABASE_URL))
    # Audience queries and exports go here when set (a PostgreSQL replica); ingest stays on database_url.
    read_database_url: str | None = field(default_factory=lambda: os.environ.get("SEGMENTQL_READ_DATABASE_URL"))
    pool_size: int = field(default_factory=lambda: int(_env("POOL_SIZE", "10")))
    pool_timeout: float = field(default_factory=lambda: float(_env("POOL_TIMEOUT", "30")))
    # Seconds an audience query may run before it is cancelled with QUERY_TIMEOUT.
    statement_timeout: float = field(default_factory=lambda: float(_env("STATEMENT_TIMEOUT", "30")))
    # GraphiQL for browsers on GET /graphql, and schema introspection (turn both off in production if wanted).
    graphiql: bool = field(default_factory=lambda: _env("GRAPHIQL", "1") != "0")
    introspection: bool = field(default_factory=lambda: _env("INTROSPECTION", "1") != "0")
    # Larger request bodies are refused with 413 before they are read: room for a full trackEvents
    # batch (10,000 events) of about 1 KiB each.
    max_body_bytes: int = field(default_factory=lambda: int(_env("MAX_BODY_BYTES", str(10 * 1024 * 1024))))
    # Seconds a running server trusts what it last read about API keys (revocations take this long).
    key_cache_seconds: float = field(default_factory=lambda: float(_env("KEY_CACHE_SECONDS", "2")))


def open_store(settings: Settings) -> Store:
    """The store the settings name: its primary, its read replica when set, and their limits."""
    from store.engine import Store

    return Store(
        settings.database_url, settings.read_database_url, settings.statement_timeout,
        pool_size=settings.pool_size, pool_timeout=settings.pool_timeout,
    )
