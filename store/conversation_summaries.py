"""The `conversations` table: each conversation's summary, derived from its agent events and recomputed
inside every write for the conversations it touched (a refused batch or a duplicate changes nothing)."""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from store.dialects import dialect_named
from store.tables import conversations, dialect_insert, events, metrics
from vocabulary.agent_metrics import AGENT_METRIC_KEYS, ESCALATED, RESOLVED, STARTED

# A conversation is the set of the four agent metrics' events sharing a conversation_id. Its summary
# (all times are the events' occurredAt):
# - started_at: the earliest Started event; a conversation without one starts at its first event.
# - status / ended_at: the latest Resolved or Escalated event decides (ESCALATED wins a tie at the
#   same microsecond); ended_at is its time; neither: OPEN, ended_at null.
# - profile: the profile of its Started events (the lowest id if several profiles share the
#   conversation_id), else of its events likewise.
# - channel: the channel of its Started event, else of its other events; when they disagree, the
#   smallest in code-point order.
COLUMNS = ("id", "profile_id", "channel", "started_at", "ended_at", "status")
# PostgreSQL locks taken per write at most (see `refresh`): its lock table is shared and small.
LOCK_BUCKETS = 128
LOCK_NAMESPACE = 0x5351_4C43  # "SQLC": the first key of SegmentQL's two-key advisory locks
# Two-key advisory locks (they do not meet anyone's one-key locks): a write's conversations' buckets,
# in one order; every bucket.
_LOCK_CONVERSATIONS = sa.text(
    "SELECT pg_advisory_xact_lock(:namespace, bucket) FROM (SELECT DISTINCT"
    " CAST(abs(hashtextextended(id, 0) % :buckets) AS integer) AS bucket"
    " FROM unnest(CAST(:conversation_ids AS text[])) AS id ORDER BY bucket) AS ordered")
_LOCK_EVERY_CONVERSATION = sa.text(
    "SELECT pg_advisory_xact_lock(:namespace, bucket) FROM generate_series(0, :buckets - 1) AS bucket")


def _agent_metric_ids(connection: sa.Connection) -> dict[str, int]:
    """The ids of the agent metrics the store knows, by AgentMetric enum name."""
    rows = connection.execute(sa.select(metrics.c.name_key, metrics.c.id).where(metrics.c.name_key.in_(list(AGENT_METRIC_KEYS))))
    return {AGENT_METRIC_KEYS[key]: int(metric_id) for key, metric_id in rows}


def summaries(dialect: str, ids: dict[str, int], *where: Any) -> sa.Select[Any]:
    """The summary row (COLUMNS) of every conversation whose agent events meet `where`, from those events."""

    def is_(agent: Any) -> Any:
        return events.c.metric_id == ids.get(agent.enum_name, -1)

    def when(condition: Any, value: Any) -> Any:
        return sa.case((condition, value))

    # Compare text in code-point order on both stores.
    channel = dialect_named(dialect).code_point_order(events.c.channel)
    started = is_(STARTED)
    grouped = (
        sa.select(
            events.c.conversation_id.label("id"),
            sa.func.min(events.c.ts).label("first_ts"),
            sa.func.min(when(started, events.c.ts)).label("started_ts"),
            sa.func.max(when(is_(RESOLVED), events.c.ts)).label("resolved_ts"),
            sa.func.max(when(is_(ESCALATED), events.c.ts)).label("escalated_ts"),
            sa.func.coalesce(sa.func.min(when(started, events.c.profile_id)), sa.func.min(events.c.profile_id))
            .label("profile_id"),
            sa.func.coalesce(sa.func.min(when(started, channel)), sa.func.min(channel)).label("channel"),
        )
        .where(events.c.metric_id.in_(list(ids.values())), events.c.conversation_id.is_not(None), *where)
        .group_by(events.c.conversation_id)
        .subquery("grouped")
    )
    c = grouped.c
    escalated = sa.and_(c.escalated_ts.is_not(None), sa.or_(c.resolved_ts.is_(None), c.escalated_ts >= c.resolved_ts))
    resolved = sa.and_(c.resolved_ts.is_not(None), sa.or_(c.escalated_ts.is_(None), c.resolved_ts > c.escalated_ts))
    summary = sa.select(
        c.id, c.profile_id, c.channel,
        sa.func.coalesce(c.started_ts, c.first_ts).label("started_at"),
        sa.case((escalated, c.escalated_ts), (resolved, c.resolved_ts)).label("ended_at"),
        sa.case((escalated, "ESCALATED"), (resolved, "RESOLVED"), else_="OPEN").label("status"),
    )
    # SQLite would read the ON of an upsert after a SELECT without WHERE as a join's ON clause.
    return summary.where(sa.true())


def refresh(connection: sa.Connection, conversation_ids: Collection[str]) -> None:
    """Recompute the summaries of these conversations from their events (in the caller's transaction)."""
    if not conversation_ids:
        return
    ordered = sorted(conversation_ids)
    if dialect_named(connection.dialect.name).writes_side_by_side:
        # PostgreSQL runs writes side by side (SQLite one at a time): a write waits here for the others
        # that touched these conversations to commit, so that what it reads next (the agent metrics one
        # of them may have created, the events) includes theirs (READ COMMITTED). Conversations share
        # LOCK_BUCKETS locks, taken in one order: a bounded number, and no deadlock.
        connection.execute(_LOCK_CONVERSATIONS, {
            "conversation_ids": ordered, "buckets": LOCK_BUCKETS, "namespace": LOCK_NAMESPACE})
    ids = _agent_metric_ids(connection)
    statement = _refresh_statement(connection.dialect.name, tuple(sorted(ids.items())))
    chunk = dialect_named(connection.dialect.name).list_chunk or len(ordered)
    for start in range(0, len(ordered), chunk):
        connection.execute(statement, {"conversation_ids": ordered[start:start + chunk]})


def refresh_all(connection: sa.Connection) -> None:
    """Recompute every conversation's summary (a migrated or bulk-loaded store, `segmentql rebuild-conversations`)."""
    if dialect_named(connection.dialect.name).writes_side_by_side:  # every lock of `refresh`: writes beside this one wait
        connection.execute(_LOCK_EVERY_CONVERSATION, {"namespace": LOCK_NAMESPACE, "buckets": LOCK_BUCKETS})
    ids = _agent_metric_ids(connection)
    if ids:
        connection.execute(_upsert(connection.dialect.name, summaries(connection.dialect.name, ids)))



@functools.lru_cache(maxsize=16)
def _refresh_statement(dialect: str, ids: tuple[tuple[str, int], ...]) -> Any:
    """The upsert of the conversations bound as `conversation_ids`: built once, where building it and its
    cache key took longer than running it."""
    in_batch = dialect_named(dialect).among(events.c.conversation_id, "conversation_ids", sa.String)
    return _upsert(dialect, summaries(dialect, dict(ids), in_batch))


def _upsert(dialect: str, rows: sa.Select[Any]) -> Any:
    insert = dialect_insert(dialect, conversations).from_select(COLUMNS, rows)
    changed = sa.or_(*(conversations.c[name].is_distinct_from(insert.excluded[name]) for name in COLUMNS[1:]))
    # A row left as it was is not written: an update of its columns would rewrite every index entry.
    return insert.on_conflict_do_update(
        index_elements=[conversations.c.id], set_={name: insert.excluded[name] for name in COLUMNS[1:]}, where=changed)
