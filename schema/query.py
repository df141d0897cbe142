"""Query root: profiles and audiences, events, saved segments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from resolvers import audiences, conversations, events, explanations, metrics, profiles, segments
from schema.analytics import Conversation, ConversationConnection, ConversationStatus, Metric
from schema.arguments import After, AsOf, EventMetric, First
from schema.context import GraphQLInfo
from schema.explanations import MembershipExplanation
from schema.inputs import ProfileKey, SegmentFilter, TimeWindow, plain
from schema.paging import CONVERSATIONS_PAGE, EVENTS_PAGE, PROFILES_PAGE, page_size
from schema.types import (
    CHANGES_AFTER,
    CHANGES_AS_OF,
    CHANGES_FIRST,
    SINCE,
    AudienceChangeConnection,
    EventConnection,
    Profile,
    ProfileConnection,
    Segment,
    audience_changes,
    audience_page,
    compiled_audience,
)

# Argument types of this root's fields, with their descriptions.
Filter = Annotated[SegmentFilter, strawberry.argument(description="Who is in the audience (see SegmentFilter).")]
SegmentId = Annotated[strawberry.ID, strawberry.argument(description="The segment's id.")]


@strawberry.type(description="Reads: profiles and audiences, events, saved segments, conversations and metrics.")
class Query:
    @strawberry.field(description="A profile by id; null when none has it.")
    async def profile(
        self, info: GraphQLInfo, id: Annotated[strawberry.ID, strawberry.argument(description="The profile's id.")]
    ) -> Profile | None:
        key = segments.database_id(id)
        if key is None:
            return None
        row = await info.context.profiles.load(key)
        return Profile.from_row(row) if row is not None else None

    @strawberry.field(description="A profile by email, phone number or external id (the first given that is set); null "
                                  "when none matches.")
    async def profile_by_key(
        self, info: GraphQLInfo, key: Annotated[ProfileKey, strawberry.argument(description="The identifiers to look for.")]
    ) -> Profile | None:
        row = await profiles.profile_by_key(info.context.store, plain(key))
        return Profile.from_row(row) if row is not None else None

    @strawberry.field(description="The audience of a filter; all profiles when filter is null. Ordered by id.")
    async def profiles(
        self,
        info: GraphQLInfo,
        filter: Annotated[SegmentFilter | None, strawberry.argument(
            description="Who is in the audience (see SegmentFilter); null: every profile.")] = None,
        first: First = PROFILES_PAGE,
        after: After = None,
        as_of: AsOf = None,
    ) -> ProfileConnection:
        return await audience_page(info, plain(filter) if filter else None, as_of, page_size(first, PROFILES_PAGE), after,
                                   ("filter",))

    @strawberry.field(description="Checks a filter and returns the SQL it compiles to.")
    async def explain(self, info: GraphQLInfo, filter: Filter, as_of: AsOf = None) -> str:
        audience = await compiled_audience(info, plain(filter), as_of, ("filter",))
        return await audiences.explained(info.context.store, audience)

    @strawberry.field(description="Why one profile is, or is not, in a filter's audience at asOf (default: now): "
                      "the filter's tree as given, each condition's truth for the profile and its evidence "
                      "(qualifying events, windows as instants, values read). An unknown profile is NOT_FOUND.")
    async def explain_membership(
        self, info: GraphQLInfo,
        profile: Annotated[strawberry.ID, strawberry.argument(description="The profile's id.")],
        filter: Annotated[SegmentFilter, strawberry.argument(description="The audience's filter, explained as given.")],
        as_of: Annotated[datetime | None, strawberry.argument(description="The instant evaluated at; default now.")] = None,
    ) -> MembershipExplanation:
        found = await explanations.explain_membership(info.context.store, profile, plain(filter), as_of)
        return MembershipExplanation.of(found)

    @strawberry.field(description="Who entered and who left a filter's audience between two instants: ENTERED are "
                      "the profiles in it at asOf (default: now) and not at since, EXITED the reverse, both evaluated "
                      "over the store as it is now; in profile id order, keyset-paginated. since must be before asOf.")
    async def audience_changes(
        self,
        info: GraphQLInfo,
        filter: Annotated[SegmentFilter, strawberry.argument(description="The audience's filter.")],
        since: Annotated[datetime, SINCE],
        as_of: Annotated[datetime | None, CHANGES_AS_OF] = None,
        first: Annotated[int | None, CHANGES_FIRST] = PROFILES_PAGE,
        after: Annotated[str | None, CHANGES_AFTER] = None,
    ) -> AudienceChangeConnection:
        return await audience_changes(info, plain(filter), since, as_of, page_size(first, PROFILES_PAGE), after,
                                      ("filter",))

    @strawberry.field(description="A saved segment by id; null when none has it.")
    async def segment(self, info: GraphQLInfo, id: SegmentId) -> Segment | None:
        rows = await info.context.store.fetch(segments.segments_query(id), replica=False)
        return Segment.from_row(rows[0]) if rows else None

    @strawberry.field(description="Every saved segment, by id.")
    async def segments(self, info: GraphQLInfo) -> list[Segment]:
        async with info.context.store.connect() as connection:
            return [Segment.from_row(row) for row in await segments.segment_rows(connection)]

    @strawberry.field(description="A conversation by its conversation_id; null when no event has it.")
    async def conversation(
        self, info: GraphQLInfo, id: Annotated[str, strawberry.argument(description="The conversation_id.")]
    ) -> Conversation | None:
        found = await conversations.conversation(info.context.store, id)
        return Conversation.of(found) if found is not None else None

    @strawberry.field(description="Conversations, most recently started first (then by id).")
    async def conversations(
        self,
        info: GraphQLInfo,
        status: Annotated[ConversationStatus | None, strawberry.argument(
            description="Only conversations with this status; null: all.")] = None,
        channel: Annotated[str | None, strawberry.argument(
            description="Only conversations on this channel (exact); null: all.")] = None,
        within: Annotated[TimeWindow | None, strawberry.argument(
            description="Only conversations started inside this window, up to now; null: all time.")] = None,
        first: First = CONVERSATIONS_PAGE,
        after: After = None,
    ) -> ConversationConnection:
        page = await conversations.conversation_page(
            info.context.store, page_size(first, CONVERSATIONS_PAGE), after, status=status.name if status else None,
            channel=channel, within=plain(within) if within else None)
        return ConversationConnection.of(page, after)

    @strawberry.field(description="Every metric: the four Customer Agent metrics first (even without events), then the "
                                  "others by name.")
    async def metrics(self, info: GraphQLInfo) -> list[Metric]:
        return [Metric.of(row) for row in await metrics.list_metrics(info.context.store)]

    @strawberry.field(description="A metric by any spelling of its name; null for a custom metric with no events.")
    async def metric(
        self, info: GraphQLInfo, name: Annotated[str, strawberry.argument(description="The metric's name (case-insensitive).")]
    ) -> Metric | None:
        found = await metrics.find_metric(info.context.store, name)
        return Metric.of(found) if found is not None else None

    @strawberry.field(description="Events, newest first.")
    async def events(
        self, info: GraphQLInfo, metric: EventMetric = None, first: First = EVENTS_PAGE, after: After = None
    ) -> EventConnection:
        page = await events.event_page(info.context.store, page_size(first, EVENTS_PAGE), after, metric=metric)
        return EventConnection.of(page, after)
