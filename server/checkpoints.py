"""SQLite WAL checkpoints in a worker thread after write transactions, rather than inside a commit.

SQLite's own checkpoint runs in the commit that grows the WAL past `wal_autocheckpoint` pages, and
that commit waits for it (a batch of 1000 events: one in four took ~90 ms instead of ~50, most of it
in the checkpoint's fsyncs). Here, a moment after writes end, a PASSIVE checkpoint (it waits for no
reader or writer) copies the WAL into the database beside the next writes. Once the WAL is long
(START_OVER_FRAMES), a second one in the store's write turn, between two writes, copies the rest
(little: what was written meanwhile), and the next write starts the WAL over: it stays a few
batches long, which keeps reads and commits fast too. The moment (CYCLE_SPACING) lets writes
gather: a page several of them rewrote is copied once, and a stream of small writes is not held up
by a checkpoint after each. The pragma's own checkpoint stays as the safety net (other processes,
or these falling behind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa

logger = logging.getLogger(__name__)

# Seconds from a write to the checkpoint that copies it, and between checkpoints while writes go on.
# A/B against a cycle as soon as each write ended: single-event trackEvent requests 8.8 -> 7.4 ms (a
# checkpoint after each held the next one up), batches of 1000 alike (51 -> 49 ms).
CYCLE_SPACING = 0.1
# A WAL this long (~8 MiB) is made to start over: the rest is copied in the write turn. A shorter one
# grows on (small writes: the turn is not taken every cycle), copied beside the writes.
START_OVER_FRAMES = 2000


class WalCheckpoints:
    """Background checkpoints of one SQLite file: one cycle at a time, another after writes that end during it."""

    def __init__(self, engine: sa.Engine, write_turn: Callable[[], asyncio.Lock], writes_ended: Callable[[], int]) -> None:
        self._engine = engine  # its connections must not BEGIN: a checkpoint cannot run in a transaction
        self._write_turn = write_turn  # the store's: its writers queue there
        self._writes_ended = writes_ended  # how many write transactions the store has ended
        self._running: asyncio.Task[None] | None = None
        self._resting = False  # between checkpoints: nothing in flight

    def after_write(self) -> None:
        """A write transaction ended (on this event loop): checkpoint what it added, soon."""
        running = self._running
        if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
            self._running = asyncio.ensure_future(self._cycles())

    async def _cycles(self) -> None:
        copied_up_to = -1
        try:
            while copied_up_to != self._writes_ended():
                self._resting = True
                try:
                    await asyncio.sleep(CYCLE_SPACING)
                finally:
                    self._resting = False
                copied_up_to = self._writes_ended()  # a checkpoint copies what was committed before it began
                if await asyncio.to_thread(self._checkpoint) >= START_OVER_FRAMES:
                    async with self._write_turn():
                        copied_up_to = self._writes_ended()
                        await asyncio.to_thread(self._checkpoint)
        except Exception as error:  # logged only: the next write's cycle, or SQLite's own checkpoint, tries again
            logger.warning("WAL checkpoint failed: %s", error, exc_info=not isinstance(error, sa.exc.DBAPIError))

    def _checkpoint(self) -> int:
        """A PASSIVE checkpoint; the frames the WAL holds."""
        with self._engine.connect() as connection:
            _busy, frames, _copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            return int(frames)

    async def wait(self) -> None:
        """Until the writes ended so far are copied (the running cycle ends)."""
        if self._running is not None and self._running.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(self._running, return_exceptions=True)

    async def close(self) -> None:
        """Stop: a cycle waiting for its moment is dropped (SQLite checkpoints when its last connection
        closes), one copying is waited for (it holds a connection until it ends)."""
        running = self._running
        if running is not None and self._resting and running.get_loop() is asyncio.get_running_loop():
            running.cancel()
        await self.wait()
