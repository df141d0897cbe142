"""Chunks of a streamed read, each read while the caller is still busy with the one before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any


async def read_ahead(fetch_chunk: Callable[[], Awaitable[Sequence[Any]]]) -> AsyncGenerator[Sequence[Any], None]:
    """Chunks from `fetch_chunk` until an empty one; the next is in flight while the caller encodes and
    sends this one, so that the database and the event loop work side by side rather than in turns."""
    reading = asyncio.ensure_future(fetch_chunk())
    try:
        # Shielded: a caller cancelled while waiting (a client gone) must not abandon a read that is
        # still using the connection, which is released only after this generator ends.
        while chunk := await asyncio.shield(reading):
            reading = asyncio.ensure_future(fetch_chunk())
            yield chunk
    finally:
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()  # retrieved, so that a failed read is not reported as never awaited
