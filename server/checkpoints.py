"""SQLite WAL checkpoints in a worker thread after write transactions, rather than inside a commit.

SQLite's own checkpoint runs in the commit that grows the WAL past `wal_autocheckpoint` pages, and
that commit waits for it (a batch of 1000 events: one in four took ~90 ms instead of ~50, most of it
in the checkpoint's fsyncs). Here, after a write ends, a PASSIVE checkpoint (it waits for no reader
or writer) copies the WAL into the database beside the next write, then a second one in the store's
write turn, between two writes, copies the rest (little: at most the write that ended meanwhile,
while the next request is still being parsed). The next write then starts the WAL over: it stays
about one batch long, which keeps reads and commits fast too. The pragma's own checkpoint stays as
the safety net (other processes, or these falling behind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import sqlalchemy as sa

logger = logging.getLogger(__name__)


class WalCheckpoints:
    """Background checkpoints of one SQLite file: one cycle at a time, another after writes that end during it."""

    def __init__(self, engine: sa.Engine, write_turn: Callable[[], asyncio.Lock], writes_ended: Callable[[], int]) -> None:
        self._engine = engine  # its connections must not BEGIN: a checkpoint cannot run in a transaction
        self._write_turn = write_turn  # the store's: its writers queue there
        self._writes_ended = writes_ended  # how many write transactions the store has ended
        self._running: asyncio.Task[None] | None = None

    def after_write(self) -> None:
        """A write transaction ended (on this event loop): checkpoint what it added."""
        running = self._running
        if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
            self._running = asyncio.ensure_future(self._cycles())

    async def _cycles(self) -> None:
        copied_up_to = -1
        try:
            while copied_up_to != self._writes_ended():
                await asyncio.to_thread(self._checkpoint)
                async with self._write_turn():
                    copied_up_to = self._writes_ended()
                    await asyncio.to_thread(self._checkpoint)
        except Exception as error:  # logged only: the next write's cycle, or SQLite's own checkpoint, tries again
            logger.warning("WAL checkpoint failed: %s", error, exc_info=not isinstance(error, sa.exc.DBAPIError))

    def _checkpoint(self) -> None:
        with self._engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").close()

    async def wait(self) -> None:
        """Until the running cycle ends (it holds a connection until then)."""
        if self._running is not None and self._running.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(self._running, return_exceptions=True)
