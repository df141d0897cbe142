"""WAL checkpoints beside the writes (store/checkpoints.py): the WAL starts over, failures are only logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from store import checkpoints
from store.checkpoints import WalCheckpoints
from store.engine import Store
from tests.stores import StoreFactory

FILLER = sa.text(  # 40 rows of 3000 bytes: about 40 pages
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 40)"
    " INSERT INTO filler SELECT randomblob(3000) FROM n"
)
WRITES = 15


@pytest.fixture
async def file_store(tmp_path: Path) -> AsyncIterator[Store]:
    factory = StoreFactory("sqlite", tmp_path)
    store = await factory.create()
    await store.write(lambda connection: connection.execute(sa.text("CREATE TABLE filler (blob)")))
    await _checkpoints_of(store)  # that write's cycle is over before a test patches anything
    yield store
    await store.dispose()


@pytest.fixture
def moment(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """A cycle's moment comes when the test sets this event, not after CYCLE_SPACING."""
    come = asyncio.Event()

    async def rest(_self: WalCheckpoints) -> None:
        await come.wait()

    monkeypatch.setattr(WalCheckpoints, "_rest", rest)
    return come


def _filler_rows(store: Store) -> int:
    with contextlib.closing(sqlite3.connect(store.engine.url.database or "")) as db:
        return int(db.execute("SELECT count(*) FROM filler").fetchone()[0])


def _wal_index(store: Store) -> tuple[int, int]:
    """(frames in the WAL, frames copied into the database), read from the wal-index without a checkpoint:
    mxFrame at byte 16 of its header, nBackfill at byte 96 (https://www.sqlite.org/walformat.html)."""
    header = Path(f"{store.engine.url.database}-shm").read_bytes()[:100]
    return struct.unpack_from("=I", header, 16)[0], struct.unpack_from("=I", header, 96)[0]


async def _checkpoints_of(store: Store) -> WalCheckpoints:
    checkpoints = store._checkpoints
    assert checkpoints is not None
    await checkpoints.wait()
    return checkpoints


async def test_each_write_is_copied_into_the_database_and_the_next_write_starts_the_wal_over(file_store: Store) -> None:
    one_write = 0
    for number in range(WRITES):
        await file_store.write(lambda connection: connection.execute(FILLER))
        await _checkpoints_of(file_store)
        if number == 0:
            one_write = _wal_index(file_store)[0]
    # Every write dirties ~40 pages of its own: without the checkpoints beside the writes the WAL would
    # hold all of them (SQLite's own checkpoint waits for 10,000 pages).
    assert one_write >= 40
    assert _wal_index(file_store)[0] <= 2 * one_write
    assert _filler_rows(file_store) == 40 * WRITES


@pytest.mark.parametrize("start_over_frames", [1, 1_000_000])
async def test_writes_that_end_during_a_cycle_are_copied_by_it_a_long_wal_last_between_writers(
    file_store: Store, monkeypatch: pytest.MonkeyPatch, start_over_frames: int
) -> None:
    monkeypatch.setattr(checkpoints, "START_OVER_FRAMES", start_over_frames)
    copies_in_turn: list[bool] = []
    checkpoint = WalCheckpoints._checkpoint
    turn = file_store._write_turn()  # this event loop's

    def recorded(self: WalCheckpoints) -> tuple[int, int]:  # in a worker thread
        copies_in_turn.append(turn.locked())
        return checkpoint(self)

    monkeypatch.setattr(WalCheckpoints, "_checkpoint", recorded)
    await asyncio.gather(*(file_store.write(lambda connection: connection.execute(FILLER)) for _ in range(WRITES)))
    await _checkpoints_of(file_store)
    frames, copied = _wal_index(file_store)
    assert frames >= 40 and copied == frames
    # The last copy comes after the last write: in the write turn for a WAL as long as START_OVER_FRAMES,
    # beside the (no longer running) writers for a shorter one.
    assert copies_in_turn[-1] is (frames >= start_over_frames)
    assert _filler_rows(file_store) == 40 * WRITES


async def test_writes_that_end_before_the_moment_are_copied_by_one_checkpoint(
    file_store: Store, monkeypatch: pytest.MonkeyPatch, moment: asyncio.Event
) -> None:
    checkpoints: list[int] = []
    checkpoint = WalCheckpoints._checkpoint

    def counted(self: WalCheckpoints) -> tuple[int, int]:
        checkpoints.append(1)
        return checkpoint(self)

    monkeypatch.setattr(WalCheckpoints, "_checkpoint", counted)
    for _ in range(WRITES):
        await file_store.write(lambda connection: connection.execute(FILLER))
    assert checkpoints == []
    moment.set()
    await _checkpoints_of(file_store)
    assert len(checkpoints) == 1  # the WAL is short (600 pages): no second copy in the write turn
    frames, copied = _wal_index(file_store)
    assert frames >= 40 * WRITES and copied == frames


async def test_closing_the_store_drops_a_cycle_waiting_for_its_moment_and_starts_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: asyncio.Event
) -> None:
    checkpoints: list[int] = []
    monkeypatch.setattr(WalCheckpoints, "_checkpoint", lambda _self: checkpoints.append(1) or (0, 0))
    store = await StoreFactory("sqlite", tmp_path).create()
    await store.write(lambda connection: connection.execute(sa.text("CREATE TABLE filler (blob)")))
    await store.write(lambda connection: connection.execute(FILLER))
    await asyncio.wait_for(store.dispose(), 10)  # a cycle waited for (not dropped) would wait for the moment
    checkpoints_of_store = store._checkpoints
    assert checkpoints_of_store is not None
    checkpoints_of_store.after_write()  # a write ending after the close
    moment.set()
    await checkpoints_of_store.wait()
    assert checkpoints == []
    # SQLite copied the WAL itself as its last connection closed, and removed it: nothing is lost.
    wal = Path(f"{store.engine.url.database}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert _filler_rows(store) == 40


async def test_a_failing_checkpoint_is_logged_and_writes_go_on(
    file_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tried: list[int] = []

    def failing(_self: WalCheckpoints) -> tuple[int, int]:
        tried.append(1)
        raise sa.exc.OperationalError("PRAGMA wal_checkpoint(PASSIVE)", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(WalCheckpoints, "_checkpoint", failing)
    with caplog.at_level(logging.WARNING, logger="server.checkpoints"):
        for _ in range(2):
            await file_store.write(lambda connection: connection.execute(FILLER))
            await _checkpoints_of(file_store)
    assert len(tried) == 2  # each write started a cycle of its own after the last one failed
    assert caplog.text.count("WAL checkpoint failed") == 2
    assert _filler_rows(file_store) == 80


async def test_only_sqlite_files_are_checkpointed_by_the_store(store_kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    store = await factory.create()
    try:
        assert (store._checkpoints is not None) == (store_kind == "sqlite")
    finally:
        await store.dispose()
        await factory.drop_all()
