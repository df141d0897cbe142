"""The event store: tables, indexes and the async engine (SQLite by default, PostgreSQL in production).

Times are integer microseconds since the epoch (UTC) so that windows compare exactly and
identically on both stores; metric names live in their own table and events carry the id.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

metadata = sa.MetaData()

# JSON objects: text on SQLite, jsonb on PostgreSQL (so that its operators and indexes apply).
JsonObject = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Autoincrementing 64-bit ids; SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # Metric names match case-insensitively: the lowercased, space-normalised name is the key.
    sa.Column("name_key", sa.String, nullable=False, unique=True),
)

profiles = sa.Table(
    "profiles", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String, unique=True),
    sa.Column("phone_number", sa.String, unique=True),
    sa.Column("external_id", sa.String, unique=True),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String),
    sa.Column("properties", JsonObject, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("profile_id", Id, sa.ForeignKey("profiles.id"), nullable=False),
    sa.Column("metric_id", Id, sa.ForeignKey("metrics.id"), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    # Promoted from properties (their string values) because filters and conversations hit them most.
    sa.Column("channel", sa.String),
    sa.Column("conversation_id", sa.String),
    sa.Column("properties", JsonObject, nullable=False),
    sa.Column("unique_id", sa.String),
    # "Who did X in a window": a range scan yielding profile ids without touching the table.
    sa.Index("ix_events_metric_ts_profile", "metric_id", "ts", "profile_id"),
    # A profile's own events (timelines, follow-ups, counts per profile).
    sa.Index("ix_events_profile_metric_ts", "profile_id", "metric_id", "ts"),
    sa.Index("ix_events_metric_channel_ts", "metric_id", "channel", "ts", "profile_id"),
    sa.Index("ix_events_conversation", "conversation_id", "ts"),
    sa.Index("ux_events_metric_unique_id", "metric_id", "unique_id", unique=True),
)

segments = sa.Table(
    "segments", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("description", sa.String),
    sa.Column("filter", JsonObject, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Store:
    """The engine and the SQL dialect it speaks."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url, json_serializer=_json_dumps, json_deserializer=orjson.loads, **engine_options
        )
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def create_tables(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    def connect(self) -> Any:
        return self.engine.connect()

    def begin(self) -> Any:
        return self.engine.begin()

    async def ping(self) -> bool:
        async with self.engine.connect() as connection:
            return (await connection.scalar(sa.text("SELECT 1"))) == 1

    async def dispose(self) -> None:
        await self.engine.dispose()

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that knows ON CONFLICT in this store's dialect."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; busy_timeout waits for the lock instead of failing.
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON",
        "cache_size=-65536", "mmap_size=268435456", "temp_store=MEMORY",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


async def metric_ids(connection: AsyncConnection, store: Store, names: dict[str, str]) -> dict[str, int]:
    """Ids of metrics by matching key, creating the missing ones; `names` maps key → display name."""
    if not names:
        return {}
    await connection.execute(
        store.insert(metrics).on_conflict_do_nothing(index_elements=["name_key"]),
        [{"name": name, "name_key": key} for key, name in names.items()],
    )
    rows = await connection.execute(
        sa.select(metrics.c.name_key, metrics.c.id).where(metrics.c.name_key.in_(list(names)))
    )
    return {key: metric_id for key, metric_id in rows.all()}
