"""SQLite WAL checkpoints in a worker thread after write transactions, rather than inside a commit.

SQLite's own checkpoint runs in the commit that grows the WAL past `wal_autocheckpoint` pages, and that
commit waits for it, mostly for its fsyncs (docs/performance.md). Here, a moment after writes end, a
PASSIVE checkpoint (it waits for no reader or writer) copies the WAL into the database beside the next
writes. Once the WAL is long (START_OVER_FRAMES), a second one in the store's write turn, between two
writes, copies the rest (little: what was written meanwhile), and the next write starts the WAL over: it
stays a few batches long, which keeps reads and commits fast too. A read that began before a copy keeps
the frames after its snapshot from being copied and the WAL from starting over, until it ends (an
export, say), as with SQLite's own checkpoint. The moment (CYCLE_SPACING) lets writes gather: a page
several of them rewrote is copied once, and a stream of small writes is not held up by a checkpoint
after each. The pragma's own checkpoint stays as the safety net (other processes, or these falling
behind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa

logger = logging.getLogger(__name__)

# Seconds from a write to the checkpoint that copies it, and between checkpoints while writes go on:
# a checkpoint as soon as each write ended held the next one up (docs/performance.md).
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
        self._resting = False  # waiting for the moment of the next checkpoint: nothing in flight
        self._closed = False

    def after_write(self) -> None:
        """A write transaction ended (on this event loop): checkpoint what it added, soon."""
        running = self._running
        if self._closed or (running is not None and not running.done() and running.get_loop() is asyncio.get_running_loop()):
            return
        self._resting = True  # from now: the cycle starts by resting
        self._running = asyncio.ensure_future(self._cycles())

    async def _cycles(self) -> None:
        copied_up_to = -1
        try:
            while copied_up_to != self._writes_ended() and not self._closed:
                self._resting = True
                try:
                    await self._rest()
                finally:
                    self._resting = False
                copied_up_to = self._writes_ended()  # a checkpoint copies what was committed before it began
                frames, copied = await asyncio.to_thread(self._checkpoint)
                # The rest of a long WAL is copied between two writes, so that the next starts it over; not
                # when a reader's snapshot kept frames from being copied (they stay until it ends).
                if frames >= START_OVER_FRAMES and copied == frames:
                    async with self._write_turn():
                        copied_up_to = self._writes_ended()
                        await asyncio.to_thread(self._checkpoint)
        except Exception as error:  # logged only: the next write's cycle, or SQLite's own checkpoint, tries again
            logger.warning("WAL checkpoint failed: %s", error, exc_info=not isinstance(error, sa.exc.DBAPIError))

    async def _rest(self) -> None:
        await asyncio.sleep(CYCLE_SPACING)

    def _checkpoint(self) -> tuple[int, int]:
        """A PASSIVE checkpoint: the frames the WAL holds, and how many of them are in the database now."""
        with self._engine.connect() as connection:
            _busy, frames, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            return int(frames), int(copied)

    async def wait(self) -> None:
        """Until the writes ended so far are copied (the running cycle ends)."""
        if self._running is not None and self._running.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(self._running, return_exceptions=True)

    async def close(self) -> None:
        """Stop: no cycle starts any more, one waiting for its moment is dropped (SQLite checkpoints when
        its last connection closes), one copying is waited for (it holds a connection until it ends)."""
        self._closed = True
        running = self._running
        if running is not None and self._resting and running.get_loop() is asyncio.get_running_loop():
            running.cancel()
        await self.wait()
