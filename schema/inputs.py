"""Input types of the contract; `plain` turns any of them into the JSON shape the resolvers read.

Descriptions say what the contract means (shared/contract/SEMANTICS.md, docs/filters.md), since
GraphiQL's docs explorer is where a developer first reads them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum, EnumMeta
from typing import Any, cast

import strawberry
from strawberry.types.base import has_object_definition
from strawberry.utils.str_converters import to_camel_case

from resolvers.language.ast import PropertyOp as PropertyOpValue
from schema.scalars import JSON

PROPERTY_OPS = {
    "EQ": "v is present and equal to value, of the same JSON type (1 and 1.0 are equal numbers).",
    "NEQ": "Not EQ: also holds when v is absent.",
    "IN": "value is a list and v equals one of its items (at most 1,000).",
    "NOT_IN": "Not IN: also holds when v is absent.",
    "CONTAINS": "v is a list holding an item equal to value, or v and value are strings and value is a substring of v.",
    "NOT_CONTAINS": "Not CONTAINS: also holds when v is absent.",
    "GT": "v > value, both numbers or both strings (compared as text: ISO datetimes compare correctly).",
    "GTE": "v ≥ value, both numbers or both strings.",
    "LT": "v < value, both numbers or both strings.",
    "LTE": "v ≤ value, both numbers or both strings.",
    "EXISTS": "v is present and not null; value is ignored.",
    "NOT_EXISTS": "v is absent or null; value is ignored.",
    "STARTS_WITH": "v and value are strings and v starts with value (case-sensitive).",
}
# The resolvers' ops, each with its description (a KeyError here names an op left undescribed).
PropertyOp = strawberry.enum(
    cast(EnumMeta, Enum("PropertyOp", {op.name: strawberry.enum_value(op.value, description=PROPERTY_OPS[op.name])
                                       for op in PropertyOpValue})),
    description="How a PropertyCondition compares the value v it reads with its `value`. Ops on mismatched types are "
                "false (and their negations true); string comparisons are case-sensitive.",
)


@strawberry.input(description="A condition on one JSON value v: an event's property (in `where`) or a profile's field or "
                              "property (in `SegmentFilter.profile`). v is absent when the key is missing.")
class PropertyCondition:
    property: str = strawberry.field(description="The key to read. On a profile, the built-in names email, phoneNumber, "
                                                 "externalId, firstName, lastName and createdAt are its fields; any other name "
                                                 "is a key of its properties.")
    op: PropertyOp = strawberry.field(description="The comparison.")  # type: ignore[valid-type]
    value: JSON | None = strawberry.field(default=None, description="Any JSON value (a list for IN and NOT_IN); ignored by "
                                                                    "EXISTS and NOT_EXISTS.")


@strawberry.input(one_of=True, description="How many qualifying events a `did` needs: exactly one of the three (@oneOf). "
                                           "Each is 0…1,000,000. A profile with no qualifying events has a count of 0, so "
                                           "atMost and exactly 0 include it.")
class CountCondition:
    at_least: int | None = strawberry.field(default=strawberry.UNSET, description="count ≥ n (the default is atLeast: 1).")
    at_most: int | None = strawberry.field(default=strawberry.UNSET, description="count ≤ n.")
    exactly: int | None = strawberry.field(default=strawberry.UNSET, description="count = n.")


@strawberry.input(description="A range of instants, from ≤ t < to: from included, to excluded.")
class DateRange:
    from_: datetime = strawberry.field(name="from", description="The first instant inside (included).")
    to: datetime = strawberry.field(description="The first instant after the range (excluded); must be later than from.")


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


@strawberry.input(one_of=True, description="Which events count, by their time: exactly one of these (@oneOf). Measured back "
                                           "from asOf; events after asOf never count.")
class TimeWindow:
    last_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="asOf − n×24h ≤ t ≤ asOf: both ends included. 1…36,500.")
    last_hours: int | None = strawberry.field(
        default=strawberry.UNSET, description="asOf − n hours ≤ t ≤ asOf: both ends included. 1…876,000.")
    since: datetime | None = strawberry.field(default=strawberry.UNSET, description="t ≥ since (included), up to asOf.")
    before: datetime | None = strawberry.field(default=strawberry.UNSET, description="t < before (excluded).")
    between: DateRange | None = strawberry.field(default=strawberry.UNSET, description="from ≤ t < to.")
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




@strawberry.input(description="A later event that must (followedBy) or must not (notFollowedBy) come after each qualifying "
                              "event X: of metric `metric`, with X.occurredAt < t ≤ X.occurredAt + withinHours.")
class FollowUp:
    metric: str = strawberry.field(description="The follow-up's metric name (case-insensitive; the agent metrics' short names "
                                               "work too).")
    within_hours: int = strawberry.field(description="How long after X it may come, in hours: 1…876,000. With notFollowedBy, "
                                                     "X counts only once this time has fully passed by asOf.")
    where: list[PropertyCondition] | None = strawberry.field(default=None, description="All must hold on the follow-up event.")
    same_properties: list[str] | None = strawberry.field(
        default=None,
        description="Property keys whose values must be present and equal on both events, e.g. conversation_id.",
    )


@strawberry.input(description="Events of one metric that a profile did: its qualifying events are those of `metric`, up to "
                              "asOf, inside `within`, on which every `where` holds (and that meet the follow-up "
                              "conditions); `count` says how many it needs.")
class EventCondition:
    metric: str = strawberry.field(description="The metric name, e.g. \"Placed Order\" (case-insensitive; the agent metrics' "
                                               "short names work too). A name with no events is not an error: it holds for no "
                                               "one, and the response warns of it in extensions.warnings.")
    where: list[PropertyCondition] | None = strawberry.field(default=None, description="All must hold on the same event.")
    count: CountCondition | None = strawberry.field(default=None, description="Default: at least 1.")
    having: list[AggregateCondition] | None = strawberry.field(
        default=None, description="Figures over the qualifying events; all must hold (beside count)."
    )
    within: TimeWindow | None = strawberry.field(default=None, description="Default: over all time.")
    followed_by: FollowUp | None = strawberry.field(default=None, description="Only events followed by this one count.")
    not_followed_by: FollowUp | None = strawberry.field(
        default=None, description="Only events not followed by this one count, once its window has passed.")


@strawberry.input(
    one_of=True,
    description="Who is in an audience. @oneOf: give exactly one key; to combine conditions, list them in "
                "`and: [...]` (or `or: [...]`), e.g. {and: [{did: {metric: \"Placed Order\"}}, {profile: {property: "
                "\"email\", op: EXISTS}}]}. The same filter in the text language: {expression: \"did \\\"Placed Order\\\" "
                "at least 2 times in the last 30 days and not did \\\"Viewed Product\\\" in the last 7 days\"}. "
                "At most 32 levels deep and 200 conditions. Reference: docs/filters.md.",
)
class SegmentFilter:
    and_: list[SegmentFilter] | None = strawberry.field(
        name="and", default=strawberry.UNSET, description="All hold (an empty list holds for everyone).")
    or_: list[SegmentFilter] | None = strawberry.field(
        name="or", default=strawberry.UNSET, description="Any holds (an empty list holds for no one).")
    not_: SegmentFilter | None = strawberry.field(name="not", default=strawberry.UNSET, description="It does not hold.")
    did: EventCondition | None = strawberry.field(
        default=strawberry.UNSET, description="The profile's count of qualifying events satisfies the condition's count.")
    did_not: EventCondition | None = strawberry.field(default=strawberry.UNSET, description="Exactly {not: {did: …}}.")
    profile: PropertyCondition | None = strawberry.field(
        default=strawberry.UNSET, description="A condition on the profile's fields or properties.")
    in_segment: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Membership of that saved segment, evaluated at the same asOf; it must exist.")
    expression: str | None = strawberry.field(
        default=strawberry.UNSET,
        description='The same language as text, e.g. did "Placed Order" at least 2 times in the last 30 days',
    )


@strawberry.input(description="Finds a profile: by email, then phoneNumber, then externalId. Give at least one.")
class ProfileKey:
    email: str | None = strawberry.field(default=None, description="The email, as sent (trimmed).")
    phone_number: str | None = strawberry.field(default=None, description="The phone number.")
    external_id: str | None = strawberry.field(default=None, description="Your system's id for the person.")


@strawberry.input(description="A profile to create or update, found by its identifiers (as ProfileKey). Fields left out "
                              "are kept.")
class ProfileInput:
    email: str | None = strawberry.field(default=None, description="The email; set when no other profile holds it.")
    phone_number: str | None = strawberry.field(default=None, description="The phone number; set when no other profile holds it.")
    external_id: str | None = strawberry.field(default=None, description="Your system's id; set when no other profile holds it.")
    first_name: str | None = strawberry.field(default=None, description="The first name.")
    last_name: str | None = strawberry.field(default=None, description="The last name.")
    properties: JSON | None = strawberry.field(default=None, description="Merged into the profile's properties key by key; "
                                                                         "a null value deletes its key.")


@strawberry.input(description="One event to store.")
class TrackEventInput:
    metric: str = strawberry.field(description="The metric name, e.g. \"Placed Order\"; the four agent metrics' other "
                                               "spellings are stored under their canonical names.")
    profile: ProfileKey = strawberry.field(description="Whose event: the profile found by this key, created when none matches.")
    occurred_at: datetime | None = strawberry.field(default=None, description="Default: the time the server received it.")
    properties: JSON | None = strawberry.field(
        default=None, description="A JSON object. The agent metrics' keys are stored in snake_case (conversation_id, …) and "
                                  "checked; other metrics keep their keys as sent.")
    unique_id: str | None = strawberry.field(
        default=None, description="Idempotency key: a second event with the same metric and uniqueId is a duplicate."
    )


@strawberry.input(description="A segment to save.")
class CreateSegmentInput:
    name: str = strawberry.field(description="Its name, not empty.")
    filter: SegmentFilter = strawberry.field(description="Who its members are; a filter that would refer to the segment "
                                                         "itself, directly or through others, is refused.")
    description: str | None = strawberry.field(default=None, description="Free text.")


@strawberry.input(description="Changes to a saved segment: the fields given are set, the others kept.")
class UpdateSegmentInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="A new name, not empty.")
    description: str | None = strawberry.field(default=strawberry.UNSET, description="A new description; null clears it.")
    filter: SegmentFilter | None = strawberry.field(default=strawberry.UNSET, description="A new filter.")


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
