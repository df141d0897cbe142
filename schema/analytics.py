"""Output types of conversations and the Metrics analytics view."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from resolvers import conversations, metrics
from resolvers.events import event_page
from schema.context import GraphQLInfo
from schema.inputs import TimeWindow, plain
from schema.paging import EVENTS_PAGE, page_size
from schema.types import AgentMetric, Event, EventConnection, PageInfo, Profile, event_from_row
from vocabulary.timestamps import from_micros

# ---------------------------------------------------------------- conversations


@strawberry.enum
class ConversationStatus(Enum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"


@strawberry.type
class Conversation:
    id: str
    channel: str | None
    status: ConversationStatus
    started_at: datetime | None
    ended_at: datetime | None
    initial_skill: str | None
    final_skill: str | None
    escalation_reason: str | None
    tags: list[str]
    recommended_products: list[str]
    profile_id: strawberry.Private[int]
    event_rows: strawberry.Private[list[Any]]

    @classmethod
    def of(cls, found: conversations.Conversation) -> Conversation:
        return cls(
            id=found.id, channel=found.channel, status=ConversationStatus(found.status),
            started_at=from_micros(found.started_at),
            ended_at=from_micros(found.ended_at) if found.ended_at is not None else None,
            initial_skill=found.initial_skill, final_skill=found.final_skill,
            escalation_reason=found.escalation_reason, tags=found.tags,
            recommended_products=found.recommended_products, profile_id=found.profile_id, event_rows=found.events,
        )

    @strawberry.field
    async def profile(self, info: GraphQLInfo) -> Profile:
        return Profile.from_row(await info.context.profiles.load(self.profile_id))

    @strawberry.field(description="Oldest first.")
    def events(self) -> list[Event]:
        return [event_from_row(row) for row in self.event_rows]


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    def nodes(self) -> list[Conversation]:
        return [edge.node for edge in self.edges]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def of(cls, page: conversations.ConversationPage, after: str | None) -> ConversationConnection:
        edges = [ConversationEdge(cursor=page.cursor(c), node=Conversation.of(c)) for c in page.conversations]
        return cls(
            edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page, after), count=page.count)


# ---------------------------------------------------------------- metrics


@strawberry.enum
class Interval(Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"


@strawberry.type
class SeriesPoint:
    start: datetime
    group: str | None
    count: int


@strawberry.type
class Metric:
    name: str
    agent_metric: AgentMetric | None
    metric_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: metrics.MetricRow) -> Metric:
        return cls(name=row.name, agent_metric=AgentMetric(row.agent) if row.agent else None, metric_id=row.id)

    @strawberry.field
    async def count(self, info: GraphQLInfo, within: TimeWindow | None = None) -> int:
        window = metrics.parse_window(plain(within) if within else None)
        return await metrics.count_events(info.context.store, self.metric_id, window)

    @strawberry.field
    async def unique_profiles(self, info: GraphQLInfo, within: TimeWindow | None = None) -> int:
        window = metrics.parse_window(plain(within) if within else None)
        return await metrics.count_profiles(info.context.store, self.metric_id, window)

    @strawberry.field
    async def last_seen_at(self, info: GraphQLInfo) -> datetime | None:
        found = await metrics.last_seen(info.context.store, self.metric_id)
        return from_micros(found) if found is not None else None

    @strawberry.field
    async def series(
        self, info: GraphQLInfo, interval: Interval, within: TimeWindow, group_by: str | None = None
    ) -> list[SeriesPoint]:
        window = metrics.parse_window(plain(within))
        assert window is not None
        rows = await metrics.series(info.context.store, self.metric_id, interval.value, window, group_by)
        return [SeriesPoint(start=from_micros(row.start), group=row.group, count=row.count) for row in rows]

    @strawberry.field(description="The activity feed, newest first.")
    async def activity(self, info: GraphQLInfo, first: int | None = EVENTS_PAGE, after: str | None = None
                       ) -> EventConnection:
        page = await event_page(info.context.store, page_size(first, EVENTS_PAGE), after, metric=self.name)
        return EventConnection.of(page, after)
