"""The `profile_metrics` table: each profile's first time of each metric, merged inside every write from
the events it stored (a refused batch or a duplicate changes nothing).

Events are never deleted, so a first time only ever moves earlier: a write sets its own events' earliest
time where it is earlier than the row's, which stays exact when PostgreSQL runs writes side by side (the
test reads the row as the write before it committed it). A row that a write does not move is not written.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from store.tables import dialect_insert, events, profile_metrics

COLUMNS = ("metric_id", "profile_id", "first_ts")
# SQLite numbers events upwards and writes one transaction at a time: a write's events are the ones
# above the last id before it. (PostgreSQL merges the rows its insert returns: `merge_returned`.)
LAST_EVENT_ID = sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))


def merge(connection: sa.Connection, after_id: int) -> None:
    """Move the rows of this write's events (those above `after_id`: SQLite's) earlier where they start earlier."""
    connection.execute(_merge_statement(connection.dialect.name), {"after_id": after_id})


def merge_returned(dialect: str, inserted: Any) -> Any:
    """The merge of the events an INSERT … RETURNING (metric_id, profile_id, ts) names `inserted`, for a
    statement that inserts and merges at once (PostgreSQL's staged events)."""
    return _upsert(dialect, _first_times(inserted))


def refresh_all(connection: sa.Connection) -> None:
    """Recompute every row from the events (a migrated or bulk-loaded store, `segmentql rebuild-summaries`)."""
    connection.execute(sa.delete(profile_metrics))
    connection.execute(_upsert(connection.dialect.name, _first_times(events)))


@functools.lru_cache(maxsize=8)
def _merge_statement(dialect: str) -> Any:
    """The merge of the events above `after_id`: built once, as its cache key costs more than its run."""
    # A write's events by their ids: SQLite would rather scan all of (profile, metric, ts) in group order,
    # which grows with the store (docs/performance.md), than sort the write's rows.
    written = _first_times(events, events.c.id > sa.bindparam("after_id", type_=sa.BigInteger))
    return _upsert(dialect, written.with_hint(events, "NOT INDEXED", "sqlite"))


def _first_times(rows: Any, where: Any = None) -> sa.Select[Any]:
    """(metric, profile, earliest ts) of the events `rows` meeting `where`, in (metric, profile) order: two
    PostgreSQL writes lock the rows they share in the same order, never crosswise."""
    return (
        sa.select(rows.c.metric_id, rows.c.profile_id, sa.func.min(rows.c.ts))
        .where(sa.true() if where is None else where)  # SQLite reads an upsert's ON after a bare FROM as a join's
        .group_by(rows.c.metric_id, rows.c.profile_id)
        .order_by(rows.c.metric_id, rows.c.profile_id)
    )


def _upsert(dialect: str, first_times: sa.Select[Any]) -> Any:
    insert = dialect_insert(dialect, profile_metrics).from_select(COLUMNS, first_times)
    # The WHERE alone picks the earlier time; PostgreSQL tests it on the row as the last write committed it.
    return insert.on_conflict_do_update(
        index_elements=[profile_metrics.c.metric_id, profile_metrics.c.profile_id],
        set_={"first_ts": insert.excluded.first_ts},
        where=insert.excluded.first_ts < profile_metrics.c.first_ts,
    )
