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


@strawberry.type(description="What a trackEvents batch stored.")
class TrackEventsPayload:
    accepted: int = strawberry.field(description="Events stored.")
    duplicates: int = strawberry.field(description="Events not stored again: their metric and uniqueId were already stored.")


@strawberry.type(description="Writes: ingest events and profiles, and save segments (each needs an API key's scope when "
                             "keys exist: track, or manage for segments).")
class Mutation:
    @strawberry.mutation(description="Stores one event (creating its profile when no profile matches its key) and returns "
                                     "it; a duplicate returns the event stored first.")
    async def track_event(
        self, info: GraphQLInfo, input: Annotated[TrackEventInput, strawberry.argument(description="The event.")]
    ) -> Event:
        store = info.context.store
        try:
            result = await ingest.track_events(store, [_event_input(plain(input))])
        except ingest.BatchError as error:
            (problem,) = error.problems
            raise UserInputError(problem["message"], ["input", *problem["path"][2:]]) from None
        if not result.ids:  # a duplicate: answer with the event stored first
            return event_from_row(await events.event_by_unique_id(store, input.metric, input.unique_id or ""))
        return event_from_row((await events.events_by_id(store, result.ids))[0])

    @strawberry.mutation(metadata={COERCED_ARGUMENTS: True},
                         description="Stores a batch of events, all or nothing: when any is invalid nothing is stored, "
                                     "and the error lists every bad index with its reason.")
    async def track_events(
        self, info: GraphQLInfo,
        events: Annotated[list[dict[str, Any]], strawberry.argument(
            graphql_type=list[TrackEventInput], description="Up to 10,000 events.")],
    ) -> TrackEventsPayload:
        """The batch arrives as the plain dicts graphql-core checked and coerced (COERCED_ARGUMENTS, see
        schema/execution.py), which ingest reads: Strawberry's input objects were a large part of a batch's
        CPU (docs/performance.md)."""
        result = await ingest.track_events(info.context.store, [_event_input(event) for event in events])
        return TrackEventsPayload(accepted=result.accepted, duplicates=result.duplicates)

    @strawberry.mutation(description="Creates a profile, or updates the one its identifiers find (setting the fields given, "
                                     "merging properties key by key).")
    async def upsert_profile(
        self, info: GraphQLInfo, input: Annotated[ProfileInput, strawberry.argument(description="The profile's fields.")]
    ) -> Profile:
        store = info.context.store
        profile_id = await ingest.upsert_profile(store, plain(input))
        (row,) = await profiles.profiles_by_id(store, [profile_id])
        return Profile.from_row(row)

    @strawberry.mutation(description="Saves a filter as a segment. A filter naming a metric with no events is saved, "
                                     "with a warning in extensions.warnings.")
    async def create_segment(
        self, info: GraphQLInfo, input: Annotated[CreateSegmentInput, strawberry.argument(description="The segment.")]
    ) -> Segment:
        store = info.context.store
        segment_id = await segments.create_segment(store, input.name, input.description, plain(input.filter))
        return await _segment(info, segment_id, warn=True)

    @strawberry.mutation(description="Changes a saved segment: the fields given.")
    async def update_segment(
        self, info: GraphQLInfo, id: Annotated[strawberry.ID, strawberry.argument(description="The segment's id.")],
        input: Annotated[UpdateSegmentInput, strawberry.argument(description="The changes.")],
    ) -> Segment:
        changes = plain(input)
        if input.description is None:  # an explicit null clears the description
            changes["description"] = None
        segment_id = await segments.update_segment(info.context.store, id, changes)
        return await _segment(info, segment_id, warn="filter" in changes)

    @strawberry.mutation(description="Deletes a saved segment and returns true. An unknown id is NOT_FOUND; a segment "
                                     "that other segments use is not deleted (BAD_USER_INPUT naming them).")
    async def delete_segment(
        self, info: GraphQLInfo, id: Annotated[strawberry.ID, strawberry.argument(description="The segment's id.")]
    ) -> bool:
        return await segments.delete_segment(info.context.store, id)


async def _segment(info: GraphQLInfo, segment_id: int, warn: bool = False) -> Segment:
    """The segment as saved; `warn`: with a warning for each metric its filter names that has no events."""
    async with info.context.store.connect() as connection:
        (row,) = await segments.segment_rows(connection, str(segment_id))
    if warn:
        await warn_of_unknown_metrics(info, metric_names(filter_from_input(row.filter)))
    return Segment.from_row(row)
