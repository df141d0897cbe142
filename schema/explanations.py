"""Output types of explainMembership: one profile's truth for each condition of a filter, with evidence."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from resolvers import explanations
from schema.inputs import AggregateFunction
from schema.scalars import JSON
from schema.types import Event, event_from_row
from vocabulary.timestamps import from_micros


@strawberry.enum(description="What a node of a filter is.")
class FilterKind(Enum):
    AND = strawberry.enum_value("AND", description="All children hold (no children: holds).")
    OR = strawberry.enum_value("OR", description="Any child holds (no children: does not hold).")
    NOT = strawberry.enum_value("NOT", description="Its one child does not hold.")
    DID = strawberry.enum_value("DID", description="The count of qualifying events satisfies the condition's count.")
    DID_NOT = strawberry.enum_value("DID_NOT", description="Exactly not DID of the same condition.")
    PROFILE = strawberry.enum_value("PROFILE", description="A condition on a profile field or property.")
    IN_SEGMENT = strawberry.enum_value("IN_SEGMENT", description="Membership of a saved segment: its filter is "
                                                                 "the one child.")


@strawberry.type(description="A `having` figure of an event condition, as compared.")
class AggregateValue:
    function: AggregateFunction = strawberry.field(description="The figure's function.")
    property: str = strawberry.field(description="The event property it reads.")
    value: float | None = strawberry.field(description="The figure over the qualifying events, rounded to 6 decimal "
                                                       "places; null when it has none (AVERAGE, MIN, MAX of no numbers).")


@strawberry.type(description="One condition of a filter, evaluated for one profile at asOf, with its evidence.")
class ConditionExplanation:
    kind: FilterKind = strawberry.field(description="What kind of condition this is.")
    expression: str = strawberry.field(description="This condition in the text language.")
    holds: bool = strawberry.field(description="Whether this condition holds for the profile at asOf.")
    count: int | None = strawberry.field(description="DID / DID_NOT: the number of qualifying events.")
    aggregates: list[AggregateValue] = strawberry.field(
        description="DID / DID_NOT: each `having` figure, in order (value null when it has none).")
    window_start: datetime | None = strawberry.field(
        description="DID / DID_NOT: the window's first instant; null when it has no lower bound.")
    window_end: datetime | None = strawberry.field(
        description="DID / DID_NOT: the earlier of the window's end and asOf (asOf when it has no end).")
    events: list[Event] = strawberry.field(
        description="DID / DID_NOT: the qualifying events, newest first (ties: higher id first), at most 20.")
    value: JSON | None = strawberry.field(description="PROFILE: the value the condition read; null when absent.")
    children: list[ConditionExplanation] = strawberry.field(
        description="The conditions this one combines: AND and OR their items, NOT its one, IN_SEGMENT the "
                    "segment's filter; none for the others.")

    @classmethod
    def of(cls, found: explanations.Explanation) -> ConditionExplanation:
        return cls(
            kind=FilterKind(found.kind), expression=found.expression, holds=found.holds, count=found.count,
            aggregates=[AggregateValue(function=AggregateFunction(f.aggregate.function.value), property=f.aggregate.property,
                                       value=f.value) for f in found.figures],
            window_start=from_micros(found.window_start) if found.window_start is not None else None,
            window_end=from_micros(found.window_end) if found.window_end is not None else None,
            events=[event_from_row(row) for row in found.events], value=found.value,
            children=[cls.of(child) for child in found.children],
        )


@strawberry.type(description="Why a profile is, or is not, in a filter's audience at an instant.")
class MembershipExplanation:
    member: bool = strawberry.field(description="Whether the profile is in profiles(filter, asOf): root.holds.")
    as_of: datetime = strawberry.field(description="The instant evaluated at.")
    root: ConditionExplanation = strawberry.field(description="The filter's tree as given, each node explained.")

    @classmethod
    def of(cls, found: explanations.MembershipExplanation) -> MembershipExplanation:
        return cls(member=found.member, as_of=found.as_of, root=ConditionExplanation.of(found.root))
