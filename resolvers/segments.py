"""Saved segments: filters checked and stored in the input shape, references resolved, cycles refused."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from resolvers.errors import InputPath, NotFoundError, UserInputError
from resolvers.language import ast as ast
from resolvers.language.limits import check_expanded, check_filter, iter_filters
from resolvers.language.structured import filter_from_input, filter_to_input
from resolvers.language.text import parse_filter
from store.dialects import dialect_named
from store.engine import Store
from store.tables import segments
from vocabulary.timestamps import now_utc, to_micros


@dataclass(frozen=True)
class PreparedFilter:
    """A checked filter and every saved segment it reaches, ready to compile."""

    root: ast.Filter
    segments: dict[str, ast.Filter]


def database_id(text: str) -> int | None:
    """The integer an ID names, when it is one (ASCII digits that fit 64 bits); else None."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def parse_segment_id(segment_id: str, path: InputPath) -> int:
    key = database_id(segment_id)
    if key is None:
        raise NotFoundError(f"no segment with id {segment_id!r}", path)
    return key


async def prepare_filter(connection: AsyncConnection, value: Any, path: InputPath) -> PreparedFilter:
    """Build and check a filter given as plain JSON, expanded through the saved segments it names
    (each must exist) against the limits."""
    root = checked_filter(value, path)
    reached = await referenced_segments(connection, root, path)
    check_expanded(root, reached, path)
    return PreparedFilter(root, reached)


def checked_filter(value: Any, path: InputPath, as_of: datetime | None = None) -> ast.Filter:
    """A filter given as plain JSON, built and checked against the limits at `as_of` (default: now; no
    saved segment read yet)."""
    root = filter_from_input(value, parse_filter, path)
    check_filter(root, path, as_of)
    for node_path, _, node in iter_filters(root, path):
        if isinstance(node, ast.InSegment):
            parse_segment_id(node.segment_id, (*node_path, "inSegment"))
    return root


async def referenced_segments(connection: AsyncConnection, root: ast.Filter, path: InputPath) -> dict[str, ast.Filter]:
    """The stored filters of the segments `root` names, transitively; each named one must exist."""
    reached = await _reachable_segments(connection, ast.segment_references(root))
    for node_path, _, node in iter_filters(root, path):
        if isinstance(node, ast.InSegment) and node.segment_id not in reached:
            raise UserInputError(f"inSegment names no saved segment: {node.segment_id!r}", (*node_path, "inSegment"))
    return reached


async def _reachable_segments(connection: AsyncConnection, ids: Iterable[str]) -> dict[str, ast.Filter]:
    """The stored filters of these segments and of all they refer to, transitively."""
    reached: dict[str, ast.Filter] = {}
    frontier = set(ids)
    while frontier:
        wanted = [key for key in map(database_id, frontier) if key is not None]
        rows = (await connection.execute(
            sa.select(segments.c.id, segments.c.filter).where(segments.c.id.in_(wanted))
        )).all() if wanted else []
        found = {str(row.id): filter_from_input(row.filter) for row in rows}
        reached.update(found)
        frontier = set().union(*(ast.segment_references(f) for f in found.values())) - set(reached)
    return reached


def _refers_to(target: str, start: ast.Filter, known: dict[str, ast.Filter]) -> bool:
    return target in ast.reached_segments(start, known)


async def create_segment(store: Store, name: str, description: str | None, value: Any) -> int:
    _check_name(name, ("input", "name"))
    async with store.begin() as connection:
        prepared = await prepare_filter(connection, value, ("input", "filter"))
        now = to_micros(now_utc())
        inserted = await connection.execute(sa.insert(segments).values(
            name=name, description=description, filter=filter_to_input(prepared.root), created_at=now, updated_at=now,
        ))
        key = inserted.inserted_primary_key
        assert key is not None  # an INSERT of one row
        return int(key[0])


async def update_segment(store: Store, segment_id: str, changes: dict[str, Any]) -> int:
    key = parse_segment_id(segment_id, ("id",))
    async with store.begin() as connection:
        if dialect_named(store.dialect).writes_side_by_side:
            # Two concurrent updates (A → B, B → A) must not both pass the cycle check.
            await connection.execute(sa.text("LOCK TABLE segments IN SHARE ROW EXCLUSIVE MODE"))
        if await connection.scalar(sa.select(segments.c.id).where(segments.c.id == key)) is None:
            raise NotFoundError(f"no segment with id {segment_id!r}", ("id",))
        values: dict[str, Any] = {"updated_at": to_micros(now_utc())}
        if "name" in changes:
            _check_name(changes["name"], ("input", "name"))
            values["name"] = changes["name"]
        if "description" in changes:
            values["description"] = changes["description"]
        if "filter" in changes:
            prepared = await prepare_filter(connection, changes["filter"], ("input", "filter"))
            if _refers_to(str(key), prepared.root, prepared.segments):
                raise UserInputError("the filter would make the segment refer to itself", ("input", "filter"))
            await _check_segments_using(connection, str(key), prepared.root)
            values["filter"] = filter_to_input(prepared.root)
        await connection.execute(sa.update(segments).where(segments.c.id == key).values(**values))
        return key


async def _check_segments_using(connection: AsyncConnection, segment_id: str, new_root: ast.Filter) -> None:
    """Every segment that uses `segment_id`, directly or not, must stay within the limits with its new filter."""
    rows = (await connection.execute(sa.select(segments.c.id, segments.c.name, segments.c.filter))).all()
    known = {str(row.id): filter_from_input(row.filter) for row in rows}
    known[segment_id] = new_root
    names = {str(row.id): row.name for row in rows}
    for other, root in known.items():
        if other != segment_id and _refers_to(segment_id, root, known):
            check_expanded(root, known, ("input", "filter"), f"segment {other} ({names[other]}), which uses this one,")


async def delete_segment(store: Store, segment_id: str) -> bool:
    key = parse_segment_id(segment_id, ("id",))
    async with store.begin() as connection:
        rows = (await connection.execute(sa.select(segments.c.id, segments.c.name, segments.c.filter))).all()
        if not any(row.id == key for row in rows):
            raise NotFoundError(f"no segment with id {segment_id!r}", ("id",))
        users = [row.name for row in rows if str(key) in ast.segment_references(filter_from_input(row.filter))]
        if users:
            raise UserInputError(f"segment {segment_id} is used by: {', '.join(sorted(users))}", ("id",))
        await connection.execute(sa.delete(segments).where(segments.c.id == key))
        return True


def _check_name(name: str, path: InputPath) -> None:
    if not name.strip() or len(name) > 200:
        raise UserInputError("a segment name must be 1-200 characters", path)


def segments_query(segment_id: str | None = None) -> sa.Select[Any]:
    """Saved segments in id order; only the one `segment_id` names when given (none for a malformed id)."""
    query = sa.select(segments).order_by(segments.c.id)
    if segment_id is None:
        return query
    key = database_id(segment_id)
    return query.where(segments.c.id == key) if key is not None else query.where(sa.false())


async def segment_rows(connection: AsyncConnection, segment_id: str | None = None) -> list[Any]:
    return list((await connection.execute(segments_query(segment_id))).all())
