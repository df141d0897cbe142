"""Why one profile is, or is not, in a filter's audience: each condition's truth at an instant, with evidence.

The filter's tree is kept as given (a saved segment is one node whose child is its filter). Its truths
come from SQL over that profile alone, in at most four statements whatever the tree's size: one reads the
profile and every property condition's truth, one every event condition's qualifying events (the compiler's
own tests, so an explanation agrees with the audience), which are counted, one the newest 20 of each, and
one every `having` figure over them with whether it holds (the compiler's own figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from resolvers.audiences import as_of_micros
from resolvers.compiler import PROFILE_COLUMNS, SCANNED, FilterCompiler, window_bounds
from resolvers.errors import InputPath, NotFoundError
from resolvers.events import event_query
from resolvers.language import ast as ast
from resolvers.language.limits import check_expanded
from resolvers.language.text import print_filter
from resolvers.segments import checked_filter, database_id, referenced_segments
from store.engine import Store
from store.tables import decode_properties, events, profiles
from vocabulary.timestamps import format_datetime, from_micros

# The qualifying events an explanation shows per condition, newest first.
SHOWN_EVENTS = 20


@dataclass
class Explanation:
    """One node of the filter's tree for one profile at one instant (times in microseconds)."""

    kind: str  # AND OR NOT DID DID_NOT PROFILE IN_SEGMENT
    expression: str
    holds: bool
    children: list[Explanation] = field(default_factory=list)
    count: int | None = None
    window_start: int | None = None
    window_end: int | None = None
    events: list[Any] = field(default_factory=list)  # rows as resolvers.events.EVENT_COLUMNS
    figures: list[Figure] = field(default_factory=list)
    value: Any = None


@dataclass(frozen=True)
class Figure:
    """A `having` figure over one condition's qualifying events: None when it has no value."""

    aggregate: ast.AggregateCondition
    value: float | None
    holds: bool


@dataclass(frozen=True)
class MembershipExplanation:
    member: bool
    as_of: datetime
    root: Explanation


async def explain_membership(
    store: Store, profile_id: str, value: Any, as_of: datetime | None, path: InputPath = ("filter",)
) -> MembershipExplanation:
    """The explanation of `value` (a filter as plain JSON) for one profile; NOT_FOUND for an unknown profile."""
    root = checked_filter(value, path, as_of)
    key = database_id(profile_id)
    if key is None:
        raise NotFoundError(f"no profile with id {profile_id!r}", ("profile",))
    async with store.connect() as connection:
        segments = await referenced_segments(connection, root, path) if ast.segment_references(root) else {}
        check_expanded(root, segments, path)
        micros = as_of_micros(as_of)
        compiler = FilterCompiler(store.dialect, micros, segments)
        leaves = Leaves(root, segments)
        profile = (await connection.execute(leaves.profile_statement(compiler, key))).first()
        if profile is None:
            raise NotFoundError(f"no profile with id {profile_id!r}", ("profile",))
        qualifying = (await connection.execute(leaves.events_statement(compiler, key))).all() if leaves.events else []
        counts = [0] * len(leaves.events)
        newest: dict[int, int] = {}  # event id -> leaf, the newest SHOWN_EVENTS of each
        for leaf, event_id, _ in qualifying:
            counts[leaf] += 1
            if counts[leaf] <= SHOWN_EVENTS:
                newest[event_id] = leaf
        rows = (await connection.execute(event_query().where(events.c.id.in_(list(newest))))).all() if newest else []
        having = leaves.figures_statement(compiler, key)
        figured = (await connection.execute(having)).all() if having is not None else []
    # By position in `leaves`: conditions holding lists are not hashable.
    truths = list(profile[1 + len(PROFILE_COLUMNS):])
    by_id = {row.id: row for row in rows}
    by_condition: list[list[Any]] = [[] for _ in leaves.events]
    for leaf, event_id, _ in qualifying:
        if event_id in by_id and len(by_condition[leaf]) < SHOWN_EVENTS:
            by_condition[leaf].append(by_id[event_id])
    figures: list[list[Figure]] = [[] for _ in leaves.events]
    for leaf, position, value, holds in figured:
        figures[leaf].append(Figure(leaves.events[leaf].having[position], value, bool(holds)))
    evidence = Evidence(leaves, profile_values(profile), truths, counts, by_condition, figures)
    explained = _explain(root, segments, micros, evidence)
    return MembershipExplanation(explained.holds, from_micros(micros), explained)


class Leaves:
    """The distinct property and event conditions of a tree, saved segments' included."""

    def __init__(self, root: ast.Filter, segments: dict[str, ast.Filter]) -> None:
        self.events = ast.event_conditions(root, segments)
        self.properties: list[ast.PropertyCondition] = []
        stack = [root]
        while stack:
            match stack.pop():
                case ast.And(items) | ast.Or(items):
                    stack.extend(items)
                case ast.Not(item):
                    stack.append(item)
                case ast.InSegment(segment_id):
                    stack.append(segments[segment_id])
                case ast.ProfileMatch(condition) if condition not in self.properties:
                    self.properties.append(condition)

    def profile_statement(self, compiler: FilterCompiler, key: int) -> sa.Select[Any]:
        """The profile's properties and built-in fields (PROFILE_COLUMNS), then each property condition's truth."""
        return sa.select(
            sa.type_coerce(profiles.c.properties, sa.Text), *PROFILE_COLUMNS.values(),
            *(compiler.profile_predicate(condition) for condition in self.properties),
        ).where(profiles.c.id == key)

    def events_statement(self, compiler: FilterCompiler, key: int) -> Any:
        """(leaf, id) of each event condition's qualifying events of the profile (`leaf` its index in `events`),
        newest first (ties: higher id first). Plain SELECTs side by side: subqueries cost more to build than the
        one profile's rows cost to read."""
        event = SCANNED
        parts = [
            sa.select(sa.literal(index).label("leaf"), event.c.id.label("id"), event.c.ts.label("ts"))
            .where(event.c.profile_id == key, *compiler.qualifying(event, condition))
            .with_hint(event, "INDEXED BY ix_events_profile_metric_ts", "sqlite")
            for index, condition in enumerate(self.events)
        ]
        shown = parts[0] if len(parts) == 1 else sa.union_all(*parts)
        return shown.order_by(sa.literal_column("leaf"), sa.literal_column("ts").desc(), sa.literal_column("id").desc())

    def figures_statement(self, compiler: FilterCompiler, key: int) -> Any:
        """(leaf, position, value, holds) of every `having` figure of each event condition over the profile's
        qualifying events, in order; None when no condition has one."""
        event = SCANNED
        parts = []
        for index, condition in enumerate(self.events):
            source, _, figures = compiler.having_figures(event, condition)
            parts += [
                sa.select(sa.literal(index).label("leaf"), sa.literal(position).label("position"),
                          sa.cast(value, sa.Float).label("value"), sa.case((holds, 1), else_=0).label("holds"))
                .select_from(source).where(event.c.profile_id == key, *compiler.qualifying(event, condition))
                .with_hint(event, "INDEXED BY ix_events_profile_metric_ts", "sqlite")
                for position, (value, holds) in enumerate(figures)
            ]
        if not parts:
            return None
        return (parts[0] if len(parts) == 1 else sa.union_all(*parts)).order_by(
            sa.literal_column("leaf"), sa.literal_column("position"))


@dataclass(frozen=True)
class Evidence:
    """What the statements read: the values property conditions read, and by position in `leaves`, each
    property condition's truth and each event condition's count and newest events."""

    leaves: Leaves
    values: dict[str, Any]
    truths: list[bool]
    counts: list[int]
    events: list[list[Any]]
    figures: list[list[Figure]]


def _explain(node: ast.Filter, segments: dict[str, ast.Filter], as_of: int, evidence: Evidence) -> Explanation:
    def explain(part: ast.Filter) -> Explanation:
        return _explain(part, segments, as_of, evidence)

    expression = print_filter(node)
    match node:
        case ast.And(items):
            children = [explain(item) for item in items]
            return Explanation("AND", expression, all(c.holds for c in children), children)
        case ast.Or(items):
            children = [explain(item) for item in items]
            return Explanation("OR", expression, any(c.holds for c in children), children)
        case ast.Not(item):
            child = explain(item)
            return Explanation("NOT", expression, not child.holds, [child])
        case ast.InSegment(segment_id):
            child = explain(segments[segment_id])
            return Explanation("IN_SEGMENT", expression, child.holds, [child])
        case ast.ProfileMatch(condition):
            holds = bool(evidence.truths[evidence.leaves.properties.index(condition)])
            return Explanation("PROFILE", expression, holds, value=evidence.values.get(condition.property))
        case ast.Did(condition) | ast.DidNot(condition):
            leaf = evidence.leaves.events.index(condition)
            rows, count, figures = evidence.events[leaf], evidence.counts[leaf], evidence.figures[leaf]
            did = ast.count_holds(condition.count, count) and all(f.holds for f in figures)
            start, end = window_instants(condition.within, as_of)
            return Explanation("DID" if isinstance(node, ast.Did) else "DID_NOT", expression,
                               did if isinstance(node, ast.Did) else not did,
                               count=count, window_start=start, window_end=end, events=rows, figures=figures)
    raise TypeError(f"not a filter node: {node!r}")


def window_instants(window: ast.Window | None, as_of: int) -> tuple[int | None, int]:
    """A window as instants: its first (None: unbounded) and the earlier of its end and `as_of`."""
    low, high = window_bounds(window, as_of)
    return low, as_of if high == as_of else high + 1  # an end is exclusive: its last microsecond + 1


def profile_values(row: Any) -> dict[str, Any]:
    """What property conditions read of a `Leaves.profile_statement` row: its properties' keys, then the
    built-in fields (createdAt as an ISO datetime)."""
    properties = decode_properties(row[0])
    values = dict(properties) if isinstance(properties, dict) else {}
    for index, name in enumerate(PROFILE_COLUMNS, start=1):
        values[name] = format_datetime(from_micros(row[index])) if name == "createdAt" else row[index]
    return values
