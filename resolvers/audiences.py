"""Audience queries: one SELECT per page (plus one for totalCount when asked), keyset-paginated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa

from resolvers.compiler import (
    AFTER_ID,
    Audience,
    FilterCompiler,
    aggregated_page_statement,
    count_statement,
    density_statement,
    page_statement,
)
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InputPath, QueryTimeoutError, QueryTooComplexError, UserInputError
from resolvers.language.ast import Filter, segment_references
from resolvers.language.limits import check_expanded, check_page_size
from resolvers.metrics import KnownMetrics
from resolvers.page_plan import WALK_SHAPE, PagePolicy, shape_of
from resolvers.segments import checked_filter, referenced_segments
from store.dialects import dialect_named
from store.engine import StatementTimeout, StatementTooLarge, Store
from store.tables import profile_json, profile_row, profiles
from vocabulary.timestamps import now_utc, to_micros

T = TypeVar("T")
PROFILE_CURSOR = "profile"
# Audiences compiled at an explicit instant that an app keeps for the next requests.
COMPILED_AUDIENCES = 64
DEFAULT_POLICY = PagePolicy()


class CompiledAudiences:
    """Audiences compiled at an explicit instant, kept for the next requests by (dialect, filter, instant);
    the least recently used is dropped first. One per app: a client paging through compiles once."""

    def __init__(self, capacity: int = COMPILED_AUDIENCES) -> None:
        self.capacity = capacity
        self._audiences: dict[Hashable, Audience] = {}

    def get(self, key: Hashable, compile: Callable[[], Audience]) -> Audience:
        audience = self._audiences.pop(key, None) or compile()
        self._audiences[key] = audience  # the most recently used last
        if len(self._audiences) > self.capacity:
            del self._audiences[next(iter(self._audiences))]
        return audience


@dataclass
class Paging:
    """What an app holds for its audience pages and exports: the plan's figures, the audiences it compiled,
    and the metric names it knows have events (to warn of the others)."""

    policy: PagePolicy = field(default_factory=PagePolicy)
    compiled: CompiledAudiences = field(default_factory=CompiledAudiences)
    metrics: KnownMetrics = field(default_factory=KnownMetrics)


@dataclass(frozen=True)
class NodeJson:
    """Nodes the database writes as JSON objects: a key per (key, column) pair, in order; a None column
    stands for `type_name`."""

    fields: tuple[tuple[str, str | None], ...]
    type_name: str


EXPLAIN_NODES = NodeJson((("id", "id"),), "Profile")


@dataclass
class ProfilePage:
    ids: list[int]
    rows: list[Any]  # the members' PROFILE_ROW rows; none when the nodes came as JSON
    has_next_page: bool
    count: Callable[[], Awaitable[int]]
    next_walk_span: int = 0  # see `profile_page`
    nodes_json: str | None = None  # the nodes as one JSON array, written by the database (`NodeJson`)

    def cursor(self, member_id: int) -> str:
        """A keyset cursor that also carries the shape the next page should take (its walk span)."""
        return encode_cursor(PROFILE_CURSOR, member_id, self.next_walk_span)


@dataclass(frozen=True)
class PageRequest:
    """One page of an audience as a client asks for it: the filter as given (None: everyone) at an
    instant (None: now), `first` members after the cursor, reading `columns` of PROFILE_ROW (None: all)
    or, `as_json`, each member's node as JSON text."""

    filter: Any
    as_of: datetime | None
    first: int
    after: str | None = None
    columns: frozenset[str] | None = None
    as_json: NodeJson | None = None

    @property
    def identity(self) -> Hashable | None:
        """What names its audience from one request to the next (`audience_identity`)."""
        return audience_identity(self.filter, self.as_of)


async def read_page(store: Store, audience: Audience, request: PageRequest, policy: PagePolicy) -> ProfilePage:
    """The page `request` asks for of `audience` (compiled from the request's filter and instant)."""
    return await profile_page(store, audience, request.first, request.after, request.columns, request.as_json,
                              request.identity, policy)


class _Unaligned(Exception):
    """An aggregated page does not hold together (SQLite promises no order to group_concat, and the
    nodes' text must be as long as their lengths say): the page is read again row by row."""


def as_of_micros(as_of: datetime | None) -> int:
    return to_micros(as_of if as_of is not None else now_utc())


async def compile_filter(
    store: Store, value: Any, as_of: datetime | None, path: InputPath, compiled: CompiledAudiences | None = None,
    cte_prefix: str = "segment",
) -> Audience:
    """Check a filter given as plain JSON (None: everyone) and compile it at `as_of`, through `compiled`
    when given. The store is read only when the filter names saved segments (their definitions, from the primary).
    Its named subqueries' names start with `cte_prefix` (two audiences in one statement need two).
    """
    if value is None:
        return compile_prepared(store, None, {}, as_of)
    root = checked_filter(value, path, as_of)
    if segment_references(root):
        async with store.connect() as connection:
            reached = await referenced_segments(connection, root, path)
        try:
            check_expanded(root, reached, path)
        except UserInputError as error:  # saved segments a later update made too large together
            raise QueryTooComplexError(error.message, error.input_path) from None
        # Saved segments make the largest filters: compiled in a worker thread, so that the event loop goes on
        # answering other requests (/healthz among them) meanwhile.
        return await asyncio.to_thread(compile_prepared, store, root, reached, as_of, cte_prefix)
    if as_of is None or compiled is None:
        return compile_prepared(store, root, {}, as_of)
    # At an explicit instant the same filter is the same audience: a client paging through it compiles it once.
    return compiled.get((store.dialect, *_audience_key(value, as_of)), lambda: compile_prepared(store, root, {}, as_of))


def compile_prepared(
    store: Store, root: Filter | None, segments: dict[str, Filter], as_of: datetime | None, cte_prefix: str = "segment"
) -> Audience:
    return FilterCompiler(store.dialect, as_of_micros(as_of), segments, cte_prefix).audience(root)


async def profile_page(
    store: Store, audience: Audience, first: int, after: str | None, columns: Collection[str] | None = None,
    as_json: NodeJson | None = None, identity: Hashable | None = None, policy: PagePolicy = DEFAULT_POLICY,
) -> ProfilePage:
    """`first` members after the cursor, in id order, reading `columns` of PROFILE_ROW (None: all) or,
    `as_json`, each member's node as JSON text; totalCount is computed only when awaited.

    The shape of each page follows `policy` (resolvers/page_plan.py); the cursor carries the next one's.

    With an `identity` (`audience_identity`), the next page is read while this one is sent
    (`Store.prefetch`): a client paging through mostly finds its page read already.
    """
    check_page_size(first)
    column_set = None if columns is None else frozenset(columns)  # part of the statements' and prefetches' keys
    if after:
        after_id, walk_span = decode_cursor(after, PROFILE_CURSOR, int, int)
    else:
        after_id = None
        walks = await walks_from_the_start(store, audience, policy.page_density_sample, policy)
        walk_span = policy.first_walk_span(first, walks)
    shape = shape_of(walk_span)
    # A page prefetched for this request has the same audience, size, columns, cursor and shape. Only
    # a client that pages on (it sent a cursor) has its next page read ahead.
    reading = None if identity is None else (identity, first, as_json, column_set)
    aggregated = as_json is not None and dialect_named(store.dialect).pages_in_one_row
    read = None if reading is None else store.prefetched((*reading, after_id, shape))
    if read is None:
        read = store.fetch_timed(*_page_read(store, audience, after_id, first, shape, column_set, as_json, aggregated))
    rows, seconds = await told_to_client(read)
    try:
        ids, page, nodes_json, has_next_page = _members(rows, first, as_json, aggregated)
    except _Unaligned:
        rows, seconds = await told_to_client(store.fetch_timed(
            *_page_read(store, audience, after_id, first, shape, column_set, as_json, aggregated=False)))
        ids, page, nodes_json, has_next_page = _members(rows, first, as_json, aggregated=False)
    if has_next_page:
        walk_span = policy.next_walk_span(walk_span, ids[-1] - (after_id or 0), seconds, audience.negated)
        shape = shape_of(walk_span)
        if reading is not None and after is not None:
            following = _page_read(store, audience, ids[-1], first, shape, column_set, as_json, aggregated)
            store.prefetch((*reading, ids[-1], shape), *following)

    async def count() -> int:
        return await count_members(store, audience)

    return ProfilePage(ids, page, has_next_page, count, walk_span, nodes_json)


def _page_read(
    store: Store, audience: Audience, after_id: int | None, first: int, shape: int, columns: frozenset[str] | None,
    as_json: NodeJson | None, aggregated: bool,
) -> tuple[Any, dict[str, int]]:
    """The statement of a page (`_page_statement`, one for every page after a cursor) and its parameters."""
    key = ("page", store.dialect, first, shape, columns, as_json, aggregated, after_id is None)
    statement = audience.statement(key, lambda: _page_statement(
        store, audience, None if after_id is None else AFTER_ID, first, shape, columns, as_json, aggregated))
    return statement, {} if after_id is None else {AFTER_ID.key: after_id}


def _page_statement(
    store: Store, audience: Audience, after_id: int | sa.BindParameter[int] | None, first: int, shape: int,
    columns: Collection[str] | None, as_json: NodeJson | None, aggregated: bool,
) -> Any:
    """The statement of a page, `first` + 1 members (the last only tells that there is a next page).

    `aggregated` (nodes as JSON on SQLite) makes it one row: SQLite's driver takes Python's global
    lock after every row it steps, so a page read ahead in a worker thread advanced only while the
    event loop was idle; one row lets the whole read run beside it.
    """
    walk = shape == WALK_SHAPE
    if as_json is None:
        return page_statement(audience, after_id, first + 1, profile_row(columns), walk=walk)
    node = profile_json(store.dialect, as_json.fields, as_json.type_name).label("node")
    members = page_statement(audience, after_id, first + 1, (profiles.c.id, node), walk=walk)
    return aggregated_page_statement(members) if aggregated else members


def _members(
    rows: list[Any], first: int, as_json: NodeJson | None, aggregated: bool
) -> tuple[list[int], list[Any], str | None, bool]:
    """(ids, PROFILE_ROW rows, nodes as a JSON array, whether there is a next page) from a page's rows."""
    if aggregated:
        ((ids_text, lengths_text, nodes),) = rows
        if ids_text is None:
            return [], [], "[]", False
        ids = list(map(int, ids_text.split(",")))
        lengths = list(map(int, lengths_text.split(",")))
        # The response carries the nodes' text as it is: it must be the nodes, whole, in id order (ids are unique).
        if ids != sorted(ids) or len(lengths) != len(ids) or len(nodes) != sum(lengths) + len(lengths) - 1:
            raise _Unaligned
        if len(ids) > first:  # the next page's first member: cut its node off
            nodes = nodes[:sum(lengths[:first]) + first - 1]
        return ids[:first], [], f"[{nodes}]", len(ids) > first
    page = rows[:first]
    ids = [row[0] for row in page]
    nodes_json = None if as_json is None else "[" + ",".join([row[1] for row in page]) + "]"
    return ids, [] if as_json is not None else page, nodes_json, len(rows) > first


def audience_identity(filter_value: Any, as_of: datetime | None) -> Hashable | None:
    """What names an audience from one request to the next: its filter as given, at an explicit instant.
    None as of now: each request's now is another instant, so another audience."""
    return None if as_of is None else _audience_key(filter_value, as_of)


def _audience_key(filter_value: Any, as_of: datetime) -> tuple[bytes, int]:
    return orjson.dumps(filter_value, option=orjson.OPT_SORT_KEYS), to_micros(as_of)


async def walks_from_the_start(store: Store, audience: Audience, sample: int, policy: PagePolicy) -> bool:
    """Whether a first page, or a whole export, takes the walk shape: a complement always does (its members
    are most profiles, and the set shape would first build the whole excluded set); another audience when
    the policy finds the first `sample` profiles dense with members (a bounded probe)."""
    return audience.negated or await is_dense(store, audience, sample, policy)


async def is_dense(store: Store, audience: Audience, sample: int, policy: PagePolicy) -> bool:
    """Whether the policy walks an audience with its members among the first `sample` profiles."""
    if audience.walk is None:
        return False
    probe = audience.statement(("density", sample), lambda: density_statement(audience, sample))
    ((sampled, members),) = await _fetch(store, probe)
    return policy.walks_at(members, sampled)


async def count_members(store: Store, audience: Audience) -> int:
    (row,) = await _fetch(store, audience.statement(("count",), lambda: count_statement(audience)))
    return int(row[0] or 0)


async def _fetch(store: Store, statement: Any) -> list[Any]:
    return await told_to_client(store.fetch(statement))


async def told_to_client(read: Awaitable[T]) -> T:
    """The read's result; the store's refusals (too slow, too large) as the client's errors."""
    try:
        return await read
    except StatementTimeout as timeout:
        raise QueryTimeoutError(f"the audience query took longer than {timeout.args[0]:g} s and was cancelled") from None
    except StatementTooLarge:
        raise QueryTooComplexError("the audience query is too large for the database to parse") from None


async def explained(store: Store, audience: Audience) -> str:
    """`explain_sql`, rendered in a worker thread: rendering a large audience's statements takes a while."""
    return await asyncio.to_thread(explain_sql, store, audience)


def explain_sql(store: Store, audience: Audience) -> str:
    """The statements as this store runs them, each with its parameters, the first page's first. Pages
    at an explicit asOf run the same statements, the next page's while the last one is sent."""
    if audience.negated:
        shapes: tuple[tuple[str, Any], ...] = (
            ("pages in the walk shape: every page of a complement", page_statement(audience, 0, 101, walk=True)),
        )
    elif audience.walk is None:  # no one
        shapes = (("pages", page_statement(audience, None, 101)),)
    else:
        shapes = (
            ("density probe before a first page: a dense audience walks",
             density_statement(audience, DEFAULT_POLICY.page_density_sample)),
            ("pages in the set shape: a sparse audience's pages", page_statement(audience, None, 101)),
            ("pages in the walk shape: a dense audience's pages, and later pages where walking is cheaper",
             page_statement(audience, 0, 101, walk=True)),
        )
    if audience.ids is not None or audience.negated:
        one_row = dialect_named(store.dialect).pages_in_one_row
        shapes = (*shapes, (
            "pages whose nodes select plain text fields (here `nodes { id }`): the database writes each node's JSON"
            + ("\n-- (in one row for the page, read again row by row if it does not hold together; "
               "the walk shape here, the set shape alike)" if one_row else ""),
            _page_statement(store, audience, 0, 100, WALK_SHAPE, None, EXPLAIN_NODES, one_row)))
    statements = (*shapes, ("totalCount", count_statement(audience)))
    return "\n\n".join(f"-- {title}\n{_render(store, statement)}" for title, statement in statements)


def _render(store: Store, statement: Any) -> str:
    compiled = statement.compile(dialect=store.engine.dialect, compile_kwargs={"render_postcompile": True})
    parameters = ", ".join(f"{name}={value!r}" for name, value in compiled.params.items())
    return f"{compiled}\n-- parameters: {parameters}"
