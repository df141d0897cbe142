"""Conversations: pages of the `conversations` table (store/conversation_summaries.py keeps it and
states the rules for profile, channel, start, end and status), each filled in from its events.

Filters (status, channel, start window) and keyset paging run over that table's indexes; only the
events of the conversations on the page are then read, for skills, tags, products and the event list:
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

from resolvers.compiler import window_conditions
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import UserInputError
from resolvers.events import event_query
from resolvers.language.limits import check_page_size
from resolvers.metrics import now_micros, parse_window
from store.engine import Store
from store.tables import conversations, events, metrics
from vocabulary.agent_metrics import AGENT_METRIC_KEYS, ESCALATED, RECOMMENDED, RESOLVED, STARTED, metric_key

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
    rows = await store.fetch(_summaries().where(conversations.c.id == conversation_id))
    return (await _with_details(store, rows))[0] if rows else None


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
    c = conversations.c
    conditions: list[Any] = []
    if window is not None:
        conditions.extend(window_conditions(c.started_at, window, now_micros()))
    if channel is not None:
        conditions.append(c.channel == channel)
    if status is not None:
        conditions.append(c.status == status)
    page = _summaries().where(*conditions).order_by(c.started_at.desc(), c.id.desc()).limit(first + 1)
    if cursor is not None:
        started_at, conversation_id = cursor
        # The first condition bounds the index range, wherever the page is; the second breaks the tie.
        page = page.where(c.started_at <= started_at, sa.or_(c.started_at < started_at, c.id < conversation_id))
    rows = await store.fetch(page)
    found = await _with_details(store, rows[:first])

    async def count() -> int:
        ((counted,),) = await store.fetch(sa.select(sa.func.count()).select_from(conversations).where(*conditions))
        return int(counted)

    return ConversationPage(found, len(rows) > first, count)


def _summaries() -> sa.Select[Any]:
    c = conversations.c
    return sa.select(c.id, c.profile_id, c.channel, c.started_at, c.ended_at, c.status)


async def _with_details(store: Store, rows: list[Any]) -> list[Conversation]:
    """Conversations of summary rows, with the details read from their events (one query)."""
    if not rows:
        return []
    query = (
        event_query().add_columns(events.c.conversation_id)
        .where(events.c.conversation_id.in_([row.id for row in rows]), metrics.c.name_key.in_(list(AGENT_METRIC_KEYS)))
        .order_by(events.c.ts, events.c.id)
    )
    by_conversation: dict[str, list[Any]] = {row.id: [] for row in rows}
    for event in await store.fetch(query):
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
