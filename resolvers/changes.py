"""Audience changes: who entered and who left a filter's audience between two instants, for the campaign
tools that keep a copy of an audience and sync it.

The audience is compiled at both instants; the changes are their symmetric difference, built from the
compiler's set shapes (entered = now − then, exited = then − now) and walk shapes (now ≠ then), and a
page is one statement, in profile id order after a keyset cursor, its shape chosen by the page plan as
for members. Whether a row entered or exited is the walk test of the later instant, on that row alone.

Only events make membership move with the instant, so the walk tests now ≠ then only on profiles with an
event whose part in the filter may differ between the two instants (`moving_profiles`): far fewer than
the members of a dense audience, which a walk would otherwise test one by one.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from resolvers.audiences import CompiledAudiences, NodeJson, compile_filter, told_to_client, walks_from_the_start
from resolvers.compiler import (
    SCANNED,
    Audience,
    count_statement,
    intersection,
    metric_ids,
    operand,
    page_statement,
    union,
    window_bounds,
)
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InputPath, NotFoundError, UserInputError
from resolvers.export_lines import json_line
from resolvers.exports import COLUMNS, opened_file, parse_as_of
from resolvers.language import ast as ast
from resolvers.language.limits import check_page_size
from resolvers.page_plan import WALK_SHAPE, PagePolicy, shape_of
from resolvers.segments import parse_segment_id, segments_query
from store.engine import Store
from store.tables import PROFILE_ROW, profile_json, profiles
from vocabulary.timestamps import MICROS_PER_HOUR, format_datetime, now_utc, to_micros

CHANGE_CURSOR = "change"
ENTERED, EXITED = "ENTERED", "EXITED"


@dataclass(frozen=True)
class Changes:
    """A filter's audience at `since` (`then`) and at `as_of` (`now`), and what differs between them."""

    then: Audience
    now: Audience
    since: datetime
    as_of: datetime

    @functools.cached_property
    def entered(self) -> Audience:
        return intersection([self.now, self.then.invert()])

    @functools.cached_property
    def exited(self) -> Audience:
        return intersection([self.then, self.now.invert()])

    @functools.cached_property
    def changed(self) -> Audience:
        """Entered or exited: a set (or complement) to page through, and the walk test now ≠ then."""
        either = union([self.entered, self.exited])
        if self.now.negated == self.then.negated and self.now.ids is not None and self.then.ids is not None:
            # ¬N Δ ¬T = N Δ T: the ids in one set only, each set built once (twice in the differences).
            both = sa.union_all(operand(self.now.ids), operand(self.then.ids)).subquery("both_instants")
            once = sa.select(both.c[0]).group_by(both.c[0]).having(sa.func.count() == 1)
            either = Audience(once)
        now_walk, then_walk = self.now.walk, self.then.walk
        assert now_walk is not None and then_walk is not None  # compiled audiences always have one

        moving = moving_profiles(self.now.event_conditions, to_micros(self.since), to_micros(self.as_of))

        def differs() -> ColumnElement[bool]:
            if moving is None:
                return sa.false()
            return sa.and_(profiles.c.id.in_(moving), now_walk() != then_walk())

        return Audience(either.ids, either.negated, functools.cache(differs))

    def change(self, entered: str = ENTERED, exited: str = EXITED) -> ColumnElement[str]:
        """Which way the changed profile of the enclosing row went (tested on that row only)."""
        assert self.now.walk is not None
        return sa.case((self.now.walk(), sa.literal(entered)), else_=sa.literal(exited))

    def counts_statement(self) -> sa.Select[Any]:
        """(entered, exited) in one row."""
        return sa.select(*(count_statement(part).scalar_subquery() for part in (self.entered, self.exited)))


def moving_profiles(conditions: Sequence[ast.EventCondition], then: int, now: int) -> sa.Select[Any] | None:
    """The profiles with an event that one of `conditions` may count at one instant (microseconds) and not at the
    other: an event of a metric the conditions or their follow-ups name, lying between the two places of something
    that moved with the instant (the instant itself, an edge of a window, the events whose `notFollowedBy` wait has
    ended), ends included. Every other profile's counts and figures are the same at both instants. None when there
    is no event condition: then no one's membership moves."""
    if not conditions:
        return None
    spans = {(then, now)}  # events (and follow-ups) that exist at one instant only
    names: set[str] = set()
    for condition in conditions:
        follow_ups = [f for f in (condition.followed_by, condition.not_followed_by) if f is not None]
        names.update([condition.metric, *(f.metric for f in follow_ups)])
        (low_then, high_then), (low_now, high_now) = window_bounds(condition.within, then), window_bounds(condition.within, now)
        spans.add((min(high_then, high_now), max(high_then, high_now)))
        if low_then is not None and low_now is not None:
            spans.add((min(low_then, low_now), max(low_then, low_now)))
        if condition.not_followed_by is not None:
            wait = condition.not_followed_by.within_hours * MICROS_PER_HOUR
            spans.add((then - wait, now - wait))
    event = SCANNED
    return sa.select(event.c.profile_id).where(
        event.c.metric_id.in_(metric_ids(names)),
        sa.or_(*(event.c.ts.between(sa.literal(low, sa.BigInteger), sa.literal(high, sa.BigInteger))
                 for low, high in merged(spans))),
    ).with_hint(event, "INDEXED BY ix_events_metric_ts_profile", "sqlite").correlate(None)


def merged(spans: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Closed spans, overlapping ones joined, in order."""
    joined: list[tuple[int, int]] = []
    for low, high in sorted(spans):
        if joined and low <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], high))
        else:
            joined.append((low, high))
    return joined


async def compile_changes(
    store: Store, value: Any, since: datetime, as_of: datetime | None, path: InputPath,
    compiled: CompiledAudiences | None = None,
) -> Changes:
    """Check the filter (plain JSON) and the instants (`since < asOf`, asOf default now) and compile both audiences."""
    instant = as_of if as_of is not None else now_utc()
    if since >= instant:
        raise UserInputError(f"since ({format_datetime(since)}) must be before asOf ({format_datetime(instant)})",
                             ("since",))
    now = await compile_filter(store, value, instant, path, compiled)
    # Both audiences go in one statement: their named subqueries need names of their own.
    then = await compile_filter(store, value, since, path, compiled, cte_prefix="segment_then")
    return Changes(then, now, since, instant)


@dataclass(frozen=True)
class EdgeJson:
    """Edges written as JSON from the database's text of each node: their keys in order, each the response
    key of a part, "cursor", "change", "node" or "type" (the edge's type name, `type_name`)."""

    keys: tuple[tuple[str, str], ...]
    node: NodeJson
    type_name: str


@dataclass
class ChangePage:
    rows: list[Any]  # PROFILE_ROW and the change; or, `as_json`, the id, the node's JSON text and the change
    has_next_page: bool
    next_walk_span: int
    edges_json: str | None = None  # the edges as one JSON array (`EdgeJson`)

    def cursor(self, row: Any) -> str:
        return encode_cursor(CHANGE_CURSOR, row[0], self.next_walk_span)

    def write_edges(self, as_json: EdgeJson) -> str:
        """The page's edges as a JSON array, each node the database's text as it is."""
        type_name = orjson.dumps(as_json.type_name).decode()
        parts = {"cursor": lambda row: orjson.dumps(self.cursor(row)).decode(),
                 "change": lambda row: orjson.dumps(row[2]).decode(), "node": lambda row: row[1],
                 "type": lambda row: type_name}
        keyed = [(orjson.dumps(key).decode() + ":", parts[part]) for key, part in as_json.keys]
        return "[" + ",".join("{" + ",".join(key + value(row) for key, value in keyed) + "}" for row in self.rows) + "]"


async def change_page(
    store: Store, changes: Changes, first: int, after: str | None, policy: PagePolicy, as_json: EdgeJson | None = None,
) -> ChangePage:
    """`first` changed profiles after the cursor, in id order: one statement, in the shape the page plan
    picks (the cursor carries the next page's, as for members). With `as_json`, the edges come as JSON
    written from each node's text, which the database writes (building 1,000 edges as objects was most
    of a page's time: docs/performance.md)."""
    check_page_size(first)
    changed = changes.changed
    if after:
        after_id, walk_span = decode_cursor(after, CHANGE_CURSOR, int, int)
    else:
        after_id = None
        walk_span = policy.first_walk_span(first, await _walks(store, changes, policy.page_density_sample, policy))
    columns = (PROFILE_ROW if as_json is None else
               (profiles.c.id, profile_json(store.dialect, as_json.node.fields, as_json.node.type_name)))
    statement = page_statement(changed, after_id, first + 1, (*columns, changes.change()),
                               walk=shape_of(walk_span) == WALK_SHAPE)
    rows, seconds = await told_to_client(store.fetch_timed(statement))
    page, has_next_page = rows[:first], len(rows) > first
    if has_next_page:
        walk_span = policy.next_walk_span(walk_span, page[-1][0] - (after_id or 0), seconds, changed.negated)
    found = ChangePage(page, has_next_page, walk_span)
    if as_json is not None:
        found.edges_json = found.write_edges(as_json)
    return found


async def _walks(store: Store, changes: Changes, sample: int, policy: PagePolicy) -> bool:
    """Whether changes are read in the walk shape: when they are dense, or when the audience is (its set
    shape builds the audience at both instants, which costs more than testing profiles in id order)."""
    return (await walks_from_the_start(store, changes.changed, sample, policy)
            or await walks_from_the_start(store, changes.now, sample, policy))


async def count_changes(store: Store, changes: Changes) -> tuple[int, int]:
    """(entered, exited)."""
    ((entered, exited),) = await told_to_client(store.fetch(changes.counts_statement()))
    return int(entered or 0), int(exited or 0)


# ---------------------------------------------------------------- changes.ndjson

CHANGE_KEY = "change"


@dataclass(frozen=True)
class ChangeExport:
    """A saved segment's changes between two instants, ready to stream as JSON lines: the member's CSV
    fields as keys, and "change": "entered" or "exited"."""

    store: Store
    segment_id: int
    changes: Changes
    policy: PagePolicy
    media_type = "application/x-ndjson"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Disposition": f'attachment; filename="segment-{self.segment_id}-changes.ndjson"',
            # The instants compared: the next sync asks for the changes since this asOf.
            "X-SegmentQL-Since": format_datetime(self.changes.since),
            "X-SegmentQL-As-Of": format_datetime(self.changes.as_of),
            "Cache-Control": "no-store",
        }

    async def rows(self, page_size: int | None = None) -> AsyncIterator[Sequence[Sequence[Any]]]:
        """(line, change) rows in id order, `page_size` at a time from one streamed statement."""
        changed = self.changes.changed
        walk = await _walks(self.store, self.changes, self.policy.export_density_sample, self.policy)
        change = self.changes.change("entered", "exited")
        line = json_line((*COLUMNS, CHANGE_KEY), [*(profiles.c[name] for name in COLUMNS), change])
        statement = page_statement(changed, None, None, [line, change], walk=walk)
        async for page in self.store.stream(statement, page_size or self.policy.export_chunk):
            yield page

    @staticmethod
    def encode(rows: Sequence[Sequence[Any]]) -> bytes:
        return "".join([row[0] for row in rows]).encode()

    async def opened(self, page_size: int | None = None) -> AsyncIterator[bytes]:
        """The encoded lines with the first page already read (`opened_file`)."""
        return await opened_file(self.rows(page_size), self.encode)


async def prepare_change_export(
    store: Store, segment_id: str, since: str | datetime | None, as_of: str | datetime | None,
    policy: PagePolicy | None = None, compiled: CompiledAudiences | None = None,
) -> ChangeExport:
    """Check the request and compile both audiences; NotFoundError / UserInputError for bad requests."""
    if since is None:
        raise UserInputError("since is required: the instant of the last sync (ISO 8601)", ("since",))
    since_instant = _instant(since, "since")
    instant = parse_as_of(as_of)
    key = parse_segment_id(segment_id, ("id",))
    rows = await store.fetch(segments_query(str(key)), replica=False)
    if not rows:
        raise NotFoundError(f"no segment with id {segment_id!r}", ("id",))
    changes = await compile_changes(store, rows[0].filter, since_instant, instant, (), compiled)
    return ChangeExport(store, key, changes, policy or PagePolicy())


def _instant(value: str | datetime, name: str) -> datetime:
    try:
        return parse_as_of(value)
    except UserInputError as error:
        raise UserInputError(error.message.replace("asOf", name, 1), (name,)) from None
