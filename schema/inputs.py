"""Input types of the contract; `plain` turns any of them into the JSON shape the resolvers read."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types.base import has_object_definition
from strawberry.utils.str_converters import to_camel_case

from resolvers.language.ast import PropertyOp as PropertyOpValue
from schema.scalars import JSON

PropertyOp = strawberry.enum(PropertyOpValue, name="PropertyOp")


@strawberry.input
class PropertyCondition:
    property: str
    op: PropertyOp  # type: ignore[valid-type]
    value: JSON | None = None


@strawberry.input(one_of=True)
class CountCondition:
    at_least: int | None = strawberry.UNSET
    at_most: int | None = strawberry.UNSET
    exactly: int | None = strawberry.UNSET


@strawberry.input
class DateRange:
    from_: datetime = strawberry.field(name="from")
    to: datetime


@strawberry.enum(description="The length of a calendar period, in the window's time zone.")
class CalendarUnit(Enum):
    DAY = strawberry.enum_value("DAY", description="From a local midnight to the next (23 or 25 hours across a DST change).")
    WEEK = strawberry.enum_value("WEEK", description="An ISO week, from Monday's local midnight.")
    MONTH = strawberry.enum_value("MONTH", description="From the 1st's local midnight.")


@strawberry.input(description="Whole calendar periods in a time zone, counted back from the one holding asOf.")
class CalendarWindow:
    unit: CalendarUnit = strawberry.field(description="Days, ISO weeks or months.")
    offset: int | None = strawberry.field(
        default=0,
        description="Periods back from the one holding asOf: 0 is the current one (today, this week), 1 the one before.",
    )
    count: int | None = strawberry.field(default=1, description="How many periods, going back from offset.")
    timezone: str | None = strawberry.field(default="UTC", description="An IANA time zone name, e.g. Europe/Paris.")


@strawberry.input(one_of=True)
class TimeWindow:
    last_days: int | None = strawberry.UNSET
    last_hours: int | None = strawberry.UNSET
    since: datetime | None = strawberry.UNSET
    before: datetime | None = strawberry.UNSET
    between: DateRange | None = strawberry.UNSET
    calendar: CalendarWindow | None = strawberry.field(
        default=strawberry.UNSET, description="Whole calendar periods in a time zone: today, last week, this month…"
    )


@strawberry.enum(description="A figure over the qualifying events' values of one property.")
class AggregateFunction(Enum):
    SUM = strawberry.enum_value("SUM", description="The sum of the JSON numbers; 0 when there are none.")
    AVERAGE = strawberry.enum_value("AVERAGE", description="The mean of the JSON numbers; no value when there are none.")
    MIN = strawberry.enum_value("MIN", description="The least JSON number; no value when there are none.")
    MAX = strawberry.enum_value("MAX", description="The greatest JSON number; no value when there are none.")
    DISTINCT_COUNT = strawberry.enum_value(
        "DISTINCT_COUNT", description="How many distinct values are present, each item of a list counted; 0 when none."
    )


@strawberry.enum(description="How a figure compares with a number. Any comparison with no value is false.")
class NumberOp(Enum):
    EQ = strawberry.enum_value("EQ", description="Equal.")
    NEQ = strawberry.enum_value("NEQ", description="Not equal (false when the figure has no value).")
    GT = strawberry.enum_value("GT", description="Greater than.")
    GTE = strawberry.enum_value("GTE", description="Greater than or equal.")
    LT = strawberry.enum_value("LT", description="Less than.")
    LTE = strawberry.enum_value("LTE", description="Less than or equal.")


@strawberry.input(description="A figure over the qualifying events, rounded to 6 decimal places, compared with value.")
class AggregateCondition:
    function: AggregateFunction = strawberry.field(description="SUM, AVERAGE, MIN, MAX or DISTINCT_COUNT.")
    property: str = strawberry.field(description="The event property the figure reads.")
    op: NumberOp = strawberry.field(description="How the figure compares with value.")
    value: float = strawberry.field(description="The number compared with, as given.")


@strawberry.input
class FollowUp:
    metric: str
    within_hours: int
    where: list[PropertyCondition] | None = None
    same_properties: list[str] | None = strawberry.field(
        default=None,
        description="Property keys whose values must be present and equal on both events, e.g. conversation_id.",
    )


@strawberry.input
class EventCondition:
    metric: str
    where: list[PropertyCondition] | None = strawberry.field(default=None, description="All must hold on the same event.")
    count: CountCondition | None = strawberry.field(default=None, description="Default: at least 1.")
    having: list[AggregateCondition] | None = strawberry.field(
        default=None, description="Figures over the qualifying events; all must hold (beside count)."
    )
    within: TimeWindow | None = strawberry.field(default=None, description="Default: over all time.")
    followed_by: FollowUp | None = None
    not_followed_by: FollowUp | None = None


@strawberry.input(one_of=True)
class SegmentFilter:
    and_: list[SegmentFilter] | None = strawberry.field(name="and", default=strawberry.UNSET)
    or_: list[SegmentFilter] | None = strawberry.field(name="or", default=strawberry.UNSET)
    not_: SegmentFilter | None = strawberry.field(name="not", default=strawberry.UNSET)
    did: EventCondition | None = strawberry.UNSET
    did_not: EventCondition | None = strawberry.UNSET
    profile: PropertyCondition | None = strawberry.UNSET
    in_segment: strawberry.ID | None = strawberry.UNSET
    expression: str | None = strawberry.field(
        default=strawberry.UNSET,
        description='The same language as text, e.g. did "Placed Order" at least 2 times in the last 30 days',
    )


@strawberry.input
class ProfileKey:
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None


@strawberry.input
class ProfileInput:
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    properties: JSON | None = None


@strawberry.input
class TrackEventInput:
    metric: str
    profile: ProfileKey
    occurred_at: datetime | None = strawberry.field(default=None, description="Default: the time the server received it.")
    properties: JSON | None = None
    unique_id: str | None = strawberry.field(
        default=None, description="Idempotency key: a second event with the same metric and uniqueId is a duplicate."
    )


@strawberry.input
class CreateSegmentInput:
    name: str
    filter: SegmentFilter
    description: str | None = None


@strawberry.input
class UpdateSegmentInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    filter: SegmentFilter | None = strawberry.UNSET


def plain(value: Any) -> Any:
    """An input object as plain JSON with GraphQL field names; unset and null fields left out."""
    if has_object_definition(value):
        out = {}
        for field in value.__strawberry_definition__.fields:
            item = getattr(value, field.python_name)
            if item is None or item is strawberry.UNSET:
                continue
            out[field.graphql_name or to_camel_case(field.python_name)] = plain(item)
        return out
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value
