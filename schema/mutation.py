"""Mutation root: ingest (events, profiles) and saved segments."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from resolvers import events, ingest, profiles, segments
from resolvers.errors import UserInputError
from resolvers.language.ast import metric_names
from resolvers.language.structured import filter_from_input
from schema.context import GraphQLInfo
from schema.execution import COERCED_ARGUMENTS
from schema.inputs import CreateSegmentInput, ProfileInput, TrackEventInput, UpdateSegmentInput, plain
from schema.types import Event, Profile, Segment, event_from_row, warn_of_unknown_metrics


def _event_input(fields: dict[str, Any]) -> ingest.EventInput:
    """A TrackEventInput given as plain JSON (GraphQL field names)."""
    # By position: keyword arguments make building a NamedTuple slower (thousands per batch: docs/performance.md).
    return ingest.EventInput(fields["metric"], fields["profile"], fields.get("occurredAt"), fields.get("properties"),
                             fields.get("uniqueId"))


@strawberry.type
class TrackEventsPayload:
    accepted: int
    duplicates: int


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def track_event(self, info: GraphQLInfo, input: TrackEventInput) -> Event:
        store = info.context.store
        try:
            result = await ingest.track_events(store, [_event_input(plain(input))])
        except ingest.BatchError as error:
            (problem,) = error.problems
            raise UserInputError(problem["message"], ["input", *problem["path"][2:]]) from None
        if not result.ids:  # a duplicate: answer with the event stored first
            return event_from_row(await events.event_by_unique_id(store, input.metric, input.unique_id or ""))
        return event_from_row((await events.events_by_id(store, result.ids))[0])

    @strawberry.mutation(metadata={COERCED_ARGUMENTS: True})
    async def track_events(
        self, info: GraphQLInfo,
        events: Annotated[list[dict[str, Any]], strawberry.argument(graphql_type=list[TrackEventInput])],
    ) -> TrackEventsPayload:
        """The batch arrives as the plain dicts graphql-core checked and coerced (COERCED_ARGUMENTS, see
        schema/execution.py), which ingest reads: Strawberry's input objects were a large part of a batch's
        CPU (docs/performance.md)."""
        result = await ingest.track_events(info.context.store, [_event_input(event) for event in events])
        return TrackEventsPayload(accepted=result.accepted, duplicates=result.duplicates)

    @strawberry.mutation
    async def upsert_profile(self, info: GraphQLInfo, input: ProfileInput) -> Profile:
        store = info.context.store
        profile_id = await ingest.upsert_profile(store, plain(input))
        (row,) = await profiles.profiles_by_id(store, [profile_id])
        return Profile.from_row(row)

    @strawberry.mutation
    async def create_segment(self, info: GraphQLInfo, input: CreateSegmentInput) -> Segment:
        store = info.context.store
        segment_id = await segments.create_segment(store, input.name, input.description, plain(input.filter))
        return await _segment(info, segment_id, warn=True)

    @strawberry.mutation
    async def update_segment(self, info: GraphQLInfo, id: strawberry.ID, input: UpdateSegmentInput) -> Segment:
        changes = plain(input)
        if input.description is None:  # an explicit null clears the description
            changes["description"] = None
        segment_id = await segments.update_segment(info.context.store, id, changes)
        return await _segment(info, segment_id, warn="filter" in changes)

    @strawberry.mutation
    async def delete_segment(self, info: GraphQLInfo, id: strawberry.ID) -> bool:
        return await segments.delete_segment(info.context.store, id)


async def _segment(info: GraphQLInfo, segment_id: int, warn: bool = False) -> Segment:
    """The segment as saved; `warn`: with a warning for each metric its filter names that has no events."""
    async with info.context.store.connect() as connection:
        (row,) = await segments.segment_rows(connection, str(segment_id))
    if warn:
        await warn_of_unknown_metrics(info, metric_names(filter_from_input(row.filter)))
    return Segment.from_row(row)
