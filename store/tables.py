"""The tables, their indexes and how rows are read from them (SQLite by default, PostgreSQL in production).

Times are integer microseconds since the epoch (UTC) so that windows compare exactly and
identically on both stores; metric names live in their own table and events carry the id.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from store.dialects import dialect_named

metadata = sa.MetaData()


def sqlite_only(constraint: sa.Constraint) -> sa.Constraint:
    """A constraint created on SQLite only; `info` tells Alembic's comparison (store/migrate.py) so."""
    constraint.info["dialects"] = ("sqlite",)
    return constraint.ddl_if(dialect="sqlite")


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

# A profile as the API reads it, in this order (schema.types.Profile.from_row unpacks it). Properties
# come as their stored text on SQLite and are decoded only when a client asks for them: pages of a
# thousand profiles rarely do. (PostgreSQL's driver decodes jsonb itself.)
PROFILE_ROW = (
    profiles.c.id, profiles.c.email, profiles.c.phone_number, profiles.c.external_id, profiles.c.first_name,
    profiles.c.last_name, sa.type_coerce(profiles.c.properties, sa.Text).label("properties"),
    profiles.c.created_at, profiles.c.updated_at,
)


def profile_row(columns: Collection[str] | None) -> tuple[Any, ...]:
    """PROFILE_ROW reading only `columns` (and the id), the others NULL in their places; None: all of them.

    A page of a thousand profiles rarely asks for properties, whose JSON text can be the bulk of a row.
    """
    if columns is None:
        return PROFILE_ROW
    return tuple(column if column.name == "id" or column.name in columns else sa.null().label(column.name)
                 for column in PROFILE_ROW)


@functools.lru_cache(maxsize=256)  # a client paging through asks for the same nodes on every page
def profile_json(dialect: str, fields: tuple[tuple[str, str | None], ...], constant: str) -> sa.ColumnElement[str]:
    """Each profile as the text of a JSON object: a key per (key, column) pair, in order, the column's
    value as JSON text (the id as a string); a None column stands for `constant`. Keys are bound parameters."""
    pairs: list[Any] = []
    for key, column in fields:
        value = sa.literal(constant) if column is None else profiles.c[column]
        pairs += [sa.literal(key), sa.cast(value, sa.Text) if column == "id" else value]
    return dialect_named(dialect).json_object_text(pairs)


def decode_properties(stored: Any) -> Any:
    """Properties read through PROFILE_ROW: text on SQLite, already decoded on PostgreSQL."""
    return orjson.loads(stored) if isinstance(stored, str | bytes) else stored


events = sa.Table(
    "events", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("profile_id", Id, nullable=False),
    sa.Column("metric_id", Id, nullable=False),
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
    sa.Index("ux_events_metric_unique_id", "metric_id", "unique_id", unique=True),
    # The newest-first event feed (Query.events without a metric).
    sa.Index("ix_events_ts", "ts", "id"),
    # Every write resolves an event's profile and metric in its own transaction, and neither is ever deleted.
    # PostgreSQL checked each inserted event by locking its profile and metric rows (FOR KEY SHARE), half of
    # an events insert, every writer on the same few metric rows: only SQLite keeps them (docs/performance.md).
    sqlite_only(sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name="events_profile_id_fkey")),
    sqlite_only(sa.ForeignKeyConstraint(["metric_id"], ["metrics.id"], name="events_metric_id_fkey")),
)
# A write's events on PostgreSQL, copied here (COPY) in the batch's order (`seq`) before one INSERT … SELECT
# moves the new ones into `events` (resolvers/ingest.py): a temporary table of each connection, emptied at
# every commit; outside `metadata`, which the migrations keep.
staged_events = sa.Table(
    "segmentql_staged_events", sa.MetaData(),
    sa.Column("seq", sa.Integer, nullable=False),
    *(sa.Column(column.name, column.type) for column in events.c if column.name != "id"),
    prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS",
)
# A conversation's events with what its summary needs, without reading the table (each write recomputes
# the conversations it touched); events without a conversation (three in four) stay out of it.
_IN_A_CONVERSATION = events.c.conversation_id.is_not(None)
sa.Index("ix_events_conversation", events.c.conversation_id, events.c.ts, events.c.metric_id, events.c.profile_id,
         events.c.channel, sqlite_where=_IN_A_CONVERSATION, postgresql_where=_IN_A_CONVERSATION)

# One row per conversation (the agent events sharing a conversation_id), derived from those events by
# store/conversation_summaries.py and kept current by every write: conversation lists page through
# this table's indexes instead of grouping every conversation's events (docs/performance.md).
# PostgreSQL orders the ids in code-point order ("C"), as SQLite does.
CodePointText = sa.String().with_variant(sa.String(collation="C"), "postgresql")
conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", CodePointText, primary_key=True),
    sa.Column("profile_id", Id, nullable=False),
    sa.Column("channel", sa.String),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("status", sa.String, nullable=False),  # OPEN, RESOLVED or ESCALATED
    # Newest first, overall and within a status or a channel.
    sa.Index("ix_conversations_started", "started_at", "id"),
    sa.Index("ix_conversations_status_started", "status", "started_at", "id"),
    sa.Index("ix_conversations_channel_started", "channel", "started_at", "id"),
    sqlite_with_rowid=False,  # rows live in the id's b-tree: one b-tree fewer for every write to keep
)

# One row per (metric, profile) that has events: the first time the profile did it. Kept by every write
# from the events it stored (store/profile_metric_summaries.py). "Ever did X" / "never did X" read these
# rows, one per profile that did X, instead of every such event; walks run along them. A row is written
# once, when its profile first does X (again only for an event dated earlier): the first time, not the
# last, so that a write does not rewrite a row for every event.
profile_metrics = sa.Table(
    "profile_metrics", metadata,
    sa.Column("metric_id", Id, nullable=False),
    sa.Column("profile_id", Id, nullable=False),
    sa.Column("first_ts", sa.BigInteger, nullable=False),
    # The first time rides in the key's index on PostgreSQL too (SQLite keeps the rows in it): index-only reads.
    sa.PrimaryKeyConstraint("metric_id", "profile_id", postgresql_include=["first_ts"]),
    sqlite_with_rowid=False,
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

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # The key's first characters, stored plainly to find its row; the rest only as a hash.
    sa.Column("prefix", sa.String, nullable=False, unique=True),
    sa.Column("key_hash", sa.String, nullable=False),
    sa.Column("scopes", sa.String, nullable=False),  # space-separated: read track manage
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger),
)


def encode_json(value: Any) -> str:
    """A JSON column's value as stored text."""
    return orjson.dumps(value).decode()


JSON_CODEC: dict[str, Any] = {"json_serializer": encode_json, "json_deserializer": orjson.loads}
"""How every engine of a store writes and reads JSON columns."""


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT in this SQL dialect."""
    return dialect_named(dialect).insert(table)



def metric_ids(connection: sa.Connection, names: dict[str, str]) -> dict[str, int]:
    """Ids of metrics by matching key, creating the missing ones; `names` maps key → display name."""
    def known(keys: list[str]) -> dict[str, int]:
        rows = connection.execute(sa.select(metrics.c.name_key, metrics.c.id).where(metrics.c.name_key.in_(keys)))
        return {key: metric_id for key, metric_id in rows.all()}

    found = known(list(names))  # almost always all of them
    missing = {key: name for key, name in names.items() if key not in found}
    if missing:
        connection.execute(
            dialect_insert(connection.dialect.name, metrics).on_conflict_do_nothing(index_elements=["name_key"]),
            [{"name": name, "name_key": key} for key, name in missing.items()],
        )
        found.update(known(list(missing)))
    return found
