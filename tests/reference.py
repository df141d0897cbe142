"""A pure-Python evaluator of SEMANTICS.md, written for clarity, to check the SQL compiler against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resolvers import filter_ast as ast
from server.agent_metrics import metric_key
from server.timestamps import MICROS_PER_DAY, MICROS_PER_HOUR, parse_datetime, to_micros

MISSING = object()


@dataclass
class RefEvent:
    profile_id: int
    metric: str
    ts: int  # microseconds
    properties: dict[str, Any]


@dataclass
class RefProfile:
    id: int
    fields: dict[str, Any]  # email, phoneNumber, externalId, firstName, lastName (None when unset)
    created_at: int
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    profiles: list[RefProfile]
    events: list[RefEvent]
    segments: Mapping[str, ast.Filter] = field(default_factory=dict)

    def members(self, node: ast.Filter | None, as_of: int) -> list[int]:
        return sorted(p.id for p in self.profiles if node is None or self.holds(node, p, as_of))

    def holds(self, node: ast.Filter, profile: RefProfile, as_of: int) -> bool:
        match node:
            case ast.And(items):
                return all(self.holds(item, profile, as_of) for item in items)
            case ast.Or(items):
                return any(self.holds(item, profile, as_of) for item in items)
            case ast.Not(item):
                return not self.holds(item, profile, as_of)
            case ast.Did(condition):
                return count_holds(condition.count, len(self.qualifying(condition, profile.id, as_of)))
            case ast.DidNot(condition):
                return not count_holds(condition.count, len(self.qualifying(condition, profile.id, as_of)))
            case ast.ProfileMatch(condition):
                return profile_condition_holds(condition, profile)
            case ast.InSegment(segment_id):
                return self.holds(self.segments[segment_id], profile, as_of)
        raise TypeError(node)

    def qualifying(self, condition: ast.EventCondition, profile_id: int, as_of: int) -> list[RefEvent]:
        mine = [e for e in self.events if e.profile_id == profile_id and e.ts <= as_of]
        found = []
        for event in mine:
            if metric_key(event.metric) != metric_key(condition.metric):
                continue
            if not in_window(event.ts, condition.within, as_of):
                continue
            if not all(condition_holds(c, event.properties.get(c.property, MISSING)) for c in condition.where):
                continue
            if condition.followed_by and not has_follow_up(event, condition.followed_by, mine):
                continue
            if condition.not_followed_by:
                window_closed = event.ts + condition.not_followed_by.within_hours * MICROS_PER_HOUR <= as_of
                if not window_closed or has_follow_up(event, condition.not_followed_by, mine):
                    continue
            found.append(event)
        return found


def has_follow_up(event: RefEvent, follow_up: ast.FollowUp, candidates: list[RefEvent]) -> bool:
    limit = event.ts + follow_up.within_hours * MICROS_PER_HOUR
    for later in candidates:
        if metric_key(later.metric) != metric_key(follow_up.metric) or not event.ts < later.ts <= limit:
            continue
        if not all(condition_holds(c, later.properties.get(c.property, MISSING)) for c in follow_up.where):
            continue
        if all(present_and_equal(event.properties, later.properties, key) for key in follow_up.same_properties):
            return True
    return False


def present_and_equal(one: dict[str, Any], other: dict[str, Any], key: str) -> bool:
    a, b = one.get(key), other.get(key)
    return a is not None and b is not None and json_equal(a, b)


def count_holds(count: ast.Count, n: int) -> bool:
    match count:
        case ast.AtLeast(k):
            return n >= k
        case ast.AtMost(k):
            return n <= k
        case ast.Exactly(k):
            return n == k
    raise TypeError(count)


def in_window(ts: int, window: ast.Window | None, as_of: int) -> bool:
    match window:
        case None:
            return True
        case ast.LastDays(n):
            return as_of - n * MICROS_PER_DAY <= ts <= as_of
        case ast.LastHours(n):
            return as_of - n * MICROS_PER_HOUR <= ts <= as_of
        case ast.Since(at):
            return ts >= to_micros(at)
        case ast.Before(at):
            return ts < to_micros(at)
        case ast.Between(start, end):
            return to_micros(start) <= ts < to_micros(end)
    raise TypeError(window)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: same type, numbers by value (1 == 1.0), booleans never equal to numbers."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def condition_holds(condition: ast.PropertyCondition, value: Any) -> bool:
    """The table of SEMANTICS.md; `value` is MISSING when the key is absent (null counts as absent)."""
    positive = ast.NEGATED_OPS.get(condition.op)
    if positive is not None:
        return not condition_holds(ast.PropertyCondition(condition.property, positive, condition.value), value)
    present = value is not MISSING and value is not None
    wanted = condition.value
    match condition.op:
        case ast.PropertyOp.EXISTS:
            return present
        case ast.PropertyOp.EQ:
            return present and json_equal(value, wanted)
        case ast.PropertyOp.IN:
            return present and any(json_equal(value, item) for item in wanted)
        case ast.PropertyOp.CONTAINS:
            if isinstance(value, list):
                return any(json_equal(item, wanted) for item in value)
            return isinstance(value, str) and isinstance(wanted, str) and wanted in value
        case ast.PropertyOp.STARTS_WITH:
            return isinstance(value, str) and isinstance(wanted, str) and value.startswith(wanted)
    comparable = (is_number(value) and is_number(wanted)) or (isinstance(value, str) and isinstance(wanted, str))
    if not present or not comparable:
        return False
    return {
        ast.PropertyOp.GT: value > wanted, ast.PropertyOp.GTE: value >= wanted,
        ast.PropertyOp.LT: value < wanted, ast.PropertyOp.LTE: value <= wanted,
    }[condition.op]


def profile_condition_holds(condition: ast.PropertyCondition, profile: RefProfile) -> bool:
    if condition.property == "createdAt":
        def micros(value: Any) -> Any:
            return [micros(v) for v in value] if isinstance(value, list) else to_micros(parse_datetime(value))
        wanted = micros(condition.value) if condition.value is not None else None
        timed = ast.PropertyCondition(condition.property, condition.op, wanted)
        return condition_holds(timed, profile.created_at)
    if condition.property in profile.fields:
        value = profile.fields[condition.property]
        return condition_holds(condition, MISSING if value is None else value)
    return condition_holds(condition, profile.properties.get(condition.property, MISSING))
