"""server.prefetch: a read started ahead is taken once, in time, before any write, on its own loop, or given up."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from store.prefetch import Prefetches


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def read(value: str, started: asyncio.Event | None = None) -> str:
    if started is not None:
        started.set()
        await asyncio.Event().wait()  # until cancelled
    return value


def never_ran(coroutine: Coroutine[Any, Any, Any]) -> bool:
    """Closed before it started: no "never awaited" warning, and no work done."""
    return coroutine.cr_frame is None and not coroutine.cr_running


async def test_a_read_is_taken_once_under_its_own_key() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 2, 1.0)
    prefetches.start("a", read("rows of a"), generation=0)
    assert prefetches.take("b", generation=0) is None
    taken = prefetches.take("a", generation=0)
    assert taken is not None and await taken == "rows of a"
    assert prefetches.take("a", generation=0) is None


async def test_a_read_started_before_a_write_is_given_up() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 2, 1.0)
    started = asyncio.Event()
    prefetches.start("a", read("stale", started), generation=0)
    await started.wait()
    (task,) = prefetches.pending()
    assert prefetches.take("a", generation=1) is None
    await asyncio.wait([task])
    assert task.cancelled() and prefetches.pending() == []


async def test_a_read_older_than_its_lifetime_is_given_up() -> None:
    clock = Clock()
    prefetches: Prefetches[str] = Prefetches(4, 4, 1.0, clock)
    prefetches.start("a", read("a"), generation=0)
    prefetches.start("b", read("b"), generation=0)
    clock.now = 0.5
    prefetches.start("c", read("c"), generation=0)
    clock.now = 1.2  # a and b are 1.2 s old, c 0.7 s
    assert prefetches.take("a", generation=0) is None
    taken = prefetches.take("c", generation=0)
    assert taken is not None and await taken == "c"
    assert prefetches.pending() == []


async def test_no_read_starts_while_as_many_as_allowed_are_running() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 1, 1.0)
    started = asyncio.Event()
    prefetches.start("a", read("a", started), generation=0)
    await started.wait()
    refused = read("b")
    prefetches.start("b", refused, generation=0)
    assert never_ran(refused)
    (running,) = prefetches.pending()
    assert not running.done() and prefetches.take("b", generation=0) is None


async def test_a_finished_read_makes_room_and_a_running_one_is_never_given_up_for_room() -> None:
    prefetches: Prefetches[str] = Prefetches(2, 2, 10.0)
    prefetches.start("a", read("a"), generation=0)
    prefetches.start("b", read("b"), generation=0)
    await asyncio.wait(prefetches.pending())
    started = asyncio.Event()
    prefetches.start("c", read("c", started), generation=0)  # a, the oldest finished, makes room
    await started.wait()
    assert prefetches.take("a", generation=0) is None
    prefetches.start("d", read("d"), generation=0)  # b makes room
    refused = read("e")
    prefetches.start("e", refused, generation=0)  # c and d are running: no room
    assert never_ran(refused)
    assert prefetches.take("b", generation=0) is None
    taken = prefetches.take("d", generation=0)
    assert taken is not None and await taken == "d"
    (still_running,) = prefetches.pending()
    assert not still_running.done()


async def test_a_key_pending_keeps_its_read_unless_a_write_made_it_stale() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 4, 1.0)
    prefetches.start("a", read("first"), generation=0)
    second = read("second")
    prefetches.start("a", second, generation=0)
    assert never_ran(second)
    prefetches.start("a", read("after the write"), generation=1)
    assert prefetches.take("a", generation=0) is None  # the stale one is gone
    prefetches.start("a", read("again"), generation=1)
    taken = prefetches.take("a", generation=1)
    assert taken is not None and await taken == "again"


async def test_a_read_is_taken_only_on_the_event_loop_that_started_it() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 4, 1.0)
    prefetches.start("a", read("a"), generation=0)
    await asyncio.wait(prefetches.pending())
    found: list[object] = []

    async def take_elsewhere() -> None:
        found.append(prefetches.take("a", generation=0))

    thread = threading.Thread(target=lambda: asyncio.run(take_elsewhere()))
    thread.start()
    thread.join()
    assert found == [None] and prefetches.pending() == []


async def test_a_failed_read_fails_its_taker_and_close_waits_for_the_rest() -> None:
    async def failing() -> str:
        raise RuntimeError("the database went away")

    prefetches: Prefetches[str] = Prefetches(4, 4, 1.0)
    prefetches.start("a", failing(), generation=0)
    taken = prefetches.take("a", generation=0)
    assert taken is not None
    with pytest.raises(RuntimeError, match="went away"):
        await taken
    started = asyncio.Event()
    prefetches.start("b", read("b", started), generation=0)
    await started.wait()
    (task,) = prefetches.pending()
    await prefetches.close()
    assert task.done() and task.cancelled() and prefetches.pending() == []
