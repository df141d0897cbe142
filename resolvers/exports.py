"""Audience exports for campaign tools: every member of a saved segment, streamed in id order.

An export is compiled once, at one instant `as_of` (default: when it was asked for), and runs as
one statement whose rows are streamed (a server-side cursor) a chunk at a time: each chunk is
encoded and handed on while the next is read, so memory stays constant whatever the audience
size. One statement rather than keyset pages because every page would rebuild the member set,
making an export quadratic in the audience's size (docs/performance.md).

The statement takes the walk shape (each profile tested in id order) when a first page would
(`resolvers.audiences.walks_from_the_start`, probing the policy's export sample), else the set shape,
which first builds the whole member set; on a sparse audience the walk would test every profile for
few members (docs/performance.md has the figures).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.sql.elements import ColumnElement

from resolvers.audiences import Paging, compile_filter, count_members, told_to_client, walks_from_the_start
from resolvers.compiler import Audience, page_statement
from resolvers.errors import NotFoundError, UserInputError
from resolvers.export_lines import Rendering, csv_rendering, json_rendering
from resolvers.page_plan import PagePolicy
from resolvers.segments import parse_segment_id, segments_query
from store.engine import Store
from store.tables import profiles
from vocabulary.timestamps import format_datetime, now_utc, parse_datetime

COLUMNS = ("id", "email", "phone_number", "external_id", "first_name", "last_name")

Rows = Sequence[Sequence[Any]]


def _columns() -> list[ColumnElement[Any]]:
    return [profiles.c[name] for name in COLUMNS]


@dataclass(frozen=True)
class ExportFormat:
    """A file format: its header, and how a store's dialect renders members as lines of it."""

    name: str
    media_type: str
    header: bytes
    rendering: Callable[[str], Rendering]


FORMATS = {
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", (",".join(COLUMNS) + "\r\n").encode(),
                        lambda dialect: csv_rendering(_columns(), dialect)),
    # `id` is a string, as Profile.id (an ID) is in GraphQL, so that both join on the same value.
    "ndjson": ExportFormat("ndjson", "application/x-ndjson", b"",
                           lambda dialect: json_rendering(COLUMNS, _columns(), dialect)),
}


class StreamedExport(Protocol):
    """What an HTTP route streams: the file's media type and headers, and its bytes once opened (`opened_file`)."""

    @property
    def media_type(self) -> str: ...

    @property
    def headers(self) -> dict[str, str]: ...

    async def opened(self, page_size: int | None = None) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Export:
    """The members of one segment at one instant, ready to stream."""

    store: Store
    segment_id: int
    as_of: datetime
    audience: Audience
    format: ExportFormat
    rendering: Rendering
    policy: PagePolicy

    @property
    def filename(self) -> str:
        return f"segment-{self.segment_id}-members.{self.format.name}"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            # The instant the audience was evaluated at, to reconcile with Segment.count(asOf: …).
            "X-SegmentQL-As-Of": format_datetime(self.as_of),
            "Cache-Control": "no-store",
        }

    async def count(self) -> int:
        """The number of members this export yields (what Segment.count reports at `as_of`)."""
        return await count_members(self.store, self.audience)

    async def rows(self, page_size: int | None = None) -> AsyncIterator[Rows]:
        """The members in id order as rendered lines, `page_size` at a time from one streamed statement."""
        walk = await walks_from_the_start(self.store, self.audience, self.policy.export_density_sample, self.policy)
        statement = page_statement(self.audience, None, None, [self.rendering.line], walk=walk)
        async for page in self.store.stream(statement, page_size or self.policy.export_chunk):
            yield page

    def encode(self, rows: Rows) -> bytes:
        """A chunk of rows from `rows()` as the bytes of the file."""
        return self.rendering.finish(rows)

    async def chunks(self, page_size: int | None = None) -> AsyncIterator[bytes]:
        """The encoded file: the header (CSV), then one chunk per page."""
        async for chunk in await self.opened(page_size):
            yield chunk

    @property
    def media_type(self) -> str:
        return self.format.media_type

    async def opened(self, page_size: int | None = None) -> AsyncIterator[bytes]:
        """The encoded file (`chunks`) with its first page already read (`opened_file`)."""
        return await opened_file(self.rows(page_size), self.encode, self.format.header)


async def opened_file(
    pages: AsyncIterator[Any], encode: Callable[[Any], bytes], header: bytes = b""
) -> AsyncIterator[bytes]:
    """The bytes of a streamed file, `header` then each page encoded, with the first page already read: a query
    that fails before its first row raises here (QueryTooComplexError, QueryTimeoutError), before a byte is sent."""
    first = await told_to_client(anext(pages, None))

    async def encoded() -> AsyncIterator[bytes]:
        if header:
            yield header
        if first is None:
            return
        yield encode(first)
        async for page in pages:
            yield encode(page)

    return encoded()


async def prepare_export(
    store: Store, segment_id: str, format_name: str, as_of: str | datetime | None,
    paging: Paging | None = None,
) -> Export:
    """Check the request and compile the audience once; NotFoundError / UserInputError for bad requests."""
    export_format = FORMATS.get(format_name)
    if export_format is None:
        raise UserInputError(f"unknown export format {format_name!r}; one of: {', '.join(FORMATS)}", ("format",))
    instant = parse_as_of(as_of)
    key = parse_segment_id(segment_id, ("id",))
    rows = await store.fetch(segments_query(str(key)), replica=False)
    if not rows:
        raise NotFoundError(f"no segment with id {segment_id!r}", ("id",))
    # Compiled from the stored filter just read (as Segment.count does): no second read of the segment.
    paging = paging or Paging()
    audience = await compile_filter(store, rows[0].filter, instant, (), paging.compiled)
    return Export(store, key, instant, audience, export_format, export_format.rendering(store.dialect), paging.policy)


# A '+' left unencoded in a query string arrives as a space: "…T12:00:00 02:00" meant "+02:00".
_SPACED_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})")


def parse_as_of(value: str | datetime | None) -> datetime:
    """An evaluation instant (UTC); None is now, fixed once so that every page sees the same instant."""
    if value is None:
        return now_utc()
    if isinstance(value, str) and (spaced := _SPACED_OFFSET.fullmatch(value.strip())):
        value = f"{spaced[1]}+{spaced[2]}"
    try:
        return parse_datetime(value)
    except (ValueError, TypeError, OverflowError):
        raise UserInputError(
            f"asOf is not an ISO 8601 datetime (e.g. 2026-11-20T12:00:00Z): {value!r}", ("asOf",)
        ) from None
