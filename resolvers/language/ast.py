"""The segment filter language as a typed, immutable tree (no I/O, no SQL).

Structured GraphQL input, stored segments and the text form all become this tree;
the SQL compiler, the text printer and the tests' reference evaluator all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias

JsonValue: TypeAlias = Any  # None | bool | int | float | str | list | dict


class PropertyOp(StrEnum):
    EQ = "EQ"
    NEQ = "NEQ"
    IN = "IN"
    NOT_IN = "NOT_IN"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    EXISTS = "EXISTS"
    NOT_EXISTS = "NOT_EXISTS"
    STARTS_WITH = "STARTS_WITH"


# Each negated op means exactly "not" its positive twin (SEMANTICS.md).
NEGATED_OPS: dict[PropertyOp, PropertyOp] = {
    PropertyOp.NEQ: PropertyOp.EQ,
    PropertyOp.NOT_IN: PropertyOp.IN,
    PropertyOp.NOT_CONTAINS: PropertyOp.CONTAINS,
    PropertyOp.NOT_EXISTS: PropertyOp.EXISTS,
}


@dataclass(frozen=True)
class PropertyCondition:
    property: str
    op: PropertyOp
    value: JsonValue = None


# ---------------------------------------------------------------- counts


@dataclass(frozen=True)
class AtLeast:
    n: int


@dataclass(frozen=True)
class AtMost:
    n: int


@dataclass(frozen=True)
class Exactly:
    n: int


Count: TypeAlias = AtLeast | AtMost | Exactly


# ---------------------------------------------------------------- time windows


@dataclass(frozen=True)
class LastDays:
    n: int


@dataclass(frozen=True)
class LastHours:
    n: int


@dataclass(frozen=True)
class Since:
    at: datetime


@dataclass(frozen=True)
class Before:
    at: datetime


@dataclass(frozen=True)
class Between:
    start: datetime
    end: datetime


class CalendarUnit(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass(frozen=True)
class Calendar:
    """Whole calendar periods in an IANA time zone: period 0 holds asOf, period k is the k-th before it."""

    unit: CalendarUnit
    offset: int = 0
    count: int = 1
    timezone: str = "UTC"


Window: TypeAlias = LastDays | LastHours | Since | Before | Between | Calendar


# ---------------------------------------------------------------- aggregates


class AggregateFunction(StrEnum):
    SUM = "SUM"
    AVERAGE = "AVERAGE"
    MIN = "MIN"
    MAX = "MAX"
    DISTINCT_COUNT = "DISTINCT_COUNT"


class NumberOp(StrEnum):
    EQ = "EQ"
    NEQ = "NEQ"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"


@dataclass(frozen=True)
class AggregateCondition:
    """A figure over the qualifying events' values of `property`, compared with `value` (a finite float)."""

    function: AggregateFunction
    property: str
    op: NumberOp
    value: float


# ---------------------------------------------------------------- event conditions


@dataclass(frozen=True)
class FollowUp:
    metric: str
    within_hours: int
    where: tuple[PropertyCondition, ...] = ()
    same_properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventCondition:
    metric: str
    where: tuple[PropertyCondition, ...] = ()
    count: Count = AtLeast(1)
    within: Window | None = None
    followed_by: FollowUp | None = None
    not_followed_by: FollowUp | None = None
    # Last, so that positional construction by older code keeps its meaning.
    having: tuple[AggregateCondition, ...] = ()


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


@dataclass(frozen=True)
class Did:
    condition: EventCondition


@dataclass(frozen=True)
class DidNot:
    condition: EventCondition


@dataclass(frozen=True)
class ProfileMatch:
    condition: PropertyCondition


@dataclass(frozen=True)
class InSegment:
    segment_id: str


Filter: TypeAlias = And | Or | Not | Did | DidNot | ProfileMatch | InSegment

# Profile fields that are columns rather than keys of `properties`.
PROFILE_BUILTINS = ("email", "phoneNumber", "externalId", "firstName", "lastName", "createdAt")


def segment_reference_counts(node: Filter) -> dict[str, int]:
    """How many times the filter names each saved segment directly."""
    counts: dict[str, int] = {}
    stack = [node]
    while stack:
        match stack.pop():
            case And(items) | Or(items):
                stack.extend(items)
            case Not(item):
                stack.append(item)
            case InSegment(segment_id):
                counts[segment_id] = counts.get(segment_id, 0) + 1
    return counts


def reached_segments(node: Filter, segments: Mapping[str, Filter]) -> set[str]:
    """The saved segments a filter names, directly or through the definitions in `segments`."""
    reached: set[str] = set()
    frontier = segment_references(node)
    while frontier:
        reached |= frontier
        frontier = set().union(*(segment_references(segments[s]) for s in frontier if s in segments)) - reached
    return reached


def segment_references(node: Filter) -> set[str]:
    """The saved-segment ids a filter names directly."""
    match node:
        case And(items) | Or(items):
            return set().union(*(segment_references(item) for item in items))
        case Not(item):
            return segment_references(item)
        case InSegment(segment_id):
            return {segment_id}
        case _:
            return set()


def count_holds(count: Count, n: int) -> bool:
    """Whether `n` qualifying events satisfy a count."""
    match count:
        case AtLeast(k):
            return n >= k
        case AtMost(k):
            return n <= k
        case Exactly(k):
            return n == k
    raise TypeError(f"not a count: {count!r}")


def event_conditions(node: Filter, segments: Mapping[str, Filter] | None = None) -> list[EventCondition]:
    """The distinct event conditions of a filter, in order; also those of the saved segments in `segments`
    that it reaches."""
    found: list[EventCondition] = []  # a list: conditions holding lists are not hashable
    stack = [node]
    seen: set[str] = set()
    while stack:
        match stack.pop():
            case And(items) | Or(items):
                stack.extend(reversed(items))
            case Not(item):
                stack.append(item)
            case Did(condition) | DidNot(condition) if condition not in found:
                found.append(condition)
            case InSegment(segment_id) if segments and segment_id in segments and segment_id not in seen:
                seen.add(segment_id)
                stack.append(segments[segment_id])
    return found


def metric_names(node: Filter, segments: Mapping[str, Filter] | None = None) -> list[str]:
    """The metric names a filter's event conditions and follow-ups name, in order, once each; also those of
    the saved segments in `segments` that it reaches."""
    names: dict[str, None] = {}
    for condition in event_conditions(node, segments):
        follow_ups = (condition.followed_by, condition.not_followed_by)
        names.update(dict.fromkeys([condition.metric, *(f.metric for f in follow_ups if f is not None)]))
    return list(names)
