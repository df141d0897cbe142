"""The store's engines: a primary and an optional read replica, one-trip reads, queued writes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from store.checkpoints import WalCheckpoints
from store.dialects import store_url
from store.prefetch import Prefetches
from store.read_ahead import read_ahead
from store.sqlite_reads import ThreadedReader
from store.tables import JSON_CODEC

T = TypeVar("T")

# Prefetched reads a store keeps at a time (each holds one page, small: docs/performance.md), how many of them
# may run at once (they share worker threads and connections with the reads clients wait for), and
# the seconds one stays good: a client paging through an audience asks for the next page within milliseconds.
PREFETCH_CAPACITY = 16
PREFETCH_RUNNING = 2
PREFETCH_SECONDS = 2.0


WRITE_OPTION = "segmentql_write"  # an execution option marking write transactions
# Reads of one statement (store/sqlite_reads.py): SQLite runs each in a transaction of its own, and a
# BEGIN would only cost a round trip.
SINGLE_STATEMENT_OPTION = "segmentql_single_statement"


class _Abandoned(Exception):
    """A write whose caller was cancelled: its transaction rolls back."""


# A read or write whose pooled connection turned out dead runs once more, on a fresh connection.
CONNECTION_ATTEMPTS = 2


class StatementTimeout(Exception):
    """A read ran longer than the store's statement timeout and was cancelled."""


class StatementTooLarge(Exception):
    """The database refused a statement as too deeply nested to parse or plan."""


# SQLite's parser stack and its count of references to one table, and PostgreSQL's statement_too_complex
# (max_stack_depth and the like): the signs of a statement too large, SQLite's being its messages (its
# code is the generic one).
SQLITE_TOO_LARGE = ("parser stack overflow", "too many references to")
POSTGRES_TOO_COMPLEX = "54001"
POSTGRES_CANCELLED = "57014"  # query_canceled: by statement_timeout, or by a client's cancel request
# The statement_timeout (ms) a pooled PostgreSQL connection has, in its record's info; the execution option
# marking reads that the store's timeout limits (Store.fetch_timed).
TIMEOUT_INFO = "segmentql_statement_timeout"
TIMED_READ_OPTION = "segmentql_timed_read"


class Store:
    """The engines (a primary, and optionally a read replica) and the SQL dialect they speak."""

    def __init__(
        self,
        url: str,
        read_url: str | None = None,
        statement_timeout: float | None = None,
        **engine_options: Any,
    ) -> None:
        self.url = url
        self.statement_timeout = statement_timeout
        self.engine: AsyncEngine = _create_engine(url, engine_options)
        self.reader: AsyncEngine = _create_engine(read_url, engine_options) if read_url else self.engine
        self.dialect: str = self.engine.dialect.name
        # Reads of one statement on PostgreSQL: no transaction (AUTOCOMMIT), the timeout a setting of their
        # connection (`_connection_timeout`), so that each is one trip where BEGIN, SET LOCAL and COMMIT made four.
        self._one_trip_readers = {
            replica: (self.reader if replica else self.engine).execution_options(
                isolation_level="AUTOCOMMIT", **{TIMED_READ_OPTION: True})
            for replica in (False, True)
        }
        if self.dialect == "postgresql":
            for engine in {self.engine, self.reader}:
                sa.event.listen(engine.sync_engine, "engine_connect", self._connection_timeout)
        # Reads of one statement on a SQLite file: each in one trip to a worker thread (store/sqlite_reads.py).
        primary = _sqlite_file_engine(self.engine)
        primary_reads = _threaded_reader(primary)
        self._threaded_reads = {
            False: primary_reads, True: _threaded_reader(_sqlite_file_engine(self.reader)) if read_url else primary_reads,
        }
        # Write transactions (`begin`, `write`): on SQLite they take the write lock when they start
        # (BEGIN IMMEDIATE), so that a batch reads and writes without another writer in between.
        self.writer: AsyncEngine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._threaded_writer = primary.execution_options(**{WRITE_OPTION: True}) if primary is not None else None
        self._write_queue: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        # Reads started ahead of their request (an audience's next page: store/prefetch.py), and the
        # write transactions this process has ended: a read started before the last one is not used.
        self.prefetches: Prefetches[tuple[list[Any], float]] = Prefetches(PREFETCH_CAPACITY, PREFETCH_RUNNING, PREFETCH_SECONDS)
        self._writes_ended = 0
        # A SQLite file's WAL is copied into it beside the writes, not inside a commit (store/checkpoints.py).
        self._checkpoints = (
            WalCheckpoints(primary.execution_options(**{SINGLE_STATEMENT_OPTION: True}), self._write_turn,
                           lambda: self._writes_ended)
            if primary is not None else None
        )

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def connect(self) -> Any:
        return self.engine.connect()

    async def stream(self, statement: Any, size: int) -> AsyncIterator[Sequence[Any]]:
        """The rows of a read statement (from the replica when configured), `size` at a time.

        Rows may come as the driver returns them, without SQLAlchemy's type processing: stream text and numbers.
        """
        threaded = self._threaded_reads[True]
        if threaded is not None:
            async for rows in threaded.stream(statement, size):
                yield rows
            return
        async with self.reader.connect() as connection:
            result = await connection.stream(statement)
            async with contextlib.aclosing(read_ahead(lambda: result.fetchmany(size))) as chunks:  # before the connection
                async for chunk in chunks:
                    yield chunk

    async def fetch(self, statement: Any, replica: bool = True) -> list[Any]:
        """All rows of a read statement, cancelled after `statement_timeout` seconds (StatementTimeout).

        From the replica when one is configured, unless `replica` is False (definitions just written).
        """
        rows, _ = await self.fetch_timed(statement, replica=replica)
        return rows

    async def fetch_timed(
        self, statement: Any, parameters: Mapping[str, Any] | None = None, replica: bool = True
    ) -> tuple[list[Any], float]:
        """The rows of `statement` run with `parameters` (see `fetch`) and the seconds its read took: on
        SQLite the worker thread's own time, not the wait for a free one."""
        parameters = parameters or {}
        threaded = self._threaded_reads[replica]
        if threaded is not None:
            try:
                return await threaded.fetch(statement, parameters, self.statement_timeout)
            except TimeoutError:
                raise StatementTimeout(self.statement_timeout) from None
        for attempt in range(CONNECTION_ATTEMPTS):
            started = time.perf_counter()
            try:
                async with self._one_trip_readers[replica].connect() as connection:
                    rows = list((await connection.execute(statement, parameters)).all())
                return rows, time.perf_counter() - started
            except sa.exc.DBAPIError as error:
                if self.statement_timeout and _timed_out(error):
                    raise StatementTimeout(self.statement_timeout) from None
                if not _runs_again(error, attempt):
                    raise
        raise AssertionError("unreachable")

    def prefetch(self, key: Hashable, statement: Any, parameters: Mapping[str, Any] | None = None) -> None:
        """Start reading `statement` (`fetch_timed`) in the background, for a `prefetched(key)` soon after."""
        self.prefetches.start(key, self.fetch_timed(statement, parameters), self._writes_ended)

    def prefetched(self, key: Hashable) -> Awaitable[tuple[list[Any], float]] | None:
        """The read started under `key`, if it is still good (see store/prefetch.py); each is taken once."""
        return self.prefetches.take(key, self._writes_ended)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: on SQLite it holds the write lock from its start (see `_sqlite_begin`)."""
        try:
            if self.dialect != "sqlite":
                async with self.writer.begin() as connection:
                    yield connection
            else:
                async with self._write_turn(), self.writer.begin() as connection:
                    yield connection
        finally:
            self._write_ended()

    async def write(self, work: Callable[[sa.Connection], T]) -> T:
        """Run `work` as one write transaction, committed when it returns (rolled back when it raises,
        or when the caller is cancelled before the commit starts).

        On a SQLite file the whole transaction runs in one trip to a worker thread on the pysqlite
        engine, where aiosqlite takes a trip per statement and fetch (a batch of events: ~9 trips);
        elsewhere `work` runs on the async engine's connection (`run_sync`).
        """
        writer = self._threaded_writer
        if writer is None:
            for attempt in range(CONNECTION_ATTEMPTS):
                committing = False
                try:
                    async with self.begin() as connection:
                        result = await connection.run_sync(work)
                        committing = True
                    return result
                except sa.exc.DBAPIError as error:
                    # Not once the commit was sent: whether it took effect is unknown.
                    if committing or not _runs_again(error, attempt):
                        raise
            raise AssertionError("unreachable")
        try:
            return await self._write_in_thread(writer, work)
        finally:
            self._write_ended()

    def _connection_timeout(self, connection: sa.Connection) -> None:
        """Give a pooled PostgreSQL connection the store's statement_timeout for a timed read, none for anything
        else (writes, exports, migrations), sending a SET only when that differs from what it has."""
        timed = connection.get_execution_options().get(TIMED_READ_OPTION, False)
        milliseconds = max(1, round(self.statement_timeout * 1000)) if timed and self.statement_timeout else 0
        pooled = connection.connection
        if pooled.info.get(TIMEOUT_INFO, 0) != milliseconds:
            # On the driver's connection, outside any transaction: no rollback undoes it.
            pooled.dbapi_connection.run_async(  # type: ignore[union-attr]
                lambda driver: driver.execute(f"SET statement_timeout = {milliseconds}"))
            pooled.info[TIMEOUT_INFO] = milliseconds

    def _write_ended(self) -> None:
        self._writes_ended += 1
        if self._checkpoints is not None:
            self._checkpoints.after_write()

    async def _write_in_thread(self, writer: sa.Engine, work: Callable[[sa.Connection], T]) -> T:
        cancelled = threading.Event()

        def transaction() -> T:
            with writer.begin() as connection:
                result = work(connection)
                if cancelled.is_set():  # nobody waits for it: roll back, as the async engines do
                    raise _Abandoned
                return result

        async with self._write_turn():
            running = asyncio.ensure_future(asyncio.to_thread(transaction))
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                cancelled.set()
                # The thread holds SQLite's write lock until it ends: the next writer of this process
                # waits here for it (however often this one is cancelled), not in the busy handler's polling.
                while not running.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([running])
                running.exception()  # retrieved: _Abandoned, or the work's own failure, has no one to tell
                raise

    def _write_turn(self) -> asyncio.Lock:
        # Writers of this process queue here rather than in SQLite's busy handler, which polls with
        # sleeps of up to 100 ms and so leaves the lock idle between writers; other processes still
        # wait on the lock itself (busy_timeout).
        loop = asyncio.get_running_loop()
        if self._write_queue is None or self._write_queue[0] is not loop:
            self._write_queue = (loop, asyncio.Lock())
        return self._write_queue[1]

    async def ping(self) -> bool:
        async with self.engine.connect() as connection:
            return (await connection.scalar(sa.text("SELECT 1"))) == 1

    async def dispose(self) -> None:
        await self.prefetches.close()
        if self._checkpoints is not None:
            await self._checkpoints.close()
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()
        for reader in {id(r): r for r in self._threaded_reads.values() if r is not None}.values():
            reader.dispose()


def _create_engine(url: str, options: dict[str, Any]) -> AsyncEngine:
    options = dict(options)
    if url.startswith("postgresql"):
        # Audience and ingest statements differ in their bound values far more than in their text:
        # a generic plan cached for the driver's prepared statements would ignore the values' selectivity.
        # No JIT: an audience of many conditions is costed high enough to be compiled, which took
        # seconds longer than running it (docs/performance.md).
        connect_args = dict(options.pop("connect_args", {}))
        server_settings = {"plan_cache_mode": "force_custom_plan", "jit": "off", **connect_args.get("server_settings", {})}
        options["connect_args"] = {**connect_args, "server_settings": server_settings}
    else:
        for pooling in ("pool_size", "pool_timeout", "max_overflow"):
            options.pop(pooling, None)
        # Each SQLite connection has its own page cache: handing out the connection used last keeps
        # the hot one warm, where the default rotation spread requests over cold caches, which were
        # slower (docs/performance.md).
        options.setdefault("pool_use_lifo", True)
    # SQLite through store/dialects/sqlite.py, whose compiler renders the INDEXED BY hints of the statements.
    engine = create_async_engine(store_url(url), **JSON_CODEC, **options)
    sa.event.listen(engine.sync_engine, "handle_error", _too_large)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine)
    else:
        sa.event.listen(engine.sync_engine, "handle_error", _lost_connection)
    return engine


def _too_large(context: sa.engine.ExceptionContext) -> None:
    """Raise StatementTooLarge instead of the driver's error for a statement the database cannot parse or plan."""
    error = context.original_exception
    if any(sign in str(error) for sign in SQLITE_TOO_LARGE) or getattr(error, "sqlstate", None) == POSTGRES_TOO_COMPLEX:
        raise StatementTooLarge(str(error)) from error


def _runs_again(error: sa.exc.DBAPIError, attempt: int) -> bool:
    """Whether work that failed with `error` runs again: its pooled connection was dead (the server had
    closed it, or `_lost_connection`), the pool discarded it with every older one, and this was a first try."""
    return error.connection_invalidated and attempt < CONNECTION_ATTEMPTS - 1


def _lost_connection(context: sa.engine.ExceptionContext) -> None:
    """Count as a disconnect (the pool discards the connection) an asyncpg connection whose protocol is in
    a state its driver cannot go on from: SQLAlchemy would pool it again, and every later use would fail
    with "cannot switch to state …; another operation is in progress" (sqlalchemy/sqlalchemy#13241)."""
    error = context.original_exception
    if type(error).__name__ == "InternalClientError" or "another operation is in progress" in str(error):
        context.is_disconnect = True


def _timed_out(error: sa.exc.DBAPIError) -> bool:
    """Whether PostgreSQL cancelled the statement for running past statement_timeout."""
    return getattr(error.orig, "sqlstate", None) == POSTGRES_CANCELLED and "statement timeout" in str(error.orig)


def _threaded_reader(engine: sa.Engine | None) -> ThreadedReader | None:
    return ThreadedReader(engine, {SINGLE_STATEMENT_OPTION: True}) if engine is not None else None


def _sqlite_file_engine(engine: AsyncEngine) -> sa.Engine | None:
    """A pysqlite engine over the same SQLite file as `engine`, for worker threads; None for other stores
    (and in-memory SQLite)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "memory" in str(url.query):
        return None
    sync_engine = sa.create_engine(
        store_url(url, sync=True), pool_use_lifo=True, **JSON_CODEC,
        connect_args={"check_same_thread": False},  # its connections move between worker threads
    )
    sa.event.listen(sync_engine, "handle_error", _too_large)
    _configure_sqlite(sync_engine)
    return sync_engine


def _configure_sqlite(sync_engine: sa.Engine) -> None:
    sa.event.listen(sync_engine, "connect", _sqlite_pragmas)
    sa.event.listen(sync_engine, "begin", _sqlite_begin)


def _sqlite_begin(connection: sa.Connection) -> None:
    # The driver's own transaction control is off (see _sqlite_pragmas): SQLAlchemy's begin, and
    # autobegin, emit BEGIN here. A write transaction waits (busy_timeout) for the write lock up
    # front instead of reading first and failing to upgrade to a writer ("database is locked"), or
    # inserting a row that another batch inserted after this one read (a unique violation). A read
    # of one statement (Store.fetch) needs no BEGIN: SQLite runs it in a transaction of its own.
    options = connection.get_execution_options()
    if options.get(SINGLE_STATEMENT_OPTION, False):
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 driver, emits BEGIN (the driver would begin only before DML,
    # leaving a transaction's first reads outside it).
    dbapi_connection.isolation_level = None
    # WAL lets readers run beside the writer; busy_timeout waits for the lock instead of failing.
    # SQLite's own checkpoint, in the commit that fills the WAL, every 10,000 pages (~40 MiB) rather than
    # 1,000, fewer than one batch of events dirties (docs/performance.md): a Store copies the WAL beside its
    # writes (store/checkpoints.py), and this one only catches what those leave (other processes' writes).
    # Reads map the file up to SQLite's default maximum (SQLITE_MAX_MMAP_SIZE, 2 GiB) rather than its
    # first 256 MiB: pages past it were read with a syscall and a copy into each connection's cache,
    # which is slower (docs/performance.md).
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=10000", "busy_timeout=10000",
        "foreign_keys=ON", "cache_size=-65536", "mmap_size=2147418112", "temp_store=MEMORY",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
