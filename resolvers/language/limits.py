"""The limits and value rules of SEMANTICS.md, checked on an AST before anything runs."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime

from resolvers.errors import InputPath, UserInputError
from resolvers.language import ast as ast
from resolvers.language.calendar import calendar_bounds, time_zone
from vocabulary.timestamps import now_utc, parse_datetime

MAX_DEPTH = 32
MAX_CONDITIONS = 200
MAX_IN_ITEMS = 1000
MAX_COUNT = 1_000_000
MAX_DAYS = 36_500
MAX_HOURS = 876_000
MAX_PAGE = 1000
MAX_HAVING = 10
MAX_CALENDAR_PERIODS = 36_500
MIN_INT, MAX_INT = -(2**63), 2**63 - 1

ORDERING_OPS = {ast.PropertyOp.GT, ast.PropertyOp.GTE, ast.PropertyOp.LT, ast.PropertyOp.LTE}
LIST_OPS = {ast.PropertyOp.IN, ast.PropertyOp.NOT_IN}
VALUELESS_OPS = {ast.PropertyOp.EXISTS, ast.PropertyOp.NOT_EXISTS}


def check_filter(root: ast.Filter, path: InputPath = (), as_of: datetime | None = None) -> None:
    """Raise UserInputError, with the input path at fault, for the first broken rule; calendar windows
    must start after year 1 counted back from `as_of` (default: now)."""
    conditions = 0
    for node_path, depth, node in iter_filters(root, path):
        if depth > MAX_DEPTH:
            raise UserInputError(f"filter nesting exceeds {MAX_DEPTH} levels", node_path)
        match node:
            case ast.Did(condition) | ast.DidNot(condition):
                key = "did" if isinstance(node, ast.Did) else "didNot"
                conditions += 1 + _check_event_condition(condition, (*node_path, key), as_of)
            case ast.ProfileMatch(condition):
                conditions += 1
                check_property_condition(condition, (*node_path, "profile"), profile=True)
            case ast.InSegment():
                conditions += 1
        if conditions > MAX_CONDITIONS:
            raise UserInputError(f"a filter may hold at most {MAX_CONDITIONS} conditions", node_path)


def expanded_size(root: ast.Filter, segments: Mapping[str, ast.Filter]) -> tuple[int, int]:
    """(conditions, depth) of `root` expanded through the saved segments it reaches: each distinct segment's
    conditions counted once, its depth taken at its deepest use (an inSegment stands where its root goes)."""
    depths: dict[str, int] = {}

    def depth_of(node: ast.Filter) -> int:
        deepest = 0
        for _, depth, inner in iter_filters(node):
            if isinstance(inner, ast.InSegment) and inner.segment_id in segments:
                if inner.segment_id not in depths:
                    depths[inner.segment_id] = depth_of(segments[inner.segment_id])
                depth += depths[inner.segment_id] - 1
            deepest = max(deepest, depth)
        return deepest

    reached = ast.reached_segments(root, segments)
    return own_conditions(root) + sum(own_conditions(segments[s]) for s in reached), depth_of(root)


def check_expanded(root: ast.Filter, segments: Mapping[str, ast.Filter], path: InputPath, name: str = "the filter") -> None:
    """UserInputError at `path` when `root` expanded through its saved segments is past the limits."""
    conditions, depth = expanded_size(root, segments)
    if depth > MAX_DEPTH:
        raise UserInputError(f"{name}, with the saved segments it uses, nests {depth} levels: at most {MAX_DEPTH}", path)
    if conditions > MAX_CONDITIONS:
        raise UserInputError(
            f"{name}, with the saved segments it uses, holds {conditions} conditions: at most {MAX_CONDITIONS}", path)


def own_conditions(root: ast.Filter) -> int:
    """The conditions a filter holds itself (saved segments it names count one each)."""
    conditions = 0
    for _, _, node in iter_filters(root):
        match node:
            case ast.Did(condition) | ast.DidNot(condition):
                follow_ups = [f for f in (condition.followed_by, condition.not_followed_by) if f is not None]
                conditions += 1 + len(condition.where) + len(condition.having) + sum(len(f.where) for f in follow_ups)
            case ast.ProfileMatch() | ast.InSegment():
                conditions += 1
    return conditions


def iter_filters(node: ast.Filter, path: InputPath = (), depth: int = 1) -> Iterator[tuple[InputPath, int, ast.Filter]]:
    """Every filter node with its input path and nesting depth, parents first."""
    yield path, depth, node
    match node:
        case ast.And(items) | ast.Or(items):
            key = "and" if isinstance(node, ast.And) else "or"
            for i, item in enumerate(items):
                yield from iter_filters(item, (*path, key, i), depth + 1)
        case ast.Not(item):
            yield from iter_filters(item, (*path, "not"), depth + 1)


def check_page_size(first: int, path: InputPath = ("first",)) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise UserInputError(f"first must be between 1 and {MAX_PAGE}", path)


def _check_event_condition(condition: ast.EventCondition, path: InputPath, as_of: datetime | None = None) -> int:
    for i, where in enumerate(condition.where):
        check_property_condition(where, (*path, "where", i))
    count_key = type(condition.count).__name__[0].lower() + type(condition.count).__name__[1:]
    _check_range(condition.count.n, 0, MAX_COUNT, (*path, "count", count_key))
    if len(condition.having) > MAX_HAVING:
        raise UserInputError(f"at most {MAX_HAVING} having conditions per event condition, got {len(condition.having)}",
                             (*path, "having"))
    for i, aggregate in enumerate(condition.having):
        check_property_name(aggregate.property, (*path, "having", i, "property"))
        if not math.isfinite(aggregate.value):
            raise UserInputError(f"a having value must be a finite number, got {aggregate.value}", (*path, "having", i, "value"))
    if condition.within is not None:
        check_window(condition.within, (*path, "within"), as_of)
    conditions = len(condition.where) + len(condition.having)
    for key, follow_up in (("followedBy", condition.followed_by), ("notFollowedBy", condition.not_followed_by)):
        if follow_up is None:
            continue
        _check_range(follow_up.within_hours, 1, MAX_HOURS, (*path, key, "withinHours"))
        for i, where in enumerate(follow_up.where):
            check_property_condition(where, (*path, key, "where", i))
        for i, name in enumerate(follow_up.same_properties):
            check_property_name(name, (*path, key, "sameProperties", i))
        conditions += len(follow_up.where)
    return conditions


def check_window(window: ast.Window, path: InputPath, as_of: datetime | None = None) -> None:
    """A window's bounds; a calendar window's zone must be known and its start, from `as_of` (default: now),
    after year 1."""
    match window:
        case ast.Calendar(_, offset, count, timezone):
            at = (*path, "calendar")
            _check_range(offset, 0, MAX_CALENDAR_PERIODS, (*at, "offset"))
            _check_range(count, 1, MAX_CALENDAR_PERIODS, (*at, "count"))
            try:
                time_zone(timezone)
            except UserInputError as error:
                raise error.under(*at, "timezone") from None
            try:
                calendar_bounds(window, as_of or now_utc())
            except UserInputError as error:
                raise error.under(*at) from None
        case ast.LastDays(n):
            _check_range(n, 1, MAX_DAYS, (*path, "lastDays"))
        case ast.LastHours(n):
            _check_range(n, 1, MAX_HOURS, (*path, "lastHours"))
        case ast.Between(start, end) if start >= end:
            raise UserInputError("between needs from < to", (*path, "between"))


def check_property_condition(condition: ast.PropertyCondition, path: InputPath, profile: bool = False) -> None:
    """Values must suit their op: a scalar, a list of scalars for IN, a string for STARTS_WITH."""
    check_property_name(condition.property, (*path, "property"))
    op, value, at = condition.op, condition.value, (*path, "value")
    if op in VALUELESS_OPS:
        return
    if op in LIST_OPS:
        if not isinstance(value, list):
            raise UserInputError(f"{op.value} needs a list value", at)
        if len(value) > MAX_IN_ITEMS:
            raise UserInputError(f"an IN list may hold at most {MAX_IN_ITEMS} items", at)
        for i, item in enumerate(value):
            _check_scalar(item, op, (*at, i))
    else:
        _check_scalar(value, op, at)
    if op in ORDERING_OPS and isinstance(value, bool):
        raise UserInputError(f"{op.value} compares numbers or strings, not booleans", at)
    if op is ast.PropertyOp.STARTS_WITH and not isinstance(value, str):
        raise UserInputError("STARTS_WITH needs a string value", at)
    if profile and condition.property == "createdAt":
        if op in (ast.PropertyOp.CONTAINS, ast.PropertyOp.NOT_CONTAINS, ast.PropertyOp.STARTS_WITH):
            raise UserInputError(f"createdAt is a datetime: {op.value} does not apply", (*path, "op"))
        for item in value if isinstance(value, list) else [value]:
            try:
                parse_datetime(item)
            except (TypeError, ValueError):
                raise UserInputError("createdAt is compared with ISO 8601 datetimes", at) from None


def _check_scalar(value: object, op: ast.PropertyOp, path: InputPath) -> None:
    if value is None:
        raise UserInputError(f"{op.value} needs a value", path)
    if not isinstance(value, str | int | float | bool):
        raise UserInputError(f"{op.value} compares with a string, number or boolean", path)
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        # Both stores bind integers as 64-bit; a larger one would fail in the database, not here.
        raise UserInputError("a whole number in a filter must fit in 64 bits; write a larger one with a decimal point",
                             path)


def check_property_name(name: str, path: InputPath) -> None:
    """Property names are bound as parameters, but SQLite's JSON paths quote them: no quotes inside."""
    if not name or any(c in name for c in '"`\\') or len(name) > 200:
        raise UserInputError("a property name must be 1-200 characters without \", ` or \\", path)


def _check_range(n: int, low: int, high: int, path: InputPath) -> None:
    if not low <= n <= high:
        raise UserInputError(f"must be between {low} and {high}, got {n}", path)
