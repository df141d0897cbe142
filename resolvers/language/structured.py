"""The SegmentFilter input shape (plain JSON, as GraphQL sends it and segments store it) ↔ the AST.

`filter_from_input` checks the shape and reports the input path of what is wrong;
`filter_to_input` writes any AST back in that shape (how saved segments are stored).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from resolvers.errors import InputPath, UserInputError
from resolvers.language import ast as ast
from vocabulary.agent_metrics import canonical_metric_name
from vocabulary.timestamps import format_datetime, parse_datetime

E = TypeVar("E", bound=Enum)
ParseExpression = Callable[[str], ast.Filter]

FILTER_KEYS = ("and", "or", "not", "did", "didNot", "profile", "inSegment", "expression")
COUNT_KEYS: dict[str, type[ast.AtLeast] | type[ast.AtMost] | type[ast.Exactly]] = {
    "atLeast": ast.AtLeast, "atMost": ast.AtMost, "exactly": ast.Exactly,
}
WINDOW_KEYS = ("lastDays", "lastHours", "since", "before", "between", "calendar")
CALENDAR_DEFAULTS = {"offset": 0, "count": 1, "timezone": "UTC"}


def filter_from_input(
    value: Any, parse_expression: ParseExpression | None = None, path: InputPath = ()
) -> ast.Filter:
    """Build the AST of one SegmentFilter given as plain JSON."""
    key, inner = _one_of(value, FILTER_KEYS, "SegmentFilter", path)
    at = (*path, key)
    if key in ("and", "or"):
        items = _list(inner, at)
        built = tuple(filter_from_input(item, parse_expression, (*at, i)) for i, item in enumerate(items))
        return ast.And(built) if key == "and" else ast.Or(built)
    if key == "not":
        return ast.Not(filter_from_input(inner, parse_expression, at))
    if key == "did":
        return ast.Did(_event_condition(inner, at))
    if key == "didNot":
        return ast.DidNot(_event_condition(inner, at))
    if key == "profile":
        return ast.ProfileMatch(_property_condition(inner, at))
    if key == "inSegment":
        return ast.InSegment(_string(inner, at))
    if parse_expression is None:
        raise UserInputError("the text form is not available here", at)
    try:
        return parse_expression(_string(inner, at))
    except UserInputError as error:
        raise error.under(*at) from None


def _event_condition(value: Any, path: InputPath) -> ast.EventCondition:
    fields = _object(value, path, required=("metric",), allowed=(
        "metric", "where", "count", "having", "within", "followedBy", "notFollowedBy"))
    count: ast.Count = ast.AtLeast(1)
    if fields.get("count") is not None:
        key, n = _one_of(fields["count"], tuple(COUNT_KEYS), "CountCondition", (*path, "count"))
        count = COUNT_KEYS[key](_int(n, (*path, "count", key)))
    return ast.EventCondition(
        metric=_metric(fields["metric"], (*path, "metric")),
        where=_where(fields.get("where"), (*path, "where")),
        count=count,
        within=window_from_input(fields["within"], (*path, "within")) if fields.get("within") is not None else None,
        followed_by=_follow_up(fields.get("followedBy"), (*path, "followedBy")),
        not_followed_by=_follow_up(fields.get("notFollowedBy"), (*path, "notFollowedBy")),
        having=_having(fields.get("having"), (*path, "having")),
    )


def _having(value: Any, path: InputPath) -> tuple[ast.AggregateCondition, ...]:
    if value is None:
        return ()
    return tuple(_aggregate_condition(item, (*path, i)) for i, item in enumerate(_list(value, path)))


def _aggregate_condition(value: Any, path: InputPath) -> ast.AggregateCondition:
    fields = _object(value, path, required=("function", "property", "op", "value"),
                     allowed=("function", "property", "op", "value"))
    number = fields["value"]
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise UserInputError("expected a number", (*path, "value"))
    try:
        as_float = float(number)
    except OverflowError:
        as_float = math.inf  # refused by the limits, which name non-finite values
    return ast.AggregateCondition(
        function=_enum(ast.AggregateFunction, fields["function"], "aggregate function", (*path, "function")),
        property=_string(fields["property"], (*path, "property")),
        op=_enum(ast.NumberOp, fields["op"], "number op", (*path, "op")),
        value=as_float,
    )


def _enum(kind: type[E], value: Any, what: str, path: InputPath) -> E:
    name = value.value if isinstance(value, Enum) else value
    try:
        return kind(name)
    except ValueError:
        raise UserInputError(f"unknown {what} {name!r}", path) from None


def _follow_up(value: Any, path: InputPath) -> ast.FollowUp | None:
    if value is None:
        return None
    fields = _object(value, path, required=("metric", "withinHours"), allowed=(
        "metric", "where", "withinHours", "sameProperties"))
    same = fields.get("sameProperties") or []
    return ast.FollowUp(
        metric=_metric(fields["metric"], (*path, "metric")),
        within_hours=_int(fields["withinHours"], (*path, "withinHours")),
        where=_where(fields.get("where"), (*path, "where")),
        same_properties=tuple(_string(k, (*path, "sameProperties", i)) for i, k in enumerate(_list(same, path))),
    )


def window_from_input(value: Any, path: InputPath) -> ast.Window:
    """A TimeWindow given as plain JSON."""
    key, inner = _one_of(value, WINDOW_KEYS, "TimeWindow", path)
    at = (*path, key)
    if key == "lastDays":
        return ast.LastDays(_int(inner, at))
    if key == "lastHours":
        return ast.LastHours(_int(inner, at))
    if key == "since":
        return ast.Since(_datetime(inner, at))
    if key == "before":
        return ast.Before(_datetime(inner, at))
    if key == "calendar":
        return _calendar(inner, at)
    fields = _object(inner, at, required=("from", "to"), allowed=("from", "to"))
    return ast.Between(_datetime(fields["from"], (*at, "from")), _datetime(fields["to"], (*at, "to")))


def _calendar(value: Any, path: InputPath) -> ast.Calendar:
    fields = _object(value, path, required=("unit",), allowed=("unit", "offset", "count", "timezone"))
    given = {key: default if fields.get(key) is None else fields[key] for key, default in CALENDAR_DEFAULTS.items()}
    return ast.Calendar(
        unit=_enum(ast.CalendarUnit, fields["unit"], "calendar unit", (*path, "unit")),
        offset=_int(given["offset"], (*path, "offset")),
        count=_int(given["count"], (*path, "count")),
        timezone=_string(given["timezone"], (*path, "timezone")),
    )


def _where(value: Any, path: InputPath) -> tuple[ast.PropertyCondition, ...]:
    if value is None:
        return ()
    return tuple(_property_condition(item, (*path, i)) for i, item in enumerate(_list(value, path)))


def _property_condition(value: Any, path: InputPath) -> ast.PropertyCondition:
    fields = _object(value, path, required=("property", "op"), allowed=("property", "op", "value"))
    op_name = fields["op"].value if isinstance(fields["op"], ast.PropertyOp) else fields["op"]
    try:
        op = ast.PropertyOp(op_name)
    except ValueError:
        raise UserInputError(f"unknown property op {op_name!r}", (*path, "op")) from None
    return ast.PropertyCondition(_string(fields["property"], (*path, "property")), op, fields.get("value"))


# ---------------------------------------------------------------- shape helpers


def _one_of(value: Any, keys: tuple[str, ...], type_name: str, path: InputPath) -> tuple[str, Any]:
    if not isinstance(value, Mapping):
        raise UserInputError(f"{type_name} must be an object", path)
    given = [k for k, v in value.items() if v is not None]
    unknown = [k for k in given if k not in keys]
    if unknown:
        raise UserInputError(f"{type_name} has no field {unknown[0]!r}", (*path, unknown[0]))
    if len(given) != 1:
        raise UserInputError(one_of_message(type_name, keys, given), path)
    return given[0], value[given[0]]


def one_of_message(type_name: str, keys: Sequence[str], given: Sequence[str]) -> str:
    """What a @oneOf input given no key or several says: the keys it takes, the keys it was given and, for
    a type that has `and` (SegmentFilter), how to require several conditions at once: "SegmentFilter takes
    exactly one of and, or, …, expression; got did, profile: to require both, write and: [{did: …}, {profile: …}]".
    """
    takes = f"{type_name} takes exactly one of {', '.join(keys)}"
    if not given:
        return f"{takes}; got none"
    message = f"{takes}; got {', '.join(given)}"
    if "and" in keys and len(given) > 1:
        both = "both" if len(given) == 2 else "all of them"
        message += f": to require {both}, write and: [{', '.join(f'{{{key}: …}}' for key in given)}]"
    return message


def _object(value: Any, path: InputPath, required: tuple[str, ...], allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UserInputError("expected an object", path)
    for key in value:
        if key not in allowed:
            raise UserInputError(f"unknown field {key!r}", (*path, key))
    for key in required:
        if value.get(key) is None:
            raise UserInputError(f"{key} is required", (*path, key))
    return value


def _list(value: Any, path: InputPath) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise UserInputError("expected a list", path)
    return list(value)


def _string(value: Any, path: InputPath) -> str:
    if not isinstance(value, str):
        raise UserInputError("expected a string", path)
    return value


def _int(value: Any, path: InputPath) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError("expected an integer", path)
    return value


def _metric(value: Any, path: InputPath) -> str:
    name = _string(value, path)
    if not name.strip():
        raise UserInputError("a metric name cannot be empty", path)
    return canonical_metric_name(name)


def _datetime(value: Any, path: InputPath) -> datetime:
    try:
        return parse_datetime(value)
    except (ValueError, TypeError):
        raise UserInputError(f"not an ISO 8601 datetime: {value!r}", path) from None


# ---------------------------------------------------------------- AST → input shape


def filter_to_input(node: ast.Filter) -> dict[str, Any]:
    """The plain-JSON SegmentFilter for an AST (datetimes as ISO strings)."""
    match node:
        case ast.And(items):
            return {"and": [filter_to_input(item) for item in items]}
        case ast.Or(items):
            return {"or": [filter_to_input(item) for item in items]}
        case ast.Not(item):
            return {"not": filter_to_input(item)}
        case ast.Did(condition):
            return {"did": _event_condition_to_input(condition)}
        case ast.DidNot(condition):
            return {"didNot": _event_condition_to_input(condition)}
        case ast.ProfileMatch(condition):
            return {"profile": _property_condition_to_input(condition)}
        case ast.InSegment(segment_id):
            return {"inSegment": segment_id}
    raise TypeError(f"not a filter node: {node!r}")


def _event_condition_to_input(condition: ast.EventCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": condition.metric}
    if condition.where:
        out["where"] = [_property_condition_to_input(c) for c in condition.where]
    if condition.count != ast.AtLeast(1):
        key = next(k for k, cls in COUNT_KEYS.items() if isinstance(condition.count, cls))
        out["count"] = {key: condition.count.n}
    if condition.having:
        out["having"] = [{"function": h.function.value, "property": h.property, "op": h.op.value, "value": h.value}
                         for h in condition.having]
    if condition.within is not None:
        out["within"] = _window_to_input(condition.within)
    if condition.followed_by is not None:
        out["followedBy"] = _follow_up_to_input(condition.followed_by)
    if condition.not_followed_by is not None:
        out["notFollowedBy"] = _follow_up_to_input(condition.not_followed_by)
    return out


def _window_to_input(window: ast.Window) -> dict[str, Any]:
    match window:
        case ast.LastDays(n):
            return {"lastDays": n}
        case ast.LastHours(n):
            return {"lastHours": n}
        case ast.Since(at):
            return {"since": format_datetime(at)}
        case ast.Before(at):
            return {"before": format_datetime(at)}
        case ast.Between(start, end):
            return {"between": {"from": format_datetime(start), "to": format_datetime(end)}}
        case ast.Calendar(unit, offset, count, timezone):
            given = {"offset": offset, "count": count, "timezone": timezone}
            # Defaults left out, as everywhere in the stored shape.
            return {"calendar": {"unit": unit.value,
                                 **{k: v for k, v in given.items() if v != CALENDAR_DEFAULTS[k]}}}
    raise TypeError(f"not a window: {window!r}")


def _follow_up_to_input(follow_up: ast.FollowUp) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": follow_up.metric, "withinHours": follow_up.within_hours}
    if follow_up.where:
        out["where"] = [_property_condition_to_input(c) for c in follow_up.where]
    if follow_up.same_properties:
        out["sameProperties"] = list(follow_up.same_properties)
    return out


def _property_condition_to_input(condition: ast.PropertyCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"property": condition.property, "op": condition.op.value}
    if condition.value is not None:
        out["value"] = condition.value
    return out
