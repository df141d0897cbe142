"""The bench store on PostgreSQL: the cached SQLite bench store bulk-loaded (COPY) into a database of its own.

The tables come from the project's migrations (`store.migrate.prepare`); the events table's indexes are dropped
for the load and recreated from the same metadata afterwards; metrics, profiles and events are copied with their
ids (asyncpg's binary COPY), the id sequences moved past them, then the derived tables rebuilt
(`rebuild_derived_tables`, as `segmentql rebuild-summaries` does) and VACUUM ANALYZE. The database is named after
the SQLite store (its profiles, events, seed and schema tag) and reused while its comment says it is complete.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from resolvers.ingest import rebuild_derived_tables  # noqa: E402
from store import migrate  # noqa: E402
from store.engine import Store  # noqa: E402
from store.tables import events  # noqa: E402

READY = "segmentql bench store: complete"
TABLES = (
    ("metrics", ("id", "name", "name_key")),
    ("profiles", ("id", "email", "phone_number", "external_id", "first_name", "last_name", "properties",
                  "created_at", "updated_at")),
    ("events", ("id", "profile_id", "metric_id", "ts", "channel", "conversation_id", "properties", "unique_id")),
)
CHUNK = 50_000


def database_name(sqlite_path: Path) -> str:
    return "segmentql_bench_" + sqlite_path.stem.removeprefix("store-").replace("-", "_")


def driver_dsn(url: str) -> str:
    """The URL as asyncpg takes it (no SQLAlchemy driver name)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure(sqlite_path: Path, server_url: str, log: Any = print) -> tuple[str, float]:
    """The URL of the PostgreSQL copy of the SQLite bench store at `sqlite_path`, loaded when missing or incomplete,
    and the seconds the load took (0 when reused)."""
    name = database_name(sqlite_path)
    url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(driver_dsn(server_url))
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
        if comment == READY:
            return url, 0.0
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    started = time.perf_counter()
    await load(sqlite_path, url, log)
    admin = await asyncpg.connect(driver_dsn(server_url))
    try:
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{READY}'")
    finally:
        await admin.close()
    return url, time.perf_counter() - started


def _rows(db: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> Iterator[list[tuple[Any, ...]]]:
    cursor = db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")
    while chunk := cursor.fetchmany(CHUNK):
        yield chunk


async def load(sqlite_path: Path, url: str, log: Any = print) -> None:
    store = Store(url)
    try:
        await migrate.prepare(store)
    finally:
        await store.dispose()
    started = time.perf_counter()
    db = sqlite3.connect(sqlite_path)
    connection = await asyncpg.connect(driver_dsn(url))
    try:
        await connection.execute("SET maintenance_work_mem = '1GB'")
        for index in events.indexes:
            await connection.execute(f"DROP INDEX IF EXISTS {index.name}")
        for table, columns in TABLES:
            copied = 0
            for chunk in _rows(db, table, columns):
                await connection.copy_records_to_table(table, records=chunk, columns=list(columns))
                copied += len(chunk)
            await connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
            log(f"  copied {copied:,} {table} ({time.perf_counter() - started:.0f} s)")
        dialect = postgresql.dialect()
        for index in events.indexes:
            log(f"  index {index.name} ({time.perf_counter() - started:.0f} s)")
            await connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
    finally:
        await connection.close()
        db.close()
    log(f"  conversations and profile metric times ({time.perf_counter() - started:.0f} s)")
    store = Store(url)
    try:
        await store.write(rebuild_derived_tables)
        async with store.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as autocommit:
            await autocommit.exec_driver_sql("VACUUM ANALYZE")
    finally:
        await store.dispose()
    log(f"  loaded in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    print(asyncio.run(ensure(Path(sys.argv[1]), sys.argv[2])))
