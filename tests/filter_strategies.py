"""Hypothesis strategies for random filter ASTs that pass `resolvers.language.limits.check_filter`.

Vocabularies (metric names, property names, values) are parameters, so a test can draw wide ones
(text round trips) or small ones (SQL against a reference evaluator, where names must collide).
Sizes are bounded; ASTs come out as the parser would build them (canonical metric names, value
None for EXISTS/NOT_EXISTS).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from resolvers.language import ast as ast
from resolvers.language import limits as limits
from vocabulary.agent_metrics import canonical_metric_name
from vocabulary.timestamps import format_datetime

P = ast.PropertyOp
_TEXT_OPS = (P.CONTAINS, P.NOT_CONTAINS, P.STARTS_WITH)  # not for the profile's createdAt, a datetime


def json_scalars(max_text: int = 12) -> SearchStrategy[Any]:
    """Strings (any text), integers, finite floats and booleans: the scalars a condition compares with."""
    return st.one_of(
        st.text(max_size=max_text),
        st.integers(limits.MIN_INT, limits.MAX_INT),  # the limits refuse whole numbers past 64 bits
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )


def datetimes(start_year: int = 1970, end_year: int = 2200) -> SearchStrategy[datetime]:
    """Aware UTC datetimes, microseconds included."""
    return st.datetimes(datetime(start_year, 1, 1), datetime(end_year, 1, 1), timezones=st.just(UTC))


def _small_or_any(low: int, high: int) -> SearchStrategy[int]:
    """Mostly small numbers (useful against a small store), sometimes anything in range."""
    return st.one_of(st.integers(low, min(high, low + 3)), st.integers(low, high))


@st.composite
def property_conditions(
    draw: st.DrawFn,
    properties: Sequence[str],
    values: SearchStrategy[Any],
    *,
    profile: bool = False,
    ops: Sequence[ast.PropertyOp] = tuple(P),
) -> ast.PropertyCondition:
    """A condition valid for its op: scalars, lists for IN/NOT_IN, strings for STARTS_WITH, no bools to order.

    STARTS_WITH takes a prefix of a drawn string value; the profile's `createdAt` takes ISO datetimes and no
    text ops.
    """
    name = draw(st.sampled_from(properties))
    created_at = profile and name == "createdAt"
    op = draw(st.sampled_from([op for op in ops if not (created_at and op in _TEXT_OPS)] or ops))
    scalars = datetimes().map(format_datetime) if created_at else values
    if op in limits.VALUELESS_OPS:
        return ast.PropertyCondition(name, op)
    if op in limits.LIST_OPS:
        return ast.PropertyCondition(name, op, draw(st.lists(scalars, max_size=4)))
    value = draw(scalars)
    if op is P.STARTS_WITH and not isinstance(value, str):
        value = draw(st.text(st.characters(exclude_characters="\x00"), max_size=3))  # the API refuses U+0000
    elif op is P.STARTS_WITH:
        value = value[: draw(st.integers(0, len(value)))]
    elif op in limits.ORDERING_OPS and isinstance(value, bool):
        value = int(value)
    return ast.PropertyCondition(name, op, value)


def counts(max_count: int = limits.MAX_COUNT) -> SearchStrategy[ast.Count]:
    n = _small_or_any(0, max_count)
    return st.one_of(n.map(ast.AtLeast), n.map(ast.AtMost), n.map(ast.Exactly))


TIME_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Beirut")


def calendar_windows(
    time_zones: Sequence[str] = TIME_ZONES, max_periods: int = limits.MAX_CALENDAR_PERIODS
) -> SearchStrategy[ast.Calendar]:
    """Calendar windows, mostly of a few periods near the current one (today, last week, …)."""
    return st.builds(
        ast.Calendar,
        unit=st.sampled_from(list(ast.CalendarUnit)),
        offset=_small_or_any(0, max_periods),
        count=_small_or_any(1, max_periods),
        timezone=st.sampled_from(time_zones),
    )


def windows(
    times: SearchStrategy[datetime] | None = None, calendars: SearchStrategy[ast.Calendar] | None = None
) -> SearchStrategy[ast.Window]:
    """Every kind of window; calendar windows as often as all the others together."""
    times = datetimes() if times is None else times
    pairs = st.lists(times, min_size=2, max_size=2, unique=True).map(sorted)
    rolling = st.one_of(
        _small_or_any(1, limits.MAX_DAYS).map(ast.LastDays),
        _small_or_any(1, limits.MAX_HOURS).map(ast.LastHours),
        times.map(ast.Since),
        times.map(ast.Before),
        pairs.map(lambda pair: ast.Between(*pair)),
    )
    return st.one_of(rolling, calendar_windows(max_periods=300) if calendars is None else calendars)


def having_values() -> SearchStrategy[float]:
    """Finite floats, mostly small round ones a figure may meet exactly."""
    return st.one_of(st.integers(-3, 12).map(float), st.integers(-500, 2000).map(lambda n: n / 100),
                     st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def aggregate_conditions(
    draw: st.DrawFn, properties: Sequence[str], values: SearchStrategy[float] | None = None
) -> ast.AggregateCondition:
    return ast.AggregateCondition(
        function=draw(st.sampled_from(list(ast.AggregateFunction))),
        property=draw(st.sampled_from(properties)),
        op=draw(st.sampled_from(list(ast.NumberOp))),
        value=draw(having_values() if values is None else values),
    )


@st.composite
def follow_ups(
    draw: st.DrawFn,
    metrics: Sequence[str],
    properties: Sequence[str],
    values: SearchStrategy[Any],
    max_where: int = 2,
    hours: SearchStrategy[int] | None = None,
) -> ast.FollowUp:
    return ast.FollowUp(
        metric=draw(st.sampled_from(_metric_names(metrics))),
        within_hours=draw(hours if hours is not None else _small_or_any(1, limits.MAX_HOURS)),
        where=tuple(draw(st.lists(property_conditions(properties, values), max_size=max_where))),
        same_properties=tuple(draw(st.lists(st.sampled_from(properties), max_size=2, unique=True))),
    )


@st.composite
def event_conditions(
    draw: st.DrawFn,
    metrics: Sequence[str],
    properties: Sequence[str],
    values: SearchStrategy[Any],
    *,
    times: SearchStrategy[datetime] | None = None,
    max_where: int = 2,
    max_count: int = limits.MAX_COUNT,
    follow_up_hours: SearchStrategy[int] | None = None,
    max_having: int = 2,
    calendars: SearchStrategy[ast.Calendar] | None = None,
    having_values: SearchStrategy[float] | None = None,
) -> ast.EventCondition:
    """A did/didNot condition: optional where, count, having (half the time), window, followedBy and notFollowedBy."""
    follow_up = follow_ups(metrics, properties, values, max_where, follow_up_hours)
    having = st.lists(aggregate_conditions(properties, having_values), min_size=1, max_size=max(max_having, 1))
    if not max_having:
        having = st.nothing()
    return ast.EventCondition(
        metric=draw(st.sampled_from(_metric_names(metrics))),
        where=tuple(draw(st.lists(property_conditions(properties, values), max_size=max_where))),
        count=draw(st.just(ast.AtLeast(1)) | counts(max_count)),
        within=draw(st.none() | windows(times, calendars)),
        followed_by=draw(st.none() | follow_up),
        not_followed_by=draw(st.none() | follow_up),
        having=tuple(draw(st.just([]) | having)),
    )


def filters(
    metrics: Sequence[str],
    properties: Sequence[str],
    values: SearchStrategy[Any],
    segment_ids: Sequence[str] = (),
    max_leaves: int = 8,
    *,
    profile_properties: Sequence[str] | None = None,
    times: SearchStrategy[datetime] | None = None,
    max_where: int = 2,
    max_count: int = limits.MAX_COUNT,
    follow_up_hours: SearchStrategy[int] | None = None,
    max_having: int = 2,
    calendars: SearchStrategy[ast.Calendar] | None = None,
) -> SearchStrategy[ast.Filter]:
    """Filter trees of and/or/not (lists of 0-3 items) over did, didNot, profile and inSegment leaves.

    `profile_properties` (default: `properties`) names profile fields, e.g. ast.PROFILE_BUILTINS.
    """
    if max_leaves * (1 + 3 * max_where + max_having) > limits.MAX_CONDITIONS:
        raise ValueError("max_leaves and max_where could exceed the limit on conditions")
    for name in (*properties, *(profile_properties or ())):
        limits.check_property_condition(ast.PropertyCondition(name, P.EXISTS), ())  # raises on a bad name
    conditions = event_conditions(
        metrics, properties, values, times=times, max_where=max_where, max_count=max_count,
        follow_up_hours=follow_up_hours, max_having=max_having, calendars=calendars,
    )
    leaves: list[SearchStrategy[ast.Filter]] = [
        conditions.map(ast.Did),
        conditions.map(ast.DidNot),
        property_conditions(profile_properties or properties, values, profile=True).map(ast.ProfileMatch),
    ]
    if segment_ids:
        leaves.append(st.sampled_from(segment_ids).map(ast.InSegment))

    def extend(children: SearchStrategy[ast.Filter]) -> SearchStrategy[ast.Filter]:
        items = st.lists(children, max_size=3).map(tuple)
        return st.one_of(items.map(ast.And), items.map(ast.Or), children.map(ast.Not))

    return st.recursive(st.one_of(leaves), extend, max_leaves=max_leaves)


def _metric_names(metrics: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(canonical_metric_name(m) for m in metrics))
    if not names or not all(names):
        raise ValueError("metric names must be given and not blank")
    return names
