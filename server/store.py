"""The event store: tables, indexes and the async engine (SQLite by default, PostgreSQL in production).

Times are integer microseconds since the epoch (UTC) so that windows compare exactly and
identically on both stores; metric names live in their own table and events carry the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from server.checkpoints import WalCheckpoints
from server.config import Settings
from server.prefetch import Prefetches
from server.read_ahead import read_ahead
from server.sqlite_reads import ThreadedReader


def _sqlite_from_hint(_compiler: Any, _table: Any, text: str | None) -> str | None:
    return text


# SQLAlchemy's SQLite compiler drops FROM hints; SQLite's INDEXED BY and NOT INDEXED are ones, so render
# them as given (every statement on these tables is compiled after this module is imported).
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign,assignment]

metadata = sa.MetaData()
T = TypeVar("T")

# Prefetched reads a store keeps at a time (a page of a thousand profiles: ~0.2 MB), how many of them
# may run at once (they share worker threads and connections with the reads clients wait for), and
# the seconds one stays good: a client paging through an audience asks for the next page within milliseconds.
PREFETCH_CAPACITY = 16
PREFETCH_RUNNING = 2
PREFETCH_SECONDS = 2.0

# JSON objects: text on SQLite, jsonb on PostgreSQL (so that its operators and indexes apply).
JsonObject = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Autoincrementing 64-bit ids; SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # Metric names match case-insensitively: the lowercased, space-normalised name is the key.
    sa.Column("name_key", sa.String, nullable=False, unique=True),
)

profiles = sa.Table(
    "profiles", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("email", sa.String, unique=True),
    sa.Column("phone_number", sa.String, unique=True),
    sa.Column("external_id", sa.String, unique=True),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String),
    sa.Column("properties", JsonObject, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# A profile as the API reads it, in this order (schema.types.Profile.from_row unpacks it). Properties
# come as their stored text on SQLite and are decoded only when a client asks for them: pages of a
# thousand profiles rarely do. (PostgreSQL's driver decodes jsonb itself.)
PROFILE_ROW = (
    profiles.c.id, profiles.c.email, profiles.c.phone_number, profiles.c.external_id, profiles.c.first_name,
    profiles.c.last_name, sa.type_coerce(profiles.c.properties, sa.Text).label("properties"),
    profiles.c.created_at, profiles.c.updated_at,
)


def profile_row(columns: Collection[str] | None) -> tuple[Any, ...]:
    """PROFILE_ROW reading only `columns` (and the id), the others NULL in their places; None: all of them.

    A page of a thousand profiles rarely asks for properties, whose JSON text can be the bulk of a row.
    """
    if columns is None:
        return PROFILE_ROW
    return tuple(column if column.name == "id" or column.name in columns else sa.null().label(column.name)
                 for column in PROFILE_ROW)


@functools.lru_cache(maxsize=256)  # a client paging through asks for the same nodes on every page
def profile_json(dialect: str, fields: tuple[tuple[str, str | None], ...], constant: str) -> sa.ColumnElement[str]:
    """Each profile as the text of a JSON object: a key per (key, column) pair, in order, the column's
    value as JSON text (the id as a string); a None column stands for `constant`. Keys are bound parameters."""
    pairs: list[Any] = []
    for key, column in fields:
        value = sa.literal(constant) if column is None else profiles.c[column]
        pairs += [sa.literal(key), sa.cast(value, sa.Text) if column == "id" else value]
    if dialect == "postgresql":
        return sa.cast(sa.func.json_build_object(*pairs), sa.Text)
    return sa.func.json_object(*pairs, type_=sa.Text)


def decode_properties(stored: Any) -> Any:
    """Properties read through PROFILE_ROW: text on SQLite, already decoded on PostgreSQL."""
    return orjson.loads(stored) if isinstance(stored, str | bytes) else stored


events = sa.Table(
    "events", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("profile_id", Id, sa.ForeignKey("profiles.id"), nullable=False),
    sa.Column("metric_id", Id, sa.ForeignKey("metrics.id"), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    # Promoted from properties (their string values) because filters and conversations hit them most.
    sa.Column("channel", sa.String),
    sa.Column("conversation_id", sa.String),
    sa.Column("properties", JsonObject, nullable=False),
    sa.Column("unique_id", sa.String),
    # "Who did X in a window": a range scan yielding profile ids without touching the table.
    sa.Index("ix_events_metric_ts_profile", "metric_id", "ts", "profile_id"),
    # A profile's own events (timelines, follow-ups, counts per profile).
    sa.Index("ix_events_profile_metric_ts", "profile_id", "metric_id", "ts"),
    sa.Index("ix_events_metric_channel_ts", "metric_id", "channel", "ts", "profile_id"),
    sa.Index("ux_events_metric_unique_id", "metric_id", "unique_id", unique=True),
    # The newest-first event feed (Query.events without a metric).
    sa.Index("ix_events_ts", "ts", "id"),
)
# A conversation's events with what its summary needs, without reading the table (each write recomputes
# the conversations it touched); events without a conversation (three in four) stay out of it.
_IN_A_CONVERSATION = events.c.conversation_id.is_not(None)
sa.Index("ix_events_conversation", events.c.conversation_id, events.c.ts, events.c.metric_id, events.c.profile_id,
         events.c.channel, sqlite_where=_IN_A_CONVERSATION, postgresql_where=_IN_A_CONVERSATION)

# One row per conversation (the agent events sharing a conversation_id), derived from those events by
# server/conversation_summaries.py and kept current by every write: conversation lists page through
# this table's indexes instead of grouping every conversation's events (3 s at 5M events).
# PostgreSQL orders the ids in code-point order ("C"), as SQLite does.
CodePointText = sa.String().with_variant(sa.String(collation="C"), "postgresql")
conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", CodePointText, primary_key=True),
    sa.Column("profile_id", Id, nullable=False),
    sa.Column("channel", sa.String),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("status", sa.String, nullable=False),  # OPEN, RESOLVED or ESCALATED
    # Newest first, overall and within a status or a channel.
    sa.Index("ix_conversations_started", "started_at", "id"),
    sa.Index("ix_conversations_status_started", "status", "started_at", "id"),
    sa.Index("ix_conversations_channel_started", "channel", "started_at", "id"),
    sqlite_with_rowid=False,  # rows live in the id's b-tree: one b-tree fewer for every write to keep
)

# One row per (metric, profile) that has events: the first time the profile did it. Kept by every write
# from the events it stored (server/profile_metric_summaries.py). "Ever did X" / "never did X" read these
# rows, one per profile that did X, instead of every such event; walks run along them. A row is written
# once, when its profile first does X (again only for an event dated earlier): the first time, not the
# last, so that a write does not rewrite a row for every event.
profile_metrics = sa.Table(
    "profile_metrics", metadata,
    sa.Column("metric_id", Id, nullable=False),
    sa.Column("profile_id", Id, nullable=False),
    sa.Column("first_ts", sa.BigInteger, nullable=False),
    # The first time rides in the key's index on PostgreSQL too (SQLite keeps the rows in it): index-only reads.
    sa.PrimaryKeyConstraint("metric_id", "profile_id", postgresql_include=["first_ts"]),
    sqlite_with_rowid=False,
)

segments = sa.Table(
    "segments", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("description", sa.String),
    sa.Column("filter", JsonObject, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    # The key's first characters, stored plainly to find its row; the rest only as a hash.
    sa.Column("prefix", sa.String, nullable=False, unique=True),
    sa.Column("key_hash", sa.String, nullable=False),
    sa.Column("scopes", sa.String, nullable=False),  # space-separated: read track manage
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger),
)


def encode_json(value: Any) -> str:
    """A JSON column's value as stored text."""
    return orjson.dumps(value).decode()


JSON_CODEC: dict[str, Any] = {"json_serializer": encode_json, "json_deserializer": orjson.loads}
"""How every engine of a store writes and reads JSON columns."""


WRITE_OPTION = "segmentql_write"  # an execution option marking write transactions
# Reads of one statement (server/sqlite_reads.py): SQLite runs each in a transaction of its own, and a
# BEGIN would only cost a round trip.
SINGLE_STATEMENT_OPTION = "segmentql_single_statement"


class _Abandoned(Exception):
    """A write whose caller was cancelled: its transaction rolls back."""


# A read or write whose pooled connection turned out dead runs once more, on a fresh connection.
CONNECTION_ATTEMPTS = 2


class StatementTimeout(Exception):
    """A read ran longer than the store's statement timeout and was cancelled."""


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
        # Reads of one statement on a SQLite file: each in one trip to a worker thread (server/sqlite_reads.py).
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
        # Reads started ahead of their request (an audience's next page: server/prefetch.py), and the
        # write transactions this process has ended: a read started before the last one is not used.
        self.prefetches: Prefetches[tuple[list[Any], float]] = Prefetches(PREFETCH_CAPACITY, PREFETCH_RUNNING, PREFETCH_SECONDS)
        self._writes_ended = 0
        # A SQLite file's WAL is copied into it beside the writes, not inside a commit (server/checkpoints.py).
        self._checkpoints = (
            WalCheckpoints(primary.execution_options(**{SINGLE_STATEMENT_OPTION: True}), self._write_turn,
                           lambda: self._writes_ended)
            if primary is not None else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            settings.database_url, settings.read_database_url, settings.statement_timeout,
            pool_size=settings.pool_size, pool_timeout=settings.pool_timeout,
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
                async with (self.reader if replica else self.engine).connect() as connection:
                    if self.statement_timeout and self.dialect == "postgresql":
                        rows = await _fetch_postgres(connection, statement, parameters, self.statement_timeout)
                    else:
                        rows = list((await connection.execute(statement, parameters)).all())
                return rows, time.perf_counter() - started
            except sa.exc.DBAPIError as error:
                if not _runs_again(error, attempt):
                    raise
        raise AssertionError("unreachable")

    def prefetch(self, key: Hashable, statement: Any, parameters: Mapping[str, Any] | None = None) -> None:
        """Start reading `statement` (`fetch_timed`) in the background, for a `prefetched(key)` soon after."""
        self.prefetches.start(key, self.fetch_timed(statement, parameters), self._writes_ended)

    def prefetched(self, key: Hashable) -> Awaitable[tuple[list[Any], float]] | None:
        """The read started under `key`, if it is still good (see server/prefetch.py); each is taken once."""
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


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that knows ON CONFLICT in this SQL dialect."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _create_engine(url: str, options: dict[str, Any]) -> AsyncEngine:
    options = dict(options)
    if url.startswith("postgresql"):
        # Audience and ingest statements differ in their bound values far more than in their text:
        # a generic plan cached for the driver's prepared statements would ignore the values' selectivity.
        connect_args = dict(options.pop("connect_args", {}))
        server_settings = {"plan_cache_mode": "force_custom_plan", **connect_args.get("server_settings", {})}
        options["connect_args"] = {**connect_args, "server_settings": server_settings}
    else:
        for pooling in ("pool_size", "pool_timeout", "max_overflow"):
            options.pop(pooling, None)
        # Each SQLite connection has its own page cache: handing out the connection used last keeps
        # the hot one warm, where the default rotation spread requests over cold caches (a count
        # walking 200k profiles took +50 ms through the server, against the same SQL on a warm one).
        options.setdefault("pool_use_lifo", True)
    engine = create_async_engine(url, **JSON_CODEC, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine.sync_engine)
    else:
        sa.event.listen(engine.sync_engine, "handle_error", _lost_connection)
    return engine


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


async def _fetch_postgres(connection: AsyncConnection, statement: Any, parameters: Mapping[str, Any],
                          timeout: float) -> list[Any]:
    async with connection.begin():
        await connection.execute(sa.text(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}"))
        try:
            return list((await connection.execute(statement, parameters)).all())
        except sa.exc.DBAPIError as error:
            if "statement timeout" in str(error.orig):
                raise StatementTimeout(timeout) from None
            raise


def _threaded_reader(engine: sa.Engine | None) -> ThreadedReader | None:
    return ThreadedReader(engine, {SINGLE_STATEMENT_OPTION: True}) if engine is not None else None


def _sqlite_file_engine(engine: AsyncEngine) -> sa.Engine | None:
    """A pysqlite engine over the same SQLite file as `engine`, for worker threads; None for other stores
    (and in-memory SQLite)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "memory" in str(url.query):
        return None
    sync_engine = sa.create_engine(
        url.set(drivername="sqlite"), pool_use_lifo=True, **JSON_CODEC,
        connect_args={"check_same_thread": False},  # its connections move between worker threads
    )
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
    # 1,000 (a batch of 1000 events dirties ~3000 index pages): a Store copies the WAL beside its writes
    # (server/checkpoints.py), and this one only catches what those leave (other processes' writes).
    # Reads map the file up to SQLite's default maximum (SQLITE_MAX_MMAP_SIZE, 2 GiB) rather than its
    # first 256 MiB: pages past it were read with a syscall and a copy into each connection's cache
    # (never_started on the 1.5 GiB bench store: 155 -> 128 ms, esc_sms_refund 6.3 -> 5.5 ms).
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=10000", "busy_timeout=10000",
        "foreign_keys=ON", "cache_size=-65536", "mmap_size=2147418112", "temp_store=MEMORY",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def metric_ids(connection: sa.Connection, names: dict[str, str]) -> dict[str, int]:
    """Ids of metrics by matching key, creating the missing ones; `names` maps key → display name."""
    def known(keys: list[str]) -> dict[str, int]:
        rows = connection.execute(sa.select(metrics.c.name_key, metrics.c.id).where(metrics.c.name_key.in_(keys)))
        return {key: metric_id for key, metric_id in rows.all()}

    found = known(list(names))  # almost always all of them
    missing = {key: name for key, name in names.items() if key not in found}
    if missing:
        connection.execute(
            dialect_insert(connection.dialect.name, metrics).on_conflict_do_nothing(index_elements=["name_key"]),
            [{"name": name, "name_key": key} for key, name in missing.items()],
        )
        found.update(known(list(missing)))
    return found
