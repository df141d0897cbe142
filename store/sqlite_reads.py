"""Reads on SQLite, run in worker threads on SQLAlchemy's synchronous pysqlite engine.

aiosqlite hands each step of a read (cursor, execute, fetch, close, the pool's rollback) to its
connection's thread and back: five round trips for one statement. Here a whole read is one trip
(docs/performance.md), over the same file with the same pragmas. Streams (exports) read one chunk
per trip, the next while the caller sends the last. Write transactions take the same one trip
(`Store.write`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from store.read_ahead import read_ahead

# SQLite's interrupt only stops a statement that is running: one sent just before the statement
# starts is lost, so it is sent again at this interval until the read returns.
INTERRUPT_REPEAT_SECONDS = 0.01


class ThreadedReader:
    """Reads of a SQLite file in worker threads: whole statements (interrupted after a timeout) and streams."""

    def __init__(self, engine: sa.Engine, execution_options: dict[str, Any]) -> None:
        self._pooled = engine
        self.engine = engine.execution_options(**execution_options)

    async def fetch(self, statement: Any, parameters: Mapping[str, Any], timeout: float | None) -> tuple[list[Any], float]:
        """All rows of `statement` and the seconds the thread took to read them; TimeoutError when it
        runs longer than `timeout` seconds."""
        running = _RunningRead()
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def interrupt() -> None:
            nonlocal timer
            running.interrupt()
            timer = loop.call_later(INTERRUPT_REPEAT_SECONDS, interrupt)

        if timeout:
            timer = loop.call_later(timeout, interrupt)
        try:
            rows, seconds = await asyncio.to_thread(self._read, statement, parameters, running)
        except sa.exc.OperationalError:
            if not running.interrupted:
                raise
        except asyncio.CancelledError:  # the request went away: so does its statement
            running.interrupt()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if running.interrupted:
            raise TimeoutError(timeout)
        return rows, seconds

    def _read(self, statement: Any, parameters: Mapping[str, Any], running: _RunningRead) -> tuple[list[Any], float]:
        started = time.perf_counter()
        with self.engine.connect() as connection:
            running.start(connection.connection.driver_connection)
            try:
                return list(connection.execute(statement, parameters).all()), time.perf_counter() - started
            finally:
                running.stop()

    async def stream(self, statement: Any, size: int) -> AsyncIterator[Sequence[Any]]:
        """The rows of `statement` as sqlite3 returns them (tuples, no SQLAlchemy type processing), `size` at
        a time; the next chunk is read while the caller uses this one."""
        connection = await asyncio.to_thread(self.engine.connect)
        try:
            result = await asyncio.to_thread(connection.execute, statement)  # pysqlite steps lazily: no rows read yet
            # Straight from the driver's cursor: building SQLAlchemy rows slowed exports (docs/performance.md).
            fetch = result.cursor.fetchmany
            # Closed before the connection is: a read still in flight ends first.
            async with contextlib.aclosing(read_ahead(lambda: asyncio.to_thread(fetch, size))) as chunks:
                async for rows in chunks:
                    yield rows
        finally:
            await asyncio.to_thread(connection.close)

    def dispose(self) -> None:
        self._pooled.dispose()


class _RunningRead:
    """The driver connection a read runs on, while it runs: an interrupt never reaches another read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._driver: Any = None
        self.interrupted = False

    def start(self, driver: Any) -> None:
        with self._lock:
            self._driver = driver

    def stop(self) -> None:
        with self._lock:
            self._driver = None

    def interrupt(self) -> None:
        with self._lock:
            self.interrupted = True
            if self._driver is not None:
                self._driver.interrupt()
