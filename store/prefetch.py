"""Reads started before anyone asks for them: the next page of an audience while this one is sent.

A prefetched read is taken at most once, only within `lifetime` seconds of its start, only if this
process committed no write since it started, and only on the event loop that started it; anything
else reads afresh. Few run at a time (they share the worker threads and connections with the reads
asked for): when as many are running, no other starts. Finished ones wait, the oldest given up
first to make room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    task: asyncio.Task[T]
    generation: int
    started: float


class Prefetches(Generic[T]):
    """Background reads by key, each given to the first request that asks for the same key in time."""

    def __init__(self, capacity: int, running: int, lifetime: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.running = running
        self.lifetime = lifetime
        self._clock = clock
        self._pending: dict[Hashable, _Pending[T]] = {}

    def pending(self) -> list[asyncio.Task[T]]:
        """The reads not taken yet (finished or not)."""
        return [pending.task for pending in self._pending.values()]

    def start(self, key: Hashable, read: Coroutine[Any, Any, T], generation: int) -> None:
        """Run `read` in the background for the next `take(key)`, unless a good read is pending under
        `key` already or there is no room (then `read` never runs)."""
        self._expire()
        already = self._pending.get(key)
        if already is not None and already.generation != generation:
            self._give_up(key)
        elif already is not None or not self._room():
            read.close()
            return
        task = asyncio.ensure_future(read)
        task.add_done_callback(_retrieve)
        self._pending[key] = _Pending(task, generation, self._clock())

    def take(self, key: Hashable, generation: int) -> asyncio.Task[T] | None:
        """The read pending under `key`, if it started within the lifetime, before no write since and
        on this event loop."""
        self._expire()
        pending = self._pending.pop(key, None)
        if pending is None:
            return None
        if pending.generation != generation or pending.task.get_loop() is not asyncio.get_running_loop():
            pending.task.cancel()
            return None
        return pending.task

    async def close(self) -> None:
        """Give up every pending read and wait for those of this event loop to end."""
        tasks = self.pending()
        for key in list(self._pending):
            self._give_up(key)
        loop = asyncio.get_running_loop()
        ours = [task for task in tasks if task.get_loop() is loop]
        if ours:
            await asyncio.wait(ours)

    def _room(self) -> bool:
        """Whether a read may start: fewer than `running` are running, and under `capacity` are kept once
        the oldest finished one is given up."""
        if sum(not pending.task.done() for pending in self._pending.values()) >= self.running:
            return False
        if len(self._pending) < self.capacity:
            return True
        finished = next((key for key, pending in self._pending.items() if pending.task.done()), None)
        if finished is None:
            return False
        self._give_up(finished)
        return True

    def _expire(self) -> None:
        now = self._clock()
        for key in [key for key, pending in self._pending.items() if now - pending.started > self.lifetime]:
            self._give_up(key)

    def _give_up(self, key: Hashable) -> None:
        self._pending.pop(key).task.cancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A read nobody takes may fail or be given up: neither is worth asyncio's "never retrieved" warning.
    if not task.cancelled():
        task.exception()
