"""Query root: profiles and audiences, events, saved segments."""

from __future__ import annotations

from datetime import datetime

import strawberry

from resolvers import audiences, conversations, events, metrics, profiles, segments
from schema.analytics import Conversation, ConversationConnection, ConversationStatus, Metric
from schema.context import GraphQLInfo
from schema.inputs import ProfileKey, SegmentFilter, TimeWindow, plain
from schema.paging import CONVERSATIONS_PAGE, EVENTS_PAGE, PROFILES_PAGE, page_size
from schema.types import EventConnection, Profile, ProfileConnection, Segment, audience_page, compiled_audience


@strawberry.type
class Query:
    @strawberry.field
    async def profile(self, info: GraphQLInfo, id: strawberry.ID) -> Profile | None:
        key = segments.database_id(id)
        if key is None:
            return None
        row = await info.context.profiles.load(key)
        return Profile.from_row(row) if row is not None else None

    @strawberry.field
    async def profile_by_key(self, info: GraphQLInfo, key: ProfileKey) -> Profile | None:
        row = await profiles.profile_by_key(info.context.store, plain(key))
        return Profile.from_row(row) if row is not None else None

    @strawberry.field(description="The audience of a filter; all profiles when filter is null. Ordered by id.")
    async def profiles(
        self,
        info: GraphQLInfo,
        filter: SegmentFilter | None = None,
        first: int | None = PROFILES_PAGE,
        after: str | None = None,
        as_of: datetime | None = None,
    ) -> ProfileConnection:
        return await audience_page(info, plain(filter) if filter else None, as_of, page_size(first, PROFILES_PAGE), after,
                                   ("filter",))

    @strawberry.field(description="Checks a filter and returns the SQL it compiles to.")
    async def explain(self, info: GraphQLInfo, filter: SegmentFilter, as_of: datetime | None = None) -> str:
        audience = await compiled_audience(info, plain(filter), as_of, ("filter",))
        return await audiences.explained(info.context.store, audience)

    @strawberry.field
    async def segment(self, info: GraphQLInfo, id: strawberry.ID) -> Segment | None:
        rows = await info.context.store.fetch(segments.segments_query(id), replica=False)
        return Segment.from_row(rows[0]) if rows else None

    @strawberry.field
    async def segments(self, info: GraphQLInfo) -> list[Segment]:
        async with info.context.store.connect() as connection:
            return [Segment.from_row(row) for row in await segments.segment_rows(connection)]

    @strawberry.field
    async def conversation(self, info: GraphQLInfo, id: str) -> Conversation | None:
        found = await conversations.conversation(info.context.store, id)
        return Conversation.of(found) if found is not None else None

    @strawberry.field
    async def conversations(
        self,
        info: GraphQLInfo,
        status: ConversationStatus | None = None,
        channel: str | None = None,
        within: TimeWindow | None = None,
        first: int | None = CONVERSATIONS_PAGE,
        after: str | None = None,
    ) -> ConversationConnection:
        page = await conversations.conversation_page(
            info.context.store, page_size(first, CONVERSATIONS_PAGE), after, status=status.value if status else None,
            channel=channel, within=plain(within) if within else None)
        return ConversationConnection.of(page, after)

    @strawberry.field
    async def metrics(self, info: GraphQLInfo) -> list[Metric]:
        return [Metric.of(row) for row in await metrics.list_metrics(info.context.store)]

    @strawberry.field
    async def metric(self, info: GraphQLInfo, name: str) -> Metric | None:
        found = await metrics.find_metric(info.context.store, name)
        return Metric.of(found) if found is not None else None

    @strawberry.field
    async def events(
        self, info: GraphQLInfo, metric: str | None = None, first: int | None = EVENTS_PAGE, after: str | None = None
    ) -> EventConnection:
        page = await events.event_page(info.context.store, page_size(first, EVENTS_PAGE), after, metric=metric)
        return EventConnection.of(page, after)
