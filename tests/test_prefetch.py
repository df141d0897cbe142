"""server.prefetch: a read started ahead is taken once, in time, before any write, or given up."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from server.prefetch import Prefetches


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


async def test_a_read_is_taken_once_under_its_own_key() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 1.0)
    prefetches.start("a", read("rows of a"), generation=0)
    assert prefetches.take("b", generation=0) is None
    taken = prefetches.take("a", generation=0)
    assert taken is not None and await taken == "rows of a"
    assert prefetches.take("a", generation=0) is None


async def test_a_read_started_before_a_write_is_given_up() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 1.0)
    started = asyncio.Event()
    prefetches.start("a", read("stale", started), generation=0)
    await started.wait()
    (task,) = prefetches.pending()
    assert prefetches.take("a", generation=1) is None
    await asyncio.wait([task])
    assert task.cancelled() and prefetches.pending() == []


async def test_a_read_older_than_its_lifetime_is_given_up() -> None:
    clock = Clock()
    prefetches: Prefetches[str] = Prefetches(4, 1.0, clock)
    prefetches.start("a", read("a"), generation=0)
    prefetches.start("b", read("b"), generation=0)
    clock.now = 0.5
    prefetches.start("c", read("c"), generation=0)
    clock.now = 1.2  # a and b are 1.2 s old, c 0.7 s
    assert prefetches.take("a", generation=0) is None
    taken = prefetches.take("c", generation=0)
    assert taken is not None and await taken == "c"
    assert prefetches.pending() == []


async def test_the_oldest_read_makes_room_for_a_new_one() -> None:
    prefetches: Prefetches[str] = Prefetches(2, 10.0)
    started = asyncio.Event()
    prefetches.start("a", read("a", started), generation=0)
    await started.wait()
    (oldest,) = prefetches.pending()
    prefetches.start("b", read("b"), generation=0)
    prefetches.start("c", read("c"), generation=0)
    await asyncio.wait([oldest])
    assert oldest.cancelled()
    assert prefetches.take("a", generation=0) is None
    assert [await task for task in prefetches.pending()] == ["b", "c"]


async def test_a_key_already_pending_keeps_its_read_and_the_new_one_never_runs() -> None:
    prefetches: Prefetches[str] = Prefetches(4, 1.0)
    prefetches.start("a", read("first"), generation=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be a RuntimeWarning
        prefetches.start("a", read("second"), generation=0)
    taken = prefetches.take("a", generation=0)
    assert taken is not None and await taken == "first"


async def test_a_failed_read_fails_its_taker_and_clear_gives_up_the_rest() -> None:
    async def failing() -> str:
        raise RuntimeError("the database went away")

    prefetches: Prefetches[str] = Prefetches(4, 1.0)
    prefetches.start("a", failing(), generation=0)
    taken = prefetches.take("a", generation=0)
    assert taken is not None
    with pytest.raises(RuntimeError, match="went away"):
        await taken
    started = asyncio.Event()
    prefetches.start("b", read("b", started), generation=0)
    await started.wait()
    (task,) = prefetches.pending()
    prefetches.clear()
    await asyncio.wait([task])
    assert task.cancelled() and prefetches.pending() == []
