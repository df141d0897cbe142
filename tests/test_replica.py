"""A real read replica: a streaming standby of the test cluster (`pg_basebackup -R`, a second server on another
port in a temporary directory) serves audiences and exports (SEGMENTQL_READ_DATABASE_URL) while ingest goes to
the primary, and an event tracked on the primary reaches an audience once the standby has replayed it."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from server.app import create_app
from server.config import Settings
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, AUDIENCE, before, event, iso, track
from tests.stores import POSTGRES_URL, StoreFactory

APPLICATION = "segmentql-replica-test"  # the application_name of the app's connections, found on the standby
CREATE = """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"""
ORDERED = {"did": {"metric": "Placed Order"}}


def _binaries() -> tuple[str, str] | None:
    """pg_basebackup and pg_ctl, from PATH or the newest /usr/lib/postgresql/*/bin."""
    directories = [None, *sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True)]
    for directory in directories:
        found = [shutil.which(name, path=directory) for name in ("pg_basebackup", "pg_ctl")]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    return None


def _skip_reason() -> str | None:
    if not POSTGRES_URL:
        return "SEGMENTQL_TEST_POSTGRES_URL is not set"
    if _binaries() is None:
        return "the PostgreSQL server binaries (pg_basebackup, pg_ctl) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: the standby's server cannot run as root"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def streaming_standby() -> AsyncIterator[str]:
    """A hot standby of the test cluster on a free port, removed afterwards; yields its URL (the test database)."""
    assert POSTGRES_URL
    binaries = _binaries()
    assert binaries is not None
    basebackup, pg_ctl = binaries
    primary = sa.make_url(POSTGRES_URL)
    directory = Path(tempfile.mkdtemp(prefix="segmentql-standby-"))
    # PostgreSQL refuses to run as root: the standby runs as the postgres user, who owns its directory.
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_server:
        shutil.chown(directory, "postgres", "postgres")
    data, port = directory / "data", _free_port()
    # A replication slot keeps the primary's WAL from the backup on until the standby has streamed it.
    slot = f"segmentql_standby_{directory.name.rsplit('-', 1)[-1].lower()}"
    started = False
    try:
        backup = [*as_server, basebackup, "-h", primary.host or "127.0.0.1", "-p", str(primary.port or 5432),
                  "-U", primary.username or "postgres", "-D", str(data), "-R", "-X", "stream", "-C", "-S", slot,
                  "--checkpoint=fast"]
        copied = await asyncio.to_thread(subprocess.run, backup, capture_output=True, text=True, timeout=600)
        if "no pg_hba.conf entry for replication" in copied.stderr:
            pytest.skip("the test cluster allows no replication connection from 127.0.0.1 (pg_hba.conf; .ci/run adds one)")
        assert copied.returncode == 0, copied.stderr
        # A packaged cluster keeps its configuration outside its data directory: the standby gets its own.
        trusting = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        for name, text in (("postgresql.conf", ""), ("standby_hba.conf", trusting), ("standby_ident.conf", "")):
            path = (data if name == "postgresql.conf" else directory) / name
            if not path.exists():
                path.write_text(text)
                if as_server:
                    shutil.chown(path, "postgres", "postgres")
        options = (f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={directory} "
                   f"-c hba_file={directory / 'standby_hba.conf'} -c ident_file={directory / 'standby_ident.conf'} "
                   "-c hot_standby=on -c ssl=off")  # max_connections and the like as the primary's (a standby needs them)
        await asyncio.to_thread(
            subprocess.run, [*as_server, pg_ctl, "-D", str(data), "-l", str(directory / "server.log"), "-w", "-t", "300",
                             "-o", options, "start"], check=True, capture_output=True, timeout=360)
        started = True
        yield primary.set(port=port).render_as_string(hide_password=False)
    finally:
        if started:
            stop = [*as_server, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
            await asyncio.to_thread(subprocess.run, stop, capture_output=True, timeout=120)
        await _drop_slot(slot)
        shutil.rmtree(directory, ignore_errors=True)


async def _drop_slot(slot: str) -> None:
    assert POSTGRES_URL
    primary = await asyncpg.connect(_dsn(POSTGRES_URL))
    try:
        await primary.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
    finally:
        await primary.close()


async def _replayed(primary: asyncpg.Connection, standby: asyncpg.Connection, timeout: float = 600) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    written = await primary.fetchval("SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    while not await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", written):
        assert time.monotonic() < deadline, "the standby did not replay the primary's writes in time"
        await asyncio.sleep(0.05)


async def _standby_queries(standby: asyncpg.Connection) -> list[str]:
    """The last statement of each of the app's connections to the standby."""
    rows = await standby.fetch("SELECT query FROM pg_stat_activity WHERE application_name = $1", APPLICATION)
    return [row[0] for row in rows]


@pytest.fixture
async def replicated(tmp_path: Path) -> AsyncIterator[tuple[Store, asyncpg.Connection, asyncpg.Connection]]:
    """A store on the primary whose reads go to a streaming standby, and a plain connection to each server."""
    factory = StoreFactory("postgresql", tmp_path)
    await (await factory.create()).dispose()  # the store's schema and tables, on the primary
    schema = factory.schemas[-1]
    assert POSTGRES_URL
    async with streaming_standby() as standby_url:
        primary = await asyncpg.connect(_dsn(POSTGRES_URL))
        standby = await asyncpg.connect(_dsn(standby_url))
        settings = {"search_path": schema, "application_name": APPLICATION}
        store = Store(POSTGRES_URL, standby_url, connect_args={"server_settings": settings})
        try:
            await _replayed(primary, standby)
            yield store, primary, standby
        finally:
            await store.dispose()
            await primary.close()
            await standby.close()
            await factory.drop_all()


async def test_audiences_and_exports_read_from_the_standby_and_ingest_writes_the_primary(
        replicated: tuple[Store, asyncpg.Connection, asyncpg.Connection]) -> None:
    store, primary, standby = replicated
    assert await standby.fetchval("SELECT pg_is_in_recovery()")
    app = create_app(Settings(database_url=store.url, read_database_url=str(store.reader.url)), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        # Ingest succeeds: the standby refuses every write, so it went to the primary.
        stored = await track(gql, event("ada@x", "Placed Order", before(days=2)),
                             event("bob@x", "Viewed Product", before(days=1)))
        assert stored["accepted"] == 2
        await _replayed(primary, standby)
        page = (await gql.data(AUDIENCE, {"filter": ORDERED, "asOf": iso(AS_OF), "first": 10}))["profiles"]
        assert [node["email"] for node in page["nodes"]] == ["ada@x"] and page["totalCount"] == 1
        read_there = await _standby_queries(standby)
        assert any("profile" in query for query in read_there), read_there

        # An event tracked on the primary is in the audience once the standby has replayed it.
        await track(gql, event("bob@x", "Placed Order", before(hours=3)))
        await _replayed(primary, standby)
        page = (await gql.data(AUDIENCE, {"filter": ORDERED, "asOf": iso(AS_OF), "first": 10}))["profiles"]
        assert sorted(node["email"] for node in page["nodes"]) == ["ada@x", "bob@x"] and page["totalCount"] == 2

        # An export streams from the standby: the one read there in a transaction of its own (a cursor), whose
        # ROLLBACK is then the last statement of an app connection there; the pages' reads are single statements.
        segment_id = (await gql.data(CREATE, {"input": {"name": "ordered", "filter": ORDERED}}))["createSegment"]["id"]
        await _replayed(primary, standby)
        before_export = await _standby_queries(standby)
        response = await http.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(AS_OF)})
        assert response.status_code == 200, response.text
        assert [line.split(",")[1] for line in response.text.splitlines()[1:]] == ["ada@x", "bob@x"]
        after_export = await _standby_queries(standby)
        assert "ROLLBACK;" not in before_export and "ROLLBACK;" in after_export, (before_export, after_export)
