"""The store itself: statement timeouts cancel a read and leave the connection healthy; reads outlive a dropped
connection; write transactions."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from store.engine import StatementTimeout, Store
from store.tables import metrics
from tests.stores import POSTGRES_URL, StoreFactory

SLOW = sa.text(
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000000) SELECT count(*) FROM n"
)


# 0.1 ms ends before the statement has even started: SQLite's interrupt, a no-op then, must be repeated.
@pytest.mark.parametrize("timeout", [0.2, 0.0001])
async def test_statement_timeout_cancels_and_the_store_still_answers(store_kind: str, tmp_path: Path, timeout: float) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    store = await factory.create(statement_timeout=timeout, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(StatementTimeout):
            await store.fetch(SLOW)
        store.statement_timeout = 5
        assert await store.fetch(sa.text("SELECT 41 + 1")) == [(42,)]
    finally:
        await store.dispose()
        await factory.drop_all()


async def test_a_write_commits_when_its_work_returns_and_leaves_nothing_when_it_raises(
    store_kind: str, tmp_path: Path
) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    store = await factory.create()
    try:
        assert await store.write(lambda c: c.execute(sa.insert(metrics).values(name="A", name_key="a")).rowcount) == 1

        def half_then_fail(connection: sa.Connection) -> None:
            connection.execute(sa.insert(metrics).values(name="B", name_key="b"))
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError, match="refused"):
            await store.write(half_then_fail)
        assert [row[0] for row in await store.fetch(sa.select(metrics.c.name_key))] == ["a"]
    finally:
        await store.dispose()
        await factory.drop_all()


async def test_a_cancelled_sqlite_write_rolls_back_and_ends_before_it_returns(tmp_path: Path) -> None:
    factory = StoreFactory("sqlite", tmp_path)
    store = await factory.create()
    started, finished = threading.Event(), threading.Event()

    def slow(connection: sa.Connection) -> None:
        connection.execute(sa.insert(metrics).values(name="Slow", name_key="slow"))
        started.set()
        time.sleep(0.3)
        finished.set()

    def names() -> Any:
        return store.fetch(sa.select(metrics.c.name_key).order_by(metrics.c.name_key))

    try:
        first = asyncio.create_task(store.write(slow))
        await asyncio.to_thread(started.wait, 5)
        first.cancel()
        await asyncio.sleep(0.05)
        first.cancel()  # cancelled again while it waits for its thread
        with pytest.raises(asyncio.CancelledError):
            await first
        # The worker thread could not be stopped: it has ended when the write returns, its transaction
        # rolled back (no one was told of it), and the next writer of this process finds the lock free.
        assert finished.is_set()
        assert [row[0] for row in await names()] == []
        await store.write(lambda c: c.execute(sa.insert(metrics).values(name="Next", name_key="next")))
        assert [row[0] for row in await names()] == ["next"]
    finally:
        await store.dispose()
        await factory.drop_all()


async def _end_backend_of_pooled_connection(store: Store, factory: StoreFactory) -> int:
    """End the server side of `store`'s one pooled connection, as a PostgreSQL restart does; its pid."""
    async with store.engine.connect() as connection:  # pooled again after
        backend = int(await connection.scalar(sa.text("SELECT pg_backend_pid()")))
    admin = Store(factory.url())
    async with admin.begin() as connection:
        assert await connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    await admin.dispose()
    return backend


@pytest.mark.skipif(not POSTGRES_URL, reason="SEGMENTQL_TEST_POSTGRES_URL is not set")
async def test_a_postgres_read_has_the_timeout_on_its_connection_and_a_write_on_it_has_none(tmp_path: Path) -> None:
    """A read runs with the store's timeout set on its connection (no SET LOCAL in a transaction of its own); a
    write on the same pooled connection runs without one, the read after it has it again, and a new one applies."""
    factory = StoreFactory("postgresql", tmp_path)
    store = await factory.create(statement_timeout=5, pool_size=1, max_overflow=0)
    read = sa.text("SELECT current_setting('statement_timeout')")
    try:
        assert await store.fetch(read) == [("5s",)]
        assert await store.write(lambda c: c.scalar(sa.text("SELECT current_setting('statement_timeout')"))) == "0"
        assert await store.fetch(read) == [("5s",)]
        store.statement_timeout = 2.5
        assert await store.fetch(read) == [("2500ms",)]
    finally:
        await store.dispose()
        await factory.drop_all()


@pytest.mark.skipif(not POSTGRES_URL, reason="SEGMENTQL_TEST_POSTGRES_URL is not set")
async def test_reads_and_writes_on_a_pooled_postgres_connection_the_server_closed_run_again_on_a_new_one(
        tmp_path: Path) -> None:
    """A PostgreSQL restart (or an idle timeout) closes pooled connections: the next read or write succeeds."""
    factory = StoreFactory("postgresql", tmp_path)
    store = await factory.create(pool_size=1, max_overflow=0)
    try:
        backend = await _end_backend_of_pooled_connection(store, factory)
        assert await store.fetch(sa.text("SELECT 41 + 1")) == [(42,)]
        async with store.engine.connect() as connection:
            assert await connection.scalar(sa.text("SELECT pg_backend_pid()")) != backend
        await _end_backend_of_pooled_connection(store, factory)
        inserted = await store.write(lambda c: c.execute(sa.insert(metrics).values(name="A", name_key="a")).rowcount)
        assert inserted == 1
        assert [row[0] for row in await store.fetch(sa.select(metrics.c.name_key))] == ["a"]  # once
    finally:
        await store.dispose()
        await factory.drop_all()


def test_an_asyncpg_connection_lost_in_its_protocol_is_discarded_as_a_disconnect() -> None:
    """asyncpg's InternalClientError leaves a connection no later statement can use: the pool must drop it."""
    from asyncpg.exceptions import InterfaceError, InternalClientError

    from store.engine import _lost_connection

    def judged(error: Exception) -> bool:
        context = SimpleNamespace(original_exception=error, is_disconnect=False)
        _lost_connection(context)  # type: ignore[arg-type]
        return bool(context.is_disconnect)

    assert judged(InternalClientError("cannot switch to state 12; another operation (2) is in progress"))
    assert judged(InterfaceError("cannot perform operation: another operation is in progress"))
    assert not judged(InterfaceError("the server expects 2 arguments for this query, 1 was passed"))


async def test_sqlite_index_hints_reach_every_engine_of_a_store_and_no_other(tmp_path: Path) -> None:
    """INDEXED BY renders on the store's async engine, its worker threads' engine and its writes (an unknown
    index is SQLite's error, so the hint was sent); SQLAlchemy's own SQLite dialect is left as it was."""
    from sqlalchemy.dialects import sqlite

    hinted = sa.select(metrics.c.name_key).with_hint(metrics, "INDEXED BY no_such_index", "sqlite")
    assert "INDEXED BY" not in str(hinted.compile(dialect=sqlite.dialect()))
    factory = StoreFactory("sqlite", tmp_path)
    store = await factory.create()
    try:
        assert "FROM metrics INDEXED BY no_such_index" in str(hinted.compile(dialect=store.engine.dialect))
        with pytest.raises(sa.exc.OperationalError, match="no such index: no_such_index"):
            await store.fetch(hinted)  # a worker thread's pysqlite engine
        with pytest.raises(sa.exc.OperationalError, match="no such index: no_such_index"):
            await store.write(lambda connection: connection.execute(hinted).all())
        with pytest.raises(sa.exc.OperationalError, match="no such index: no_such_index"):
            async with store.engine.connect() as connection:
                await connection.execute(hinted)
    finally:
        await store.dispose()
        await factory.drop_all()
