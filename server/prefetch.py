"""Reads started before anyone asks for them: the next page of an audience while this one is sent.

A prefetched read is taken at most once, only within `lifetime` seconds of its start and only if
this process committed no write since it started; anything else reads afresh. A few are kept at
a time, the oldest given up for a new one.
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

    def __init__(self, capacity: int, lifetime: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.lifetime = lifetime
        self._clock = clock
        self._pending: dict[Hashable, _Pending[T]] = {}

    def pending(self) -> list[asyncio.Task[T]]:
        """The reads not taken yet (finished or not)."""
        return [pending.task for pending in self._pending.values()]

    def start(self, key: Hashable, read: Coroutine[Any, Any, T], generation: int) -> None:
        """Run `read` in the background for the next `take(key)` (a read already pending under `key` stays)."""
        self._expire()
        if key in self._pending or self.capacity <= 0:
            read.close()
            return
        if len(self._pending) >= self.capacity:
            self._give_up(next(iter(self._pending)))
        task = asyncio.ensure_future(read)
        task.add_done_callback(_retrieve)
        self._pending[key] = _Pending(task, generation, self._clock())

    def take(self, key: Hashable, generation: int) -> asyncio.Task[T] | None:
        """The read pending under `key`, if it started within the lifetime and before no write since."""
        self._expire()
        pending = self._pending.pop(key, None)
        if pending is None:
            return None
        if pending.generation != generation:
            pending.task.cancel()
            return None
        return pending.task

    def clear(self) -> None:
        for key in list(self._pending):
            self._give_up(key)

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
