"""When one profile was in a filter's audience: the exact intervals of a time range, to the microsecond.

Membership at an instant t is decided by the profile's events through steps in t: an event exists from its
time on, leaves a `lastDays`/`lastHours` window one microsecond after its time + the window's length, has a
follow-up from the follow-up's time on, has waited out a `notFollowedBy` from its time + the wait on. So
membership is constant between those instants, and is evaluated once at each.

SQL reads, in one statement, each event condition's candidate events of the profile (metric and `where`,
as the compiler tests them) with what the follow-ups need (the first follow-up's time; whether a
`notFollowedBy` has one at all): all that depends on t is then a comparison of times. Property conditions
do not depend on t: one more statement reads their truths. A `having` condition's figures are the
compiler's own, read in SQL once for each distinct set of qualifying events the instants give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from resolvers.compiler import FOLLOW_UPS, SCANNED, FilterCompiler, window_bounds
from resolvers.errors import InputPath, NotFoundError, UserInputError
from resolvers.explanations import Leaves
from resolvers.language import ast as ast
from resolvers.language.calendar import period_starts
from resolvers.language.limits import check_expanded
from resolvers.property_sql import figure_at_zero
from resolvers.segments import checked_filter, referenced_segments
from store.engine import Store
from vocabulary.timestamps import MICROS_PER_DAY, MICROS_PER_HOUR, format_datetime, from_micros, now_utc, to_micros

MAX_INTERVALS = 1000
MAX_RANGE_DAYS = 36_500


@dataclass(frozen=True)
class Candidate:
    """An event that may qualify for a condition: its time, its first follow-up's time (followedBy; None:
    none), and whether it has any notFollowedBy follow-up."""

    id: int
    ts: int
    followed_at: int | None
    spoiled: bool


# Event ids bound, at most, in one statement reading `having` figures (a larger set goes alone): both stores
# take 32,766 parameters or more.
FIGURE_IDS_PER_STATEMENT = 20_000


async def membership_intervals(
    store: Store, profile_id: int, value: Any, start: datetime, end: datetime | None, path: InputPath = ("filter",)
) -> list[tuple[int, int | None]]:
    """The maximal intervals [from, to) of [start, end] (end default now) in which the profile was a member
    of `value` (a filter as plain JSON), oldest first; to None when still a member at the end."""
    root = checked_filter(value, path, start)
    first, last = to_micros(start), to_micros(end if end is not None else now_utc())
    if first >= last:
        raise UserInputError(f"from ({format_datetime(start)}) must be before to", ("from",))
    if last - first > MAX_RANGE_DAYS * MICROS_PER_DAY:
        raise UserInputError(f"a membership range spans at most {MAX_RANGE_DAYS:,} days", ("to",))
    async with store.connect() as connection:
        segments = await referenced_segments(connection, root, path) if ast.segment_references(root) else {}
        check_expanded(root, segments, path)
        compiler = FilterCompiler(store.dialect, last, segments)
        leaves = Leaves(root, segments)
        profile = (await connection.execute(leaves.profile_statement(compiler, profile_id))).first()
        if profile is None:
            raise NotFoundError(f"no profile with id {profile_id}", ("id",))
        rows = (await connection.execute(_candidates_statement(compiler, leaves, profile_id, last))).all() \
            if leaves.events else []
        truths = list(profile[len(profile) - len(leaves.properties):])
        candidates: list[list[Candidate]] = [[] for _ in leaves.events]
        for row in rows:
            candidates[row.leaf].append(Candidate(row.id, row.ts, row.followed_at, bool(row.spoiled)))
        timeline = Timeline(leaves, truths, candidates, segments, {})
        instants = sorted({first, *(t for t in timeline.instants(first, last) if first < t <= last)})
        await _read_figures(connection, compiler, timeline, instants)
    intervals: list[tuple[int, int | None]] = []
    opened: int | None = None
    for instant in instants:
        member = timeline.holds(root, instant)
        if member and opened is None:
            opened = instant
        elif not member and opened is not None:
            intervals.append((opened, instant))
            opened = None
            if len(intervals) > MAX_INTERVALS:
                break
    if opened is not None:
        intervals.append((opened, None))
    if len(intervals) > MAX_INTERVALS:
        raise UserInputError(f"the profile entered the audience more than {MAX_INTERVALS:,} times in this range; "
                             "ask for a shorter one", ("from",))
    return intervals


def _candidates_statement(compiler: FilterCompiler, leaves: Leaves, profile_id: int, last: int) -> Any:
    """(leaf, ts, followed_at, spoiled) of each event condition's candidate events of the profile by `last`."""
    event = SCANNED
    parts = []
    for index, condition in enumerate(leaves.events):
        followed_at: Any = sa.null()
        if condition.followed_by is not None:
            followed_at = (sa.select(sa.func.min(FOLLOW_UPS.c.ts))
                           .where(*compiler.follow_up_conditions(event, condition.followed_by)).scalar_subquery())
        spoiled: Any = sa.false()
        if condition.not_followed_by is not None:
            spoiled = sa.select(sa.literal(1)).where(
                *compiler.follow_up_conditions(event, condition.not_followed_by)).exists()
        parts.append(
            sa.select(sa.literal(index).label("leaf"), event.c.id, event.c.ts, followed_at.label("followed_at"),
                      sa.case((spoiled, 1), else_=0).label("spoiled"))
            .where(event.c.profile_id == profile_id, event.c.ts <= last, *compiler.candidate(event, condition))
            .with_hint(event, "INDEXED BY ix_events_profile_metric_ts", "sqlite")
        )
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


async def _read_figures(connection: Any, compiler: FilterCompiler, timeline: Timeline, instants: list[int]) -> None:
    """Whether every `having` figure holds over each distinct set of qualifying events that a `having` condition
    has at one of the instants, into `timeline.figures` (the empty set by the compiler's rule, without SQL)."""
    wanted: dict[tuple[int, frozenset[int]], None] = {}  # in order, once each
    for index, condition in enumerate(timeline.leaves.events):
        if not condition.having:
            continue
        for instant in instants:
            ids = frozenset(event.id for event in timeline.qualifying(index, instant))
            if ids:
                wanted[index, ids] = None
            else:
                timeline.figures[index, ids] = all(figure_at_zero(h) for h in condition.having)
    event = SCANNED
    for chunk in _chunks(list(wanted)):
        parts = []
        for number, (index, ids) in enumerate(chunk):
            source, _, figures = compiler.having_figures(event, timeline.leaves.events[index])
            holds = sa.and_(*(h for _, h in figures))
            parts.append(sa.select(sa.literal(number).label("number"), sa.case((holds, 1), else_=0).label("holds"))
                         .select_from(source).where(event.c.id.in_(sorted(ids))))
        statement = parts[0] if len(parts) == 1 else sa.union_all(*parts)
        for number, holds in (await connection.execute(statement)).all():
            timeline.figures[chunk[number]] = bool(holds)


def _chunks(sets: list[tuple[int, frozenset[int]]]) -> list[list[tuple[int, frozenset[int]]]]:
    """The sets in order, in runs of at most FIGURE_IDS_PER_STATEMENT ids (a larger set alone)."""
    chunks: list[list[tuple[int, frozenset[int]]]] = []
    size = 0
    for found in sets:
        if not chunks or size + len(found[1]) > FIGURE_IDS_PER_STATEMENT:
            chunks.append([])
            size = 0
        chunks[-1].append(found)
        size += len(found[1])
    return chunks


@dataclass(frozen=True)
class Timeline:
    """A profile's membership as a function of the instant, from what the statements read."""

    leaves: Leaves
    truths: list[bool]
    candidates: list[list[Candidate]]
    segments: dict[str, ast.Filter]
    # (index of a `having` condition, ids of its qualifying events) -> whether all its figures hold over them
    figures: dict[tuple[int, frozenset[int]], bool]

    def instants(self, first: int, last: int) -> set[int]:
        """Every instant at which some condition's count may change (calendar periods' starts: in (first, last])."""
        found: set[int] = set()
        for condition, events in zip(self.leaves.events, self.candidates, strict=True):
            if isinstance(condition.within, ast.Calendar):  # the window moves when a period starts
                window = condition.within
                found.update(to_micros(start) for start in period_starts(
                    window.unit, window.timezone, from_micros(first), from_micros(last)))
            length = _window_length(condition.within)
            wait = condition.not_followed_by.within_hours * MICROS_PER_HOUR if condition.not_followed_by else None
            for event in events:
                found.add(event.ts)
                if length is not None:
                    found.add(event.ts + length + 1)
                if event.followed_at is not None:
                    found.add(event.followed_at)
                if wait is not None:
                    found.add(event.ts + wait)
        return found

    def qualifying(self, index: int, as_of: int) -> list[Candidate]:
        """The qualifying events of the index-th event condition at `as_of`."""
        condition = self.leaves.events[index]
        low, high = window_bounds(condition.within, as_of)
        wait = condition.not_followed_by.within_hours * MICROS_PER_HOUR if condition.not_followed_by else None
        found = []
        for event in self.candidates[index]:
            if event.ts > high or (low is not None and event.ts < low):
                continue
            if condition.followed_by is not None and (event.followed_at is None or event.followed_at > as_of):
                continue
            if wait is not None and (event.spoiled or event.ts + wait > as_of):
                continue
            found.append(event)
        return found

    def did(self, index: int, as_of: int) -> bool:
        """Whether the index-th event condition's count, and its `having` figures, hold at `as_of`."""
        condition = self.leaves.events[index]
        qualifying = self.qualifying(index, as_of)
        if not ast.count_holds(condition.count, len(qualifying)):
            return False
        return not condition.having or self.figures[index, frozenset(event.id for event in qualifying)]

    def holds(self, node: ast.Filter, as_of: int) -> bool:
        match node:
            case ast.And(items):
                return all(self.holds(item, as_of) for item in items)
            case ast.Or(items):
                return any(self.holds(item, as_of) for item in items)
            case ast.Not(item):
                return not self.holds(item, as_of)
            case ast.InSegment(segment_id):
                return self.holds(self.segments[segment_id], as_of)
            case ast.ProfileMatch(condition):
                return bool(self.truths[self.leaves.properties.index(condition)])
            case ast.Did(condition) | ast.DidNot(condition):
                did = self.did(self.leaves.events.index(condition), as_of)
                return did if isinstance(node, ast.Did) else not did
        raise TypeError(f"not a filter node: {node!r}")


def _window_length(window: ast.Window | None) -> int | None:
    """How long an event stays in a window measured back from the instant evaluated at; None for the others."""
    match window:
        case ast.LastDays(n):
            return n * MICROS_PER_DAY
        case ast.LastHours(n):
            return n * MICROS_PER_HOUR
    return None

