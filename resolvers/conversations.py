"""Conversations: the Customer Agent events sharing a conversation_id, summarised in SQL.

One GROUP BY conversation_id over the four agent metrics gives each conversation's start, end,
status, channel and profile, so filters (status, channel, start window) and keyset paging run in
SQL over whole conversations. Only the events of the conversations on the page are then read, to
fill in skills, tags, products and the event list.

Rules (all times are the events' occurredAt):
- startedAt: the earliest Started event; a conversation without one starts at its first event.
- status / endedAt: the latest Resolved or Escalated event decides (ESCALATED wins a tie at the
  same microsecond); endedAt is its time; neither: OPEN, endedAt null.
- profile: the profile of its Started events (the lowest id if several profiles share the
  conversation_id), else of its events likewise.
- channel: the channel of its Started event, else of its other events; when they disagree, the
  smallest in code-point order.
- initialSkill: the first Started event's initial_skill that is set; finalSkill and
  escalationReason: the latest Resolved / Escalated event's value that is set.
- tags: union over its events (oldest first) in order of first appearance; recommendedProducts:
  union over its recommendations in order of first recommendation.
- Order of lists: newest startedAt first, then conversation id descending (code-point order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers import filter_ast as ast
from resolvers.compiler import window_conditions
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import UserInputError
from resolvers.events import event_query
from resolvers.filter_limits import check_page_size
from resolvers.metrics import now_micros, parse_window
from server.agent_metrics import AGENT_METRICS, ESCALATED, RECOMMENDED, RESOLVED, STARTED, metric_key
from server.store import Store, events, metrics

CONVERSATION_CURSOR = "conversation"
STATUSES = ("OPEN", "RESOLVED", "ESCALATED")


@dataclass
class Conversation:
    id: str
    profile_id: int
    channel: str | None
    status: str
    started_at: int  # microseconds
    ended_at: int | None
    initial_skill: str | None = None
    final_skill: str | None = None
    escalation_reason: str | None = None
    tags: list[str] = field(default_factory=list)
    recommended_products: list[str] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # event rows (see resolvers.events), oldest first


@dataclass
class ConversationPage:
    conversations: list[Conversation]
    has_next_page: bool
    count: Callable[[], Awaitable[int]]

    @staticmethod
    def cursor(conversation: Conversation) -> str:
        return encode_cursor(CONVERSATION_CURSOR, conversation.started_at, conversation.id)


# ---------------------------------------------------------------- queries


async def conversation(store: Store, conversation_id: str) -> Conversation | None:
    async with store.connect() as connection:
        ids = await _agent_metric_ids(connection)
        if not ids:
            return None
        summaries = _Summaries(store.dialect, ids, events.c.conversation_id == conversation_id)
        row = (await connection.execute(summaries.select())).first()
        if row is None:
            return None
        return (await _with_details(connection, ids, [row]))[0]


async def conversation_page(
    store: Store,
    first: int,
    after: str | None,
    status: str | None = None,
    channel: str | None = None,
    within: Any = None,
) -> ConversationPage:
    """Conversations newest first, filtered by status, channel and a start window (plain TimeWindow JSON)."""
    check_page_size(first)
    window = parse_window(within, ("within",))
    cursor = decode_cursor(after, CONVERSATION_CURSOR, int, str) if after else None
    if status is not None and status not in STATUSES:
        raise UserInputError(f"unknown status {status!r}", ("status",))
    async with store.connect() as connection:
        ids = await _agent_metric_ids(connection)
        if not ids:
            return ConversationPage([], False, _zero)
        query = _filtered(store.dialect, ids, status, channel, window)
        summaries = query.select()
        page = summaries.order_by(query.start.desc(), query.ordered_id.desc()).limit(first + 1)
        if cursor is not None:
            started_at, conversation_id = cursor
            page = page.where(sa.or_(
                query.start < started_at,
                sa.and_(query.start == started_at, query.ordered_id < conversation_id),
            ))
        rows = list((await connection.execute(page)).all())
        conversations = await _with_details(connection, ids, rows[:first])

    async def count() -> int:
        async with store.connect() as connection:
            counted = sa.select(sa.func.count()).select_from(summaries.subquery())
            return int(await connection.scalar(counted) or 0)

    return ConversationPage(conversations, len(rows) > first, count)


async def _zero() -> int:
    return 0


async def _agent_metric_ids(connection: AsyncConnection) -> dict[str, int]:
    """Metric ids of the agent metrics that have events, by AgentMetric enum name."""
    keys = {metric_key(agent.name): agent.enum_name for agent in AGENT_METRICS}
    rows = await connection.execute(sa.select(metrics.c.name_key, metrics.c.id).where(metrics.c.name_key.in_(list(keys))))
    return {keys[key]: int(metric_id) for key, metric_id in rows.all()}


class _Summaries:
    """One row per conversation: GROUP BY conversation_id over its agent events, then derived columns."""

    def __init__(self, dialect: str, ids: dict[str, int], *where: Any) -> None:
        def is_(agent: Any) -> Any:
            return events.c.metric_id == ids.get(agent.enum_name, -1)

        def when(condition: Any, value: Any) -> Any:
            return sa.case((condition, value))

        # Compare text in code-point order on both stores.
        channel = events.c.channel.collate("C") if dialect == "postgresql" else events.c.channel
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
            .subquery("conversations")
        )
        self.grouped = grouped
        c = grouped.c
        self.start = sa.func.coalesce(c.started_ts, c.first_ts)
        self.ordered_id = c.id.collate("C") if dialect == "postgresql" else c.id
        escalated = sa.and_(c.escalated_ts.is_not(None), sa.or_(c.resolved_ts.is_(None), c.escalated_ts >= c.resolved_ts))
        resolved = sa.and_(c.resolved_ts.is_not(None), sa.or_(c.escalated_ts.is_(None), c.resolved_ts > c.escalated_ts))
        self.by_status = {
            "ESCALATED": escalated,
            "RESOLVED": resolved,
            "OPEN": sa.and_(c.resolved_ts.is_(None), c.escalated_ts.is_(None)),
        }
        self.status = sa.case((escalated, "ESCALATED"), (resolved, "RESOLVED"), else_="OPEN")
        self.ended = sa.case((escalated, c.escalated_ts), (resolved, c.resolved_ts))
        self.conditions: list[Any] = []

    def select(self) -> sa.Select[Any]:
        c = self.grouped.c
        return sa.select(
            c.id, c.profile_id, c.channel, self.start.label("started_at"), self.ended.label("ended_at"),
            self.status.label("status"),
        ).where(*self.conditions)


def _filtered(
    dialect: str, ids: dict[str, int], status: str | None, channel: str | None, window: ast.Window | None
) -> _Summaries:
    """Summaries narrowed by filters. A start window also prunes the conversations read before
    grouping: a conversation starts at one of its events, so it has an event inside the window."""
    agent_ids = list(ids.values())
    now = now_micros()
    prune: list[Any] = []
    conditions: list[Any] = []
    if window is not None:
        event = events.alias("in_window")
        in_window = sa.select(event.c.conversation_id).where(
            event.c.metric_id.in_(agent_ids), *window_conditions(event.c.ts, window, now))
        prune.append(events.c.conversation_id.in_(in_window))
    query = _Summaries(dialect, ids, *prune)
    if window is not None:
        conditions.extend(window_conditions(query.start, window, now))
    if channel is not None:
        conditions.append(query.grouped.c.channel == channel)
    if status is not None:
        conditions.append(query.by_status[status])
    query.conditions = conditions
    return query


async def _with_details(connection: AsyncConnection, ids: dict[str, int], rows: list[Any]) -> list[Conversation]:
    """Conversations of summary rows, with the details read from their events (one query)."""
    if not rows:
        return []
    query = (
        event_query().add_columns(events.c.conversation_id)
        .where(events.c.conversation_id.in_([row.id for row in rows]), events.c.metric_id.in_(list(ids.values())))
        .order_by(events.c.ts, events.c.id)
    )
    by_conversation: dict[str, list[Any]] = {row.id: [] for row in rows}
    for event in (await connection.execute(query)).all():
        by_conversation[event.conversation_id].append(event)
    return [_detailed(row, by_conversation[row.id]) for row in rows]


def _detailed(row: Any, event_rows: list[Any]) -> Conversation:
    found = Conversation(
        id=row.id, profile_id=int(row.profile_id), channel=row.channel, status=row.status,
        started_at=int(row.started_at), ended_at=int(row.ended_at) if row.ended_at is not None else None,
        events=event_rows,
    )
    for event in event_rows:
        properties = event.properties if isinstance(event.properties, dict) else {}
        kind = metric_key(event.metric)
        if kind == metric_key(STARTED.name) and found.initial_skill is None:
            found.initial_skill = _text(properties, "initial_skill")
        elif kind == metric_key(RESOLVED.name):
            found.final_skill = _text(properties, "final_skill") or found.final_skill
        elif kind == metric_key(ESCALATED.name):
            found.escalation_reason = _text(properties, "escalation_reason") or found.escalation_reason
        elif kind == metric_key(RECOMMENDED.name):
            _add_new(found.recommended_products, properties.get("products"))
        _add_new(found.tags, properties.get("tags"))
    return found


def _text(properties: dict[str, Any], key: str) -> str | None:
    value = properties.get(key)
    return value if isinstance(value, str) and value else None


def _add_new(seen: list[str], values: Any) -> None:
    if not isinstance(values, list):
        return
    for value in values:
        if isinstance(value, str) and value not in seen:
            seen.append(value)
