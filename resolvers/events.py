"""Event lists, newest first, keyset-paginated on (occurred_at, id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.language.limits import check_page_size
from store.engine import Store
from store.tables import events, metrics
from vocabulary.agent_metrics import metric_key

EVENT_CURSOR = "event"
EVENT_COLUMNS = (
    events.c.id, events.c.profile_id, metrics.c.name.label("metric"), events.c.ts, events.c.channel,
    events.c.properties,
)


@dataclass
class EventPage:
    rows: list[Any]
    has_next_page: bool

    @staticmethod
    def cursor(row: Any) -> str:
        return encode_cursor(EVENT_CURSOR, row.ts, row.id)


def event_query() -> sa.Select[Any]:
    return sa.select(*EVENT_COLUMNS).join_from(events, metrics, events.c.metric_id == metrics.c.id)


async def event_page(
    store: Store, first: int, after: str | None, metric: str | None = None, profile_id: int | None = None
) -> EventPage:
    """Events newest first, optionally of one metric and one profile."""
    check_page_size(first)
    query = event_query().order_by(events.c.ts.desc(), events.c.id.desc()).limit(first + 1)
    if metric is not None:
        query = query.where(metrics.c.name_key == metric_key(metric))
    if profile_id is not None:
        query = query.where(events.c.profile_id == profile_id)
    if after:
        ts, event_id = decode_cursor(after, EVENT_CURSOR, int, int)
        query = query.where(sa.or_(events.c.ts < ts, sa.and_(events.c.ts == ts, events.c.id < event_id)))
    async with store.connect() as connection:
        rows = list((await connection.execute(query)).all())
    return EventPage(rows[:first], len(rows) > first)


async def first_pages_by_profile(
    store: Store, profile_ids: list[int], first: int, metric: str | None = None
) -> list[EventPage]:
    """The first page of each profile's events (newest first), all in one statement."""
    check_page_size(first)
    newest = sa.func.row_number().over(
        partition_by=events.c.profile_id, order_by=(events.c.ts.desc(), events.c.id.desc())
    ).label("position")
    ranked = event_query().add_columns(newest).where(events.c.profile_id.in_(profile_ids))
    if metric is not None:
        ranked = ranked.where(metrics.c.name_key == metric_key(metric))
    ranked_rows = ranked.subquery()
    query = (sa.select(*(ranked_rows.c[c.name] for c in EVENT_COLUMNS))
             .where(ranked_rows.c.position <= first + 1)
             .order_by(ranked_rows.c.profile_id, ranked_rows.c.position))
    async with store.connect() as connection:
        rows = (await connection.execute(query)).all()
    grouped: dict[int, list[Any]] = {profile_id: [] for profile_id in profile_ids}
    for row in rows:
        grouped[row.profile_id].append(row)
    return [EventPage(grouped[p][:first], len(grouped[p]) > first) for p in profile_ids]


async def events_by_id(store: Store, ids: list[int]) -> list[Any]:
    async with store.connect() as connection:
        rows = {row.id: row for row in (await connection.execute(event_query().where(events.c.id.in_(ids)))).all()}
    return [rows[i] for i in ids if i in rows]


async def event_by_unique_id(store: Store, metric: str, unique_id: str) -> Any:
    query = event_query().where(metrics.c.name_key == metric_key(metric), events.c.unique_id == unique_id)
    async with store.connect() as connection:
        return (await connection.execute(query)).first()
