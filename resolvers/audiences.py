"""Audience queries: one SELECT per page (plus one for totalCount when asked), keyset-paginated."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.compiler import Audience, FilterCompiler, count_statement, page_statement
from resolvers.cursors import decode_cursor, encode_cursor
from resolvers.errors import InputPath, QueryTimeoutError
from resolvers.filter_ast import Filter
from resolvers.filter_limits import check_page_size
from resolvers.segments import prepare_filter
from server.store import StatementTimeout, Store
from server.timestamps import now_utc, to_micros

PROFILE_CURSOR = "profile"


@dataclass
class ProfilePage:
    rows: list[Any]
    has_next_page: bool
    count: Callable[[], Awaitable[int]]

    def cursor(self, row: Any) -> str:
        return encode_cursor(PROFILE_CURSOR, row.id)


def as_of_micros(as_of: datetime | None) -> int:
    return to_micros(as_of if as_of is not None else now_utc())


async def compile_filter(
    connection: AsyncConnection, store: Store, value: Any, as_of: datetime | None, path: InputPath
) -> Audience:
    """Check a filter given as plain JSON (None: everyone) and compile it at `as_of`."""
    if value is None:
        return compile_prepared(store, None, {}, as_of)
    prepared = await prepare_filter(connection, value, path)
    return compile_prepared(store, prepared.root, prepared.segments, as_of)


def compile_prepared(store: Store, root: Filter | None, segments: dict[str, Filter], as_of: datetime | None) -> Audience:
    return FilterCompiler(store.dialect, as_of_micros(as_of), segments).audience(root)


async def profile_page(
    store: Store, audience: Audience, first: int, after: str | None
) -> ProfilePage:
    """`first` members after the cursor, in id order; totalCount is computed only when awaited."""
    check_page_size(first)
    after_id = decode_cursor(after, PROFILE_CURSOR, 1)[0] if after else None
    rows = await _fetch(store, page_statement(audience, after_id, first + 1))

    async def count() -> int:
        return await count_members(store, audience)

    return ProfilePage(rows[:first], len(rows) > first, count)


async def count_members(store: Store, audience: Audience) -> int:
    (row,) = await _fetch(store, count_statement(audience))
    return int(row[0] or 0)


async def _fetch(store: Store, statement: Any) -> list[Any]:
    try:
        return await store.fetch(statement)
    except StatementTimeout as timeout:
        raise QueryTimeoutError(f"the audience query took longer than {timeout.args[0]:g} s and was cancelled") from None


def explain_sql(store: Store, audience: Audience) -> str:
    """The page statement as this store runs it, its parameters listed after it."""
    statement = page_statement(audience, None, 101)
    compiled = statement.compile(dialect=store.engine.dialect, compile_kwargs={"render_postcompile": True})
    parameters = ", ".join(f"{name}={value!r}" for name, value in compiled.params.items())
    return f"{compiled}\n-- parameters: {parameters}"
