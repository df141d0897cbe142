"""Real stores for tests: SQLite files, and PostgreSQL schemas when SEGMENTQL_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from store import migrate
from store.engine import Store

POSTGRES_URL = os.environ.get("SEGMENTQL_TEST_POSTGRES_URL")
STORES = ["sqlite", "postgresql"]


def store_params() -> list[Any]:
    skip_pg = pytest.mark.skipif(not POSTGRES_URL, reason="SEGMENTQL_TEST_POSTGRES_URL is not set")
    return ["sqlite", pytest.param("postgresql", marks=skip_pg)]


class StoreFactory:
    """Makes empty stores of one kind; each PostgreSQL store lives in a schema of its own."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.schemas: list[str] = []
        self.databases: list[str] = []

    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite+aiosqlite:///{self.directory / f'{uuid.uuid4().hex[:8]}.db'}"
        assert POSTGRES_URL
        return POSTGRES_URL

    async def create(self, migrated: bool = True, **options: Any) -> Store:
        if self.kind == "sqlite":
            store = Store(self.url(), **options)
        else:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = Store(self.url())
            async with admin.begin() as connection:
                await connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await admin.dispose()
            self.schemas.append(schema)
            store = Store(self.url(), connect_args={"server_settings": {"search_path": schema}}, **options)
        if migrated:
            await migrate.prepare(store)
        return store

    async def standalone_url(self) -> str:
        """The URL of a new, empty store that the URL alone names, for the command line and server processes:
        a new SQLite file, or a new PostgreSQL database (a schema of its own needs a search_path no URL carries)."""
        if self.kind == "sqlite":
            return self.url()
        assert POSTGRES_URL
        name = f"t_{uuid.uuid4().hex[:12]}"
        url = await create_database(POSTGRES_URL, name)
        self.databases.append(name)
        return url

    async def drop_all(self) -> None:
        if self.schemas:
            admin = Store(self.url())
            async with admin.begin() as connection:
                for schema in self.schemas:
                    await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await admin.dispose()
        for name in self.databases:
            assert POSTGRES_URL
            await drop_database(POSTGRES_URL, name, force=True)


async def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `server_url`; returns the new database's URL."""
    await _outside_transactions(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str, force: bool = False) -> None:
    """DROP DATABASE `name`; `force` ends its sessions first (e.g. those of a server process just killed)."""
    await _outside_transactions(server_url, f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if force else ""))


async def _outside_transactions(server_url: str, sql: str) -> None:
    """Run `sql` in autocommit mode, as CREATE / DROP DATABASE need."""
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(sql)
    finally:
        await admin.dispose()


async def backend_pid(connection: AsyncConnection) -> int:
    """The PostgreSQL server process of this connection."""
    return int(await connection.scalar(sa.text("SELECT pg_backend_pid()")))


async def wait_until_blocked(store: Store, waiting: int, task: asyncio.Task[Any], timeout: float = 60) -> tuple[str, list[int]]:
    """Watch PostgreSQL (pg_stat_activity, on a connection of its own) until backend `waiting` waits on a lock;
    return the lock's kind (wait_event) and the backends blocking it. Fails if `task`, the work running on that
    backend, ends first (so it never waited) or nothing is seen waiting within `timeout` seconds."""
    query = sa.text("SELECT wait_event_type, wait_event, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = :pid")
    deadline = time.monotonic() + timeout
    # Autocommit: inside a transaction pg_stat_activity is a snapshot taken once.
    async with store.engine.connect() as connection:
        watching = await connection.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            assert not task.done(), f"backend {waiting} finished without waiting for a lock: {task}"
            row = (await watching.execute(query, {"pid": waiting})).one_or_none()
            if row is not None and row[0] == "Lock":
                return str(row[1]), list(row[2])
            assert time.monotonic() < deadline, f"backend {waiting} was not seen waiting on a lock: {row}"
            await asyncio.sleep(0.01)
