"""The store itself: statement timeouts cancel a read and leave the connection healthy; write transactions."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.store import StatementTimeout, metrics
from tests.stores import StoreFactory

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
