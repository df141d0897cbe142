"""Output types of conversations and the Metrics analytics view."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from resolvers import conversations, metrics
from resolvers.events import event_page
from schema.arguments import After, First
from schema.context import GraphQLInfo
from schema.inputs import TimeWindow, plain
from schema.paging import EVENTS_PAGE, page_size
from schema.types import AgentMetric, Event, EventConnection, PageInfo, Profile, event_from_row
from vocabulary.timestamps import from_micros

Window = Annotated[TimeWindow | None, strawberry.argument(description="Only events inside this window, up to now; "
                                                                      "null: all time.")]

# ---------------------------------------------------------------- conversations


@strawberry.enum(description="Where a conversation stands, by the latest of its resolved and escalated events.")
class ConversationStatus(Enum):
    OPEN = strawberry.enum_value("OPEN", description="Neither resolved nor escalated yet.")
    RESOLVED = strawberry.enum_value("RESOLVED", description="Its latest resolved/escalated event is a resolution.")
    ESCALATED = strawberry.enum_value("ESCALATED", description="Its latest resolved/escalated event is an escalation.")


@strawberry.type(description="The Customer Agent events that share a conversation_id, summed up.")
class Conversation:
    id: str = strawberry.field(description="Its conversation_id.")
    channel: str | None = strawberry.field(description="The channel its events name (e.g. SMS, web).")
    status: ConversationStatus = strawberry.field(description="OPEN, RESOLVED or ESCALATED.")
    started_at: datetime | None = strawberry.field(description="When it started (its started event, else its first event).")
    ended_at: datetime | None = strawberry.field(description="When it was resolved or escalated; null while OPEN.")
    initial_skill: str | None = strawberry.field(description="The skill it started with.")
    final_skill: str | None = strawberry.field(description="The skill that resolved it.")
    escalation_reason: str | None = strawberry.field(description="Why it was escalated.")
    tags: list[str] = strawberry.field(description="The union of its events' tags.")
    recommended_products: list[str] = strawberry.field(
        description="The products recommended in it, in order of first recommendation.")
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

    @strawberry.field(description="Who had the conversation.")
    async def profile(self, info: GraphQLInfo) -> Profile:
        return Profile.from_row(await info.context.profiles.load(self.profile_id))

    @strawberry.field(description="Oldest first.")
    def events(self) -> list[Event]:
        return [event_from_row(row) for row in self.event_rows]


@strawberry.type(description="A conversation and its cursor.")
class ConversationEdge:
    cursor: str = strawberry.field(description="Pass it as `after` to continue after this conversation.")
    node: Conversation = strawberry.field(description="The conversation.")


@strawberry.type(description="A page of conversations, most recently started first.")
class ConversationConnection:
    edges: list[ConversationEdge] = strawberry.field(description="The page's conversations, each with its cursor.")
    page_info: PageInfo = strawberry.field(description="Where the page is: hasNextPage, and endCursor for the next page.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The page's conversations (edges without cursors).")
    def nodes(self) -> list[Conversation]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many conversations the whole list has, every page together.")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def of(cls, page: conversations.ConversationPage, after: str | None) -> ConversationConnection:
        edges = [ConversationEdge(cursor=page.cursor(c), node=Conversation.of(c)) for c in page.conversations]
        return cls(
            edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page, after), count=page.count)


# ---------------------------------------------------------------- metrics


@strawberry.enum(description="The width of a series' buckets, in UTC.")
class Interval(Enum):
    HOUR = strawberry.enum_value("HOUR", description="Hours, from the start of each UTC hour.")
    DAY = strawberry.enum_value("DAY", description="Days, from UTC midnight.")
    WEEK = strawberry.enum_value("WEEK", description="Weeks, from Monday 00:00 UTC.")


@strawberry.type(description="One bucket of a metric's series.")
class SeriesPoint:
    start: datetime = strawberry.field(description="The bucket's first instant (UTC); it lasts one interval.")
    group: str | None = strawberry.field(description="The groupBy property's value as text; null without groupBy, or when "
                                                     "absent or not a string, integer or boolean.")
    count: int = strawberry.field(description="How many events fall in the bucket (and group).")


@strawberry.type(description="A metric: a name events are tracked under, with its counts and activity (evaluated now).")
class Metric:
    name: str = strawberry.field(description="Its name (the canonical one for the four agent metrics).")
    agent_metric: AgentMetric | None = strawberry.field(description="Which Customer Agent metric it is; null for others.")
    metric_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, row: metrics.MetricRow) -> Metric:
        return cls(name=row.name, agent_metric=AgentMetric(row.agent) if row.agent else None, metric_id=row.id)

    @strawberry.field(description="How many events it has, up to now.")
    async def count(self, info: GraphQLInfo, within: Window = None) -> int:
        window = metrics.parse_window(plain(within) if within else None)
        return await metrics.count_events(info.context.store, self.metric_id, window)

    @strawberry.field(description="How many profiles did it, up to now.")
    async def unique_profiles(self, info: GraphQLInfo, within: Window = None) -> int:
        window = metrics.parse_window(plain(within) if within else None)
        return await metrics.count_profiles(info.context.store, self.metric_id, window)

    @strawberry.field(description="When its latest event up to now happened; null without events.")
    async def last_seen_at(self, info: GraphQLInfo) -> datetime | None:
        found = await metrics.last_seen(info.context.store, self.metric_id)
        return from_micros(found) if found is not None else None

    @strawberry.field(description="Its events counted per bucket of time, oldest first: every bucket of the window "
                                  "(empty ones too), or with groupBy only non-empty (bucket, group) pairs.")
    async def series(
        self, info: GraphQLInfo,
        interval: Annotated[Interval, strawberry.argument(description="The buckets' width.")],
        within: Annotated[TimeWindow, strawberry.argument(description="Which events: the window (from now) to count over.")],
        group_by: Annotated[str | None, strawberry.argument(
            description="A property key to count each of its values apart; null: one group.")] = None,
    ) -> list[SeriesPoint]:
        window = metrics.parse_window(plain(within))
        assert window is not None
        rows = await metrics.series(info.context.store, self.metric_id, interval.name, window, group_by)
        return [SeriesPoint(start=from_micros(row.start), group=row.group, count=row.count) for row in rows]

    @strawberry.field(description="The activity feed, newest first.")
    async def activity(self, info: GraphQLInfo, first: First = EVENTS_PAGE, after: After = None) -> EventConnection:
        page = await event_page(info.context.store, page_size(first, EVENTS_PAGE), after, metric=self.name)
        return EventConnection.of(page, after)
