"""Filter AST → one SQL statement, in two shapes that each node can take.

The set shape: each node compiles to a SELECT of distinct profile ids, or the complement of one.
Counting zero-or-more conditions ("at most 2", "didn't") become complements, so every event
scan is a positive range scan on (metric, ts); and/or/not become INTERSECT / UNION / EXCEPT of
those sets. Measured 15–25× faster than per-profile correlated EXISTS for counts.

The walk shape: the same filter as a predicate on one profile (correlated EXISTS and counts on
(profile, metric, ts)), for walking profiles in id order and stopping after a page: a later page
of a large audience costs a page, where the set shape rebuilds the whole set for every page.

A saved segment is compiled once per statement however many paths lead to it: one that the filter
reaches more than once is a named subquery (a CTE) that every use refers to, in both shapes, so the
SQL grows with the number of distinct segments, not with the number of paths to them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import ColumnElement

from resolvers.errors import QueryTooComplexError
from resolvers.language import ast as ast
from resolvers.language.algebra import simplified
from resolvers.language.calendar import calendar_bounds
from resolvers.property_sql import NEGATED_OPS, figure, figure_at_zero, figure_holds, matches
from store.dialects import StoreDialect, dialect_named
from store.tables import PROFILE_ROW, events, metrics, profile_metrics, profiles
from vocabulary.agent_metrics import metric_key
from vocabulary.timestamps import MICROS_PER_DAY, MICROS_PER_HOUR, from_micros, parse_datetime, to_micros

IdSet = Select[Any] | CompoundSelect[Any]


# Aliases are immutable, so they are built once: building one proxies all nine columns, a large part of
# compiling a filter (docs/performance.md). `x` scans qualifying events, `y` a follow-up of an `x` row;
# an `x` subquery never nests inside another (conditions combine side by side), so none is correlated by mistake.
SCANNED = events.alias("x")
FOLLOW_UPS = events.alias("y")
# A profile's first time of a metric (store/profile_metric_summaries.py): `f` where a condition tests
# it, `d` where a walk runs along them (a page's FROM; never inside a test).
FIRSTS = profile_metrics.alias("f")
DRIVING = profile_metrics.alias("d")


@dataclass(frozen=True)
class Audience:
    """`ids` (None: no one) or, when `negated`, every profile except `ids`; `walk()` tests one profile."""

    ids: IdSet | None
    negated: bool = False
    # Built only when a page walks: most requests need the set shape alone.
    walk: Callable[[], ColumnElement[bool]] | None = None
    # When every member did some X by an instant (an "ever did X", at the top or in an `and`): the walk
    # runs along X's DRIVING rows in profile order, not along every profile. Its conditions on DRIVING
    # and on the profile together mean membership.
    driven: Callable[[], list[ColumnElement[bool]]] | None = None
    # Its statements, built once each (`statement`): an audience compiled once serves many requests,
    # and SQLAlchemy keeps a statement's cache key, which is slow to work out (docs/performance.md).
    statements: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)
    # The metric names its filter (saved segments included) names: those with no events are warned of.
    metric_names: tuple[str, ...] = field(default=(), compare=False)
    # Its filter's event conditions (saved segments' included): what makes membership change with the instant.
    event_conditions: tuple[ast.EventCondition, ...] = field(default=(), compare=False)

    def invert(self) -> Audience:
        return Audience(self.ids, not self.negated)

    def statement(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The statement known by `key`, built by `build` the first time."""
        found = self.statements.get(key)
        if found is None:
            found = self.statements[key] = build()
        return found


EVERYONE = Audience(None, negated=True)
NO_ONE = Audience(None)


class FilterCompiler:
    """Compiles filters evaluated at one instant `as_of` (microseconds) for one SQL dialect."""

    def __init__(
        self, dialect: str, as_of: int, segments: Mapping[str, ast.Filter] | None = None, cte_prefix: str = "segment"
    ) -> None:
        self.dialect = dialect
        self.sql: StoreDialect = dialect_named(dialect)
        self.as_of = sa.literal(as_of, sa.BigInteger)
        self.as_of_micros = as_of
        self.segments = segments or {}
        # Named subqueries' names start so: two audiences in one statement (changes) need two prefixes.
        self.cte_prefix = cte_prefix
        # How often each saved segment is reached from the filter being compiled (`audience`), and its
        # set, compiled once: a named subquery when it is reached more than once.
        self._uses: dict[str, int] = {}
        self._segment_sets: dict[str, Audience] = {}

    # ------------------------------------------------------------ audiences

    def audience(self, node: ast.Filter | None) -> Audience:
        """Both shapes of a filter (None: everyone)."""
        if node is None:
            return Audience(None, negated=True, walk=sa.true)
        names = tuple(ast.metric_names(node, self.segments))
        conditions = tuple(ast.event_conditions(node, self.segments))
        # Simplified first: saved segments named along many paths mostly collapse to one. A segment the
        # filter then reaches once is written in its place, to be simplified with its surroundings.
        segments = {segment_id: simplified(segment) for segment_id, segment in self.segments.items()}
        node = simplified(node)
        node = simplified(inlined(node, segments, segment_uses(node, segments)))
        # A compiler of its own: the walk is built later, from this filter's saved-segment sets.
        scoped = FilterCompiler(self.dialect, self.as_of_micros, segments, self.cte_prefix)
        scoped._uses = segment_uses(node, segments)
        bound = self.sql.max_segment_uses
        if bound is not None and sum(scoped._uses.values()) > bound:
            raise QueryTooComplexError(
                f"the saved segments this filter uses are reached along {sum(scoped._uses.values())} paths; "
                f"this store takes at most {bound}")
        found = scoped._set(node)
        # Built once, when first asked: a page and the prefetch of the next share it.
        driven = scoped._driven(node)
        return Audience(found.ids, found.negated, functools.cache(lambda: scoped._member(node)),
                        functools.cache(driven) if driven is not None else None, metric_names=names,
                        event_conditions=conditions)

    def _driven(self, node: ast.Filter) -> Callable[[], list[ColumnElement[bool]]] | None:
        """Membership as conditions on a DRIVING row and its profile, when every member has such a row."""
        match node:
            case ast.InSegment(segment_id):
                return self._driven(self.segments[segment_id])
            case ast.Did(condition) if condition.count == ast.AtLeast(1) and self._answered_by_firsts(condition):
                # Not for a window with a start: a dense audience's X is done by most profiles at some time,
                # and a walk along X's rows then tests nearly every profile's events anyway (docs/performance.md).
                return lambda: self._firsts_show(condition, DRIVING)
            case ast.And(items):
                for index, item in enumerate(items):
                    driver = self._driven(item)
                    if driver is not None:
                        others = items[:index] + items[index + 1:]
                        return lambda: [*driver(), *(self._member(other) for other in others)]
        return None

    def _set(self, node: ast.Filter) -> Audience:
        match node:
            case ast.And(items):
                return self._and([self._set(item) for item in items])
            case ast.Or(items):
                return self._or([self._set(item) for item in items])
            case ast.Not(item):
                return self._set(item).invert()
            case ast.Did(condition):
                return self._did(condition)
            case ast.DidNot(condition):
                return self._did(condition).invert()
            case ast.ProfileMatch(condition):
                return Audience(sa.select(profiles.c.id.label("profile_id")).where(self._profile_predicate(condition)))
            case ast.InSegment(segment_id):
                return self._segment_set(segment_id)
        raise TypeError(f"not a filter node: {node!r}")

    def _segment_set(self, segment_id: str) -> Audience:
        """A saved segment's set, compiled once; a CTE referred to by name when the filter reaches it more than once."""
        found = self._segment_sets.get(segment_id)
        if found is None:
            found = self._set(self.segments[segment_id])
            if found.ids is not None and self._uses.get(segment_id, 0) > 1:
                named = operand(found.ids).cte(f"{self.cte_prefix}_{len(self._segment_sets) + 1}").prefix_with("MATERIALIZED")
                found = Audience(sa.select(named.c[0]), found.negated)
            self._segment_sets[segment_id] = found
        return found

    def _member(self, node: ast.Filter) -> ColumnElement[bool]:
        """The walk shape: whether the profile of the enclosing `FROM profiles` row is a member."""
        match node:
            case ast.And(items):
                return sa.and_(*(self._member(item) for item in items)) if items else sa.true()
            case ast.Or(items):
                return sa.or_(*(self._member(item) for item in items)) if items else sa.false()
            case ast.Not(item):
                return sa.not_(self._member(item))
            case ast.Did(condition):
                return self._member_did(condition)
            case ast.DidNot(condition):
                return sa.not_(self._member_did(condition))
            case ast.ProfileMatch(condition):
                return sa.func.coalesce(self._profile_predicate(condition), sa.false())
            case ast.InSegment(segment_id) if self._uses.get(segment_id, 0) > 1:
                # Reached more than once: its named set, tested once per profile instead of once per path.
                shared = self._segment_set(segment_id)
                if shared.ids is None:
                    return sa.true() if shared.negated else sa.false()
                membership = profiles.c.id.in_(shared.ids)
                return sa.not_(membership) if shared.negated else membership
            case ast.InSegment(segment_id):
                return self._member(self.segments[segment_id])
        raise TypeError(f"not a filter node: {node!r}")

    def _member_did(self, condition: ast.EventCondition) -> ColumnElement[bool]:
        def of_this_profile(column: Any) -> Select[Any]:
            event = SCANNED
            return sa.select(column).select_from(event).where(
                event.c.profile_id == profiles.c.id, *self.qualifying(event, condition)
            ).with_hint(event, "INDEXED BY ix_events_profile_metric_ts", "sqlite")

        count = condition.count
        if condition.having:
            # One row even for no events: count 0, SUM 0, the other figures NULL.
            source, holds = self._figures(SCANNED, condition)
            return sa.select(sa.func.coalesce(holds, sa.false())).select_from(source).where(
                SCANNED.c.profile_id == profiles.c.id, *self.qualifying(SCANNED, condition)
            ).with_hint(SCANNED, "INDEXED BY ix_events_profile_metric_ts", "sqlite").scalar_subquery()
        if count in (ast.AtLeast(1), ast.Exactly(0)) and self._answered_by_firsts(condition):
            first = sa.select(sa.literal(1)).where(FIRSTS.c.profile_id == profiles.c.id, *self._firsts_show(condition))
            return first.exists() if count == ast.AtLeast(1) else sa.not_(first.exists())
        match count:
            case ast.AtLeast(0):
                return sa.true()
            case ast.AtLeast(1):
                return of_this_profile(sa.literal(1)).exists()
            case ast.Exactly(0):
                return sa.not_(of_this_profile(sa.literal(1)).exists())
        found = of_this_profile(sa.func.count()).scalar_subquery()
        match count:
            case ast.AtLeast(n):
                return found >= n
            case ast.AtMost(n):
                return found <= n
            case ast.Exactly(n):
                return found == n
        raise TypeError(f"not a count: {condition.count!r}")

    def _and(self, parts: list[Audience]) -> Audience:
        return intersection(parts)

    def _or(self, parts: list[Audience]) -> Audience:
        return union(parts)

    def _did(self, condition: ast.EventCondition) -> Audience:
        if condition.having:
            # A profile with no qualifying event has count 0, SUM and DISTINCT_COUNT 0 and no other figure: when
            # that holds, members are everyone but those whose events make it fail.
            if ast.count_holds(condition.count, 0) and all(figure_at_zero(h) for h in condition.having):
                return Audience(self._profiles_having(condition, failing=True), negated=True)
            return Audience(self._profiles_having(condition, failing=False))
        count = condition.count
        match count:
            case ast.AtLeast(0):
                return EVERYONE
            case ast.AtLeast(n):
                return Audience(self._profiles_with_count(condition, ">=", n))
            case ast.AtMost(n):
                return Audience(self._profiles_with_count(condition, ">=", n + 1), negated=True)
            case ast.Exactly(0):
                return Audience(self._profiles_with_count(condition, ">=", 1), negated=True)
            case ast.Exactly(n):
                return Audience(self._profiles_with_count(condition, "=", n))
        raise TypeError(f"not a count: {count!r}")

    # ------------------------------------------------------------ event scans

    def _profiles_with_count(self, condition: ast.EventCondition, compare: str, n: int) -> Select[Any]:
        """Profiles whose number of qualifying events compares to n: DISTINCT or GROUP BY … HAVING.

        "Ever did X" (by an instant) reads one row per profile from `profile_metrics` instead of every
        event: its scan grows with the profiles that did X, not with their history.
        """
        if compare == ">=" and n == 1 and self._answered_by_firsts(condition):
            return sa.select(FIRSTS.c.profile_id).where(*self._firsts_show(condition))
        event = SCANNED
        query = sa.select(event.c.profile_id).where(*self.qualifying(event, condition))
        # Plans must not hang on statistics: without ANALYZE, or after it, SQLite may pick the other
        # index (a far slower skip-scan of (profile, metric, ts): docs/performance.md), so each scan names its index.
        query = query.with_hint(event, f"INDEXED BY {self._scan_index(condition)}", "sqlite")
        if compare == ">=" and n == 1:
            return query.distinct()
        having = sa.func.count() >= n if compare == ">=" else sa.func.count() == n
        return query.group_by(event.c.profile_id).having(having)

    def _profiles_having(self, condition: ast.EventCondition, failing: bool) -> Select[Any]:
        """Profiles with qualifying events whose count and figures all hold (`failing`: do not all hold)."""
        event = SCANNED
        source, holds = self._figures(event, condition, grouped=True)
        query = (sa.select(event.c.profile_id).select_from(source).where(*self.qualifying(event, condition))
                 .group_by(event.c.profile_id).having(sa.not_(holds) if failing else holds))
        return query.with_hint(event, f"INDEXED BY {self._scan_index(condition)}", "sqlite")

    def _figures(self, event: Any, condition: ast.EventCondition, grouped: bool = False) -> tuple[Any, ColumnElement[bool]]:
        """The FROM of a group of qualifying event rows and whether its count and every `having` figure hold over
        the group (`grouped`: a GROUP BY's, never empty)."""
        source, once_each, figures = self.having_figures(event, condition)
        count = sa.func.count() if once_each is None else sa.func.count(sa.distinct(event.c.id))
        always = grouped and isinstance(condition.count, ast.AtLeast) and condition.count.n <= 1
        holds = [*([] if always else [_count_compared(condition.count, count)]), *(h for _, h in figures)]
        return source, sa.and_(*holds)

    def having_figures(
        self, event: Any, condition: ast.EventCondition
    ) -> tuple[Any, ColumnElement[bool] | None, list[tuple[ColumnElement[Any], ColumnElement[bool]]]]:
        """The FROM of a group of qualifying event rows (joined to the list items DISTINCT_COUNT reads), what
        holds on one row of each event (None: no join, one row each), and each `having` figure with its test."""
        source: Any = event
        items: dict[str, Any] = {}
        for aggregate in condition.having:
            if aggregate.function is ast.AggregateFunction.DISTINCT_COUNT and aggregate.property not in items:
                promoted = {"channel": event.c.channel, "conversation_id": event.c.conversation_id}.get(aggregate.property)
                found = items[aggregate.property] = self.sql.list_items(
                    event.c.properties, aggregate.property, f"items_{len(items) + 1}", promoted)
                source = source.outerjoin(found.source, found.on)
        # Joined to list items, an event comes once per item: count it and read its numbers on its first row.
        first = sa.and_(*(found.first for found in items.values())) if items else None
        figures = []
        for aggregate in condition.having:
            value = figure(self.sql, event.c.properties, aggregate, first, items.get(aggregate.property))
            figures.append((value, figure_holds(aggregate, value)))
        return source, first, figures

    @staticmethod
    def _scan_index(condition: ast.EventCondition) -> str:
        """The index a scan of qualifying events walks: by channel first when a channel equality narrows it."""
        by_channel = any(
            where.property == "channel" and where.op in (ast.PropertyOp.EQ, ast.PropertyOp.IN)
            and all(isinstance(v, str) for v in (where.value if isinstance(where.value, list) else [where.value]))
            for where in condition.where
        )
        return "ix_events_metric_channel_ts" if by_channel else "ix_events_metric_ts_profile"

    def profile_predicate(self, condition: ast.PropertyCondition) -> ColumnElement[bool]:
        """Whether the enclosing `profiles` row meets a property condition (never null)."""
        return sa.func.coalesce(self._profile_predicate(condition), sa.false())

    def qualifying(self, event: Any, condition: ast.EventCondition) -> list[ColumnElement[bool]]:
        """Whether a row of `event` (an alias of events) is a qualifying event of `condition`, its profile aside."""
        window_start, window_end = window_bounds(condition.within, self.as_of_micros)
        conditions = [
            event.c.metric_id == _metric_id(condition.metric),
            *bounds_conditions(event.c.ts, window_start, window_end),
            *(self._event_predicate(event, where) for where in condition.where),
        ]
        if condition.followed_by is not None:
            conditions.append(self._follow_up_exists(event, condition.followed_by, window_start))
        if condition.not_followed_by is not None:
            hours = condition.not_followed_by.within_hours * MICROS_PER_HOUR
            # Not yet a drop-off while the follow-up window is still open.
            conditions.append(event.c.ts + hours <= self.as_of)
            conditions.append(sa.not_(self._follow_up_exists(event, condition.not_followed_by, window_start)))
        return conditions

    def _answered_by_firsts(self, condition: ast.EventCondition) -> bool:
        """"Did X" by an instant, with nothing else: a profile's first time of X answers it."""
        return _metric_and_window_only(condition) and window_bounds(condition.within, self.as_of_micros)[0] is None

    def _firsts_show(self, condition: ast.EventCondition, firsts: Any = FIRSTS) -> list[ColumnElement[bool]]:
        """Whether a `firsts` row (FIRSTS or DRIVING) shows that its profile did the condition's metric by the
        window's end."""
        _, high = window_bounds(condition.within, self.as_of_micros)
        return [firsts.c.metric_id == _metric_id(condition.metric), firsts.c.first_ts <= high]

    def _follow_up_exists(self, event: Any, follow_up: ast.FollowUp, window_start: int | None) -> ColumnElement[bool]:
        # A follow-up comes after its event, so after the event's window starts: saying so (redundant as it is)
        # makes the follow-ups a range of their own, which PostgreSQL hashes once instead of probing the
        # profile index per event (docs/performance.md).
        after_window_start = [] if window_start is None else [FOLLOW_UPS.c.ts > sa.literal(window_start, sa.BigInteger)]
        return sa.select(sa.literal(1)).where(
            *self.follow_up_conditions(event, follow_up, self.as_of), *after_window_start,
        ).with_hint(FOLLOW_UPS, "INDEXED BY ix_events_profile_metric_ts", "sqlite").exists()

    def follow_up_conditions(self, event: Any, follow_up: ast.FollowUp, as_of: Any = None) -> list[ColumnElement[bool]]:
        """Whether a FOLLOW_UPS row is a follow-up of the `event` row by `as_of` (None: at any instant)."""
        later = FOLLOW_UPS
        hours = follow_up.within_hours * MICROS_PER_HOUR
        return [
            later.c.profile_id == event.c.profile_id,
            later.c.metric_id == _metric_id(follow_up.metric),
            later.c.ts > event.c.ts,
            later.c.ts <= event.c.ts + hours,
            *([] if as_of is None else [later.c.ts <= as_of]),
            *(self._event_predicate(later, where) for where in follow_up.where),
            *(self.sql.same_value(later.c.properties, event.c.properties, key)
              for key in follow_up.same_properties),
        ]

    def candidate(self, event: Any, condition: ast.EventCondition) -> list[ColumnElement[bool]]:
        """Whether a row of `event` has the condition's metric and meets its `where`: a qualifying event at some
        instant, windows and follow-ups aside."""
        return [event.c.metric_id == _metric_id(condition.metric),
                *(self._event_predicate(event, where) for where in condition.where)]

    def _event_predicate(self, event: Any, condition: ast.PropertyCondition) -> ColumnElement[bool]:
        promoted = {"channel": event.c.channel, "conversation_id": event.c.conversation_id}
        return matches(self.sql, event.c.properties, condition, promoted)

    # ------------------------------------------------------------ profile conditions

    def _profile_predicate(self, condition: ast.PropertyCondition) -> ColumnElement[bool]:
        column = PROFILE_COLUMNS.get(condition.property)
        if column is None:
            return matches(self.sql, profiles.c.properties, condition)
        op = NEGATED_OPS.get(condition.op, condition.op)
        inner = self._column_predicate(column, op, condition.value, is_time=condition.property == "createdAt")
        if op is condition.op:
            return inner
        return sa.not_(sa.func.coalesce(inner, sa.false()))

    def _column_predicate(self, column: Any, op: ast.PropertyOp, value: Any, is_time: bool) -> ColumnElement[bool]:
        """A positive op on a built-in column: strings, or createdAt compared as a datetime."""
        if op is ast.PropertyOp.EXISTS:
            return column.is_not(None)
        values = value if op is ast.PropertyOp.IN else [value]
        if is_time:
            values = [to_micros(parse_datetime(v)) for v in values]
        elif not all(isinstance(v, str) for v in values):
            values = [v for v in values if isinstance(v, str)]
            if op is not ast.PropertyOp.IN or not values:
                return sa.false()
        if op in (ast.PropertyOp.EQ, ast.PropertyOp.IN):
            return column.in_(values) if values else sa.false()
        (operand,) = values
        if op is ast.PropertyOp.CONTAINS:
            return self.sql.substring_found(column, operand)
        if op is ast.PropertyOp.STARTS_WITH:
            return sa.func.substr(column, 1, len(operand)) == operand
        ordered = column if is_time else self.sql.code_point_order(column)
        return {
            ast.PropertyOp.GT: ordered > operand, ast.PropertyOp.GTE: ordered >= operand,
            ast.PropertyOp.LT: ordered < operand, ast.PropertyOp.LTE: ordered <= operand,
        }[op]


PROFILE_COLUMNS = {
    "email": profiles.c.email,
    "phoneNumber": profiles.c.phone_number,
    "externalId": profiles.c.external_id,
    "firstName": profiles.c.first_name,
    "lastName": profiles.c.last_name,
    "createdAt": profiles.c.created_at,
}


def intersection(parts: list[Audience]) -> Audience:
    """The profiles in every part (set shapes only: a walk combines its parts' predicates)."""
    if any(part.ids is None and not part.negated for part in parts):
        return NO_ONE
    included = [part.ids for part in parts if not part.negated and part.ids is not None]
    excluded = [part.ids for part in parts if part.negated and part.ids is not None]
    if not included:
        return Audience(_union(excluded) if excluded else None, negated=True)
    ids = _intersect(included)
    return Audience(sa.except_(operand(ids), operand(_union(excluded))) if excluded else ids)


def union(parts: list[Audience]) -> Audience:
    """The profiles in any part (set shapes only)."""
    # A ∪ ¬B = ¬(B − A): with any complement the result is a complement.
    if any(part.ids is None and part.negated for part in parts):
        return EVERYONE
    included = [part.ids for part in parts if not part.negated and part.ids is not None]
    excluded = [part.ids for part in parts if part.negated and part.ids is not None]
    if not excluded:
        return Audience(_union(included) if included else None)
    ids = _intersect(excluded)
    return Audience(sa.except_(operand(ids), operand(_union(included))) if included else ids, negated=True)


def inlined(node: ast.Filter, segments: Mapping[str, ast.Filter], uses: Mapping[str, int]) -> ast.Filter:
    """The filter with each saved segment it reaches only once written in its place."""
    match node:
        case ast.InSegment(segment_id) if uses.get(segment_id) == 1:
            return inlined(segments[segment_id], segments, uses)
        case ast.And(items):
            return ast.And(tuple(inlined(item, segments, uses) for item in items))
        case ast.Or(items):
            return ast.Or(tuple(inlined(item, segments, uses) for item in items))
        case ast.Not(item):
            return ast.Not(inlined(item, segments, uses))
    return node


def segment_uses(root: ast.Filter, segments: Mapping[str, ast.Filter]) -> dict[str, int]:
    """How many paths lead from `root` to each saved segment it reaches (segments refer to each other
    without cycles), counted along the references in topological order: no path is walked."""
    order: list[str] = []  # every segment after all the segments that refer to it
    seen: set[str] = set()

    def visit(segment_id: str) -> None:
        if segment_id in seen:
            return
        seen.add(segment_id)
        for child in ast.segment_references(segments[segment_id]):
            visit(child)
        order.append(segment_id)

    for segment_id in ast.segment_references(root):
        visit(segment_id)
    uses = dict.fromkeys(order, 0)
    for segment_id, n in ast.segment_reference_counts(root).items():
        uses[segment_id] += n
    for parent in reversed(order):
        for child, n in ast.segment_reference_counts(segments[parent]).items():
            uses[child] += uses[parent] * n
    return uses


def window_bounds(window: ast.Window | None, as_of: int) -> tuple[int | None, int]:
    """The first and last microsecond (inclusive) a window admits at `as_of`; None: no lower bound."""
    match window:
        case None:
            return None, as_of
        case ast.LastDays(n):
            return as_of - n * MICROS_PER_DAY, as_of
        case ast.LastHours(n):
            return as_of - n * MICROS_PER_HOUR, as_of
        case ast.Since(at):
            return to_micros(at), as_of
        case ast.Before(at):
            return None, min(to_micros(at) - 1, as_of)
        case ast.Between(start, end):
            return to_micros(start), min(to_micros(end) - 1, as_of)
        case ast.Calendar():
            first, after = calendar_bounds(window, from_micros(as_of))
            return to_micros(first), as_of if after is None else min(to_micros(after) - 1, as_of)
    raise TypeError(f"not a window: {window!r}")


def window_conditions(ts: Any, window: ast.Window | None, as_of: int) -> list[ColumnElement[bool]]:
    """`ts` inside the window, measured back from `as_of` (None: all time up to `as_of`)."""
    return bounds_conditions(ts, *window_bounds(window, as_of))


def bounds_conditions(ts: Any, low: int | None, high: int) -> list[ColumnElement[bool]]:
    """`ts` between `low` (None: no lower bound) and `high`, both included."""
    upper = ts <= sa.literal(high, sa.BigInteger)
    return [upper] if low is None else [ts >= sa.literal(low, sa.BigInteger), upper]


def _metric_and_window_only(condition: ast.EventCondition) -> bool:
    """No property, follow-up or figure condition: what `profile_metrics` alone can answer."""
    return (not condition.where and not condition.having and condition.followed_by is None
            and condition.not_followed_by is None)


def _count_compared(count: ast.Count, found: Any) -> ColumnElement[bool]:
    match count:
        case ast.AtLeast(k):
            return found >= k  # type: ignore[no-any-return]
        case ast.AtMost(k):
            return found <= k  # type: ignore[no-any-return]
        case ast.Exactly(k):
            return found == k  # type: ignore[no-any-return]
    raise TypeError(f"not a count: {count!r}")


def _metric_id(name: str) -> Any:
    # Resolved inside the statement so that one statement answers; unknown metrics match nothing.
    return sa.select(metrics.c.id).where(metrics.c.name_key == metric_key(name)).scalar_subquery()


def metric_ids(names: Iterable[str]) -> Select[Any]:
    """The ids of the metrics named (any spelling), inside the statement; unknown names match nothing."""
    return sa.select(metrics.c.id).where(metrics.c.name_key.in_(sorted({metric_key(name) for name in names})))


def operand(ids: IdSet) -> Select[Any]:
    """A set usable inside another set operation (SQLite refuses nested compound SELECTs)."""
    if isinstance(ids, CompoundSelect):
        nested = ids.subquery()
        return sa.select(nested.c[0])
    return ids


def _union(parts: list[IdSet]) -> IdSet:
    return parts[0] if len(parts) == 1 else sa.union(*(operand(p) for p in parts))


def _intersect(parts: list[IdSet]) -> IdSet:
    return parts[0] if len(parts) == 1 else sa.intersect(*(operand(p) for p in parts))


# ---------------------------------------------------------------- statements


# A page's cursor as a parameter given when the statement runs: one statement serves every page.
AFTER_ID = sa.bindparam("after_id", type_=sa.BigInteger)


def page_statement(
    audience: Audience, after_id: int | sa.BindParameter[int] | None, limit: int | None, columns: Sequence[Any] | None = None,
    walk: bool = False,
) -> Select[Any]:
    """Members in id order after `after_id` (keyset pagination, a value or AFTER_ID); all of them when `limit` is None.

    With `walk`, profiles are tested one by one in id order (the walk shape), stopping at `limit`.
    """
    if walk and audience.driven is not None:
        # Along the driving rows' primary key (metric, profile): in profile order, each profile read by its id.
        driven = (sa.select(*(columns or PROFILE_ROW))
                  .select_from(DRIVING.join(profiles, profiles.c.id == DRIVING.c.profile_id))
                  .where(*audience.driven()).order_by(DRIVING.c.profile_id).limit(limit))
        return driven if after_id is None else driven.where(DRIVING.c.profile_id > after_id)
    query = sa.select(*(columns or PROFILE_ROW)).order_by(profiles.c.id).limit(limit)
    if after_id is not None:
        query = query.where(profiles.c.id > after_id)
    if walk and audience.walk is not None:
        return query.where(audience.walk())
    if audience.ids is None:
        return query if audience.negated else query.where(sa.false())
    return query.where(_page_members(audience, after_id, limit))


def _page_members(audience: Audience, after_id: int | sa.BindParameter[int] | None, limit: int | None) -> ColumnElement[bool]:
    """Whether a profile is on a set-shape page. Both shapes below read only the page's profiles: a plain
    `id IN (members)` had PostgreSQL merge-join tens of thousands of profiles for a page, and `NOT IN`
    hash every member of a complement first (docs/performance.md)."""
    assert audience.ids is not None
    if limit is None and not audience.negated:
        return profiles.c.id.in_(audience.ids)
    member_id = audience.ids.subquery("members").c[0]
    if audience.negated:  # an anti-join that stops with the page, probing members by id
        return ~sa.exists().where(member_id == profiles.c.id)
    first_members = sa.select(member_id).order_by(member_id).limit(limit)
    if after_id is not None:
        first_members = first_members.where(member_id > after_id)
    return profiles.c.id.in_(first_members)


def aggregated_page_statement(members: Select[Any]) -> Select[Any]:
    """A page of (id, node) members as one row: their ids, their nodes' lengths and their nodes (JSON
    texts), each comma-separated in the one order SQLite fed them to the aggregates (the ids tell which)."""
    page = members.subquery("page")
    aggregates: list[Any] = [sa.func.group_concat(values, type_=sa.Text)
                             for values in (page.c.id, sa.func.length(page.c.node), page.c.node)]
    return sa.select(*aggregates)


def density_statement(audience: Audience, sample: int) -> Select[Any]:
    """(profiles sampled, members among them) over the first `sample` profiles in id order, tested in the walk shape."""
    assert audience.walk is not None
    sampled = sa.select(profiles.c.id).order_by(profiles.c.id).limit(sample)
    members = sa.func.coalesce(sa.func.sum(sa.case((audience.walk(), 1), else_=0)), 0)
    return sa.select(sa.func.count(), members).where(profiles.c.id.in_(sampled))


def count_statement(audience: Audience) -> Select[Any]:
    """The number of members: a count of the set, or all profiles minus it."""
    everyone = sa.select(sa.func.count()).select_from(profiles).scalar_subquery()
    if audience.ids is None:
        return sa.select(everyone if audience.negated else sa.literal(0))
    members = sa.select(sa.func.count()).select_from(audience.ids.subquery()).scalar_subquery()
    return sa.select(everyone - members if audience.negated else members)
