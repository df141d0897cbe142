"""Chunks read one ahead (store/read_ahead.py): in order, and no read abandoned when the caller goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence

import pytest

from store.read_ahead import read_ahead


async def test_chunks_come_in_order_and_the_next_is_read_while_one_is_used() -> None:
    chunks = [[1, 2], [3], [4, 5, 6], []]
    started: list[int] = []

    async def fetch_chunk() -> list[int]:
        started.append(len(started))
        return chunks[len(started) - 1]

    seen = []
    async for chunk in read_ahead(fetch_chunk):
        await asyncio.sleep(0)  # the caller at work: the next read has begun meanwhile
        seen.append((list(chunk), len(started)))
    assert seen == [([1, 2], 2), ([3], 3), ([4, 5, 6], 4)]


@pytest.mark.parametrize("while_sending", [True, False])
async def test_a_caller_gone_mid_stream_releases_the_connection_after_the_read_in_flight(while_sending: bool) -> None:
    """As ThreadedReader.stream holds a connection: closed (client gone) while the read-ahead is still
    reading, the stream must let that read end before it releases the connection, whether the caller
    was sending a chunk or waiting for the next one (the read itself must not be cancelled)."""
    events: list[str] = []
    release = asyncio.Event()

    async def fetch_chunk() -> list[int]:
        number = sum(event.startswith("read") for event in events)
        if number == 1:
            await release.wait()  # the second read is slow
        events.append(f"read {number}")
        return [number]

    async def stream() -> AsyncGenerator[Sequence[int], None]:
        try:
            async with contextlib.aclosing(read_ahead(fetch_chunk)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            events.append("connection released")

    async def consume() -> None:
        async with contextlib.aclosing(stream()) as chunks:
            async for _chunk in chunks:
                if while_sending:
                    await asyncio.sleep(3600)  # the client goes away while this chunk is being sent

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    consumer.cancel()
    await asyncio.sleep(0.01)
    assert events == ["read 0"]  # the second read is in flight: nothing released yet
    release.set()
    await asyncio.gather(consumer, return_exceptions=True)
    assert consumer.cancelled() and events == ["read 0", "read 1", "connection released"]
