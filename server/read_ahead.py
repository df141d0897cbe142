"""Chunks of a streamed read, each read while the caller is still busy with the one before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any


async def read_ahead(fetch_chunk: Callable[[], Awaitable[Sequence[Any]]]) -> AsyncIterator[Sequence[Any]]:
    """Chunks from `fetch_chunk` until an empty one; the next is in flight while the caller encodes and
    sends this one, so that the database and the event loop work side by side rather than in turns."""
    reading = asyncio.ensure_future(fetch_chunk())
    try:
        while chunk := await reading:
            reading = asyncio.ensure_future(fetch_chunk())
            yield chunk
    finally:
        # A caller that stopped early (a client gone): the read in flight ends before the connection is released.
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()  # retrieved, so that a failed read is not reported as never awaited
