"""The bench's PostgreSQL side: a blocking asyncpg connection shaped like sqlite3's, the compiler's SQL as the
store's PostgreSQL dialect renders it (counts, pages, the density probe: raw paging's `PAGING`), and ingest
(`trackEvents` against raw COPY of the same batches, in a copy of the bench database)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import measure
import pg_store
import service
import sqlalchemy as sa
from pg_store import driver_dsn
from segments import PagingAudience

from resolvers.compiler import FilterCompiler, count_statement, density_statement, page_statement
from resolvers.language.structured import filter_from_input
from resolvers.language.text import parse_filter
from store.dialects import store_url

DIALECT = sa.create_engine(store_url("postgresql+asyncpg://bench@localhost/bench")).dialect  # never connected


class Rows:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def __iter__(self) -> Any:
        return iter(self.rows)

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows


class PgDB:
    """asyncpg on a loop of its own, with sqlite3's `execute(sql, params).fetchone()` (named `:x` or `$n` SQL)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.connection: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(driver_dsn(url)))
        # As the store's connections: a generic plan, which PostgreSQL may pick for a statement asyncpg prepared and
        # ran several times, ignores the bound values and can turn a page's per-profile probe into a whole-window join.
        self.loop.run_until_complete(self.connection.execute("SET jit = off; SET plan_cache_mode = force_custom_plan"))

    def execute(self, sql: str, params: Any = ()) -> Rows:
        if isinstance(params, dict):
            names: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}::bigint"  # the bench's parameters are integers

            sql = re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", number, sql)
            params = [params[name] for name in names]
        return Rows(self.loop.run_until_complete(self.connection.fetch(sql, *params)))

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()


def raw(statement: Any) -> measure.RawStatement:
    """A SQLAlchemy statement as the SQL text ($n) and parameters the store's PostgreSQL engine sends."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    return measure.RawStatement(str(compiled), [values[name] for name in compiled.positiontup or []])


def audience(filter_input: dict[str, Any], as_of: int) -> Any:
    return FilterCompiler("postgresql", as_of, {}).audience(filter_from_input(filter_input, parse_filter))


def compiled_count(filter_input: dict[str, Any], as_of: int) -> measure.RawStatement:
    return raw(count_statement(audience(filter_input, as_of)))


def compiled_page(
    filter_input: dict[str, Any], as_of: int, after_id: int | None, limit: int, columns: list[Any] | None = None,
    walk: bool = False,
) -> measure.RawStatement:
    return raw(page_statement(audience(filter_input, as_of), after_id, limit, columns, walk=walk))


def density(filter_input: dict[str, Any], as_of: int, sample: int) -> measure.RawStatement:
    """The density probe the server runs before a first page (profiles sampled, members among them)."""
    return raw(density_statement(audience(filter_input, as_of), sample))


# Raw paging (service.paging) on PostgreSQL: the compiler's pages and probe in its dialect, the hand-written page.
PAGING = service.RawPaging("asyncpg", compiled_page, density, PagingAudience.EXISTS_PAGE_POSTGRES)


def query_plan(db: PgDB, sql: str, params: Any) -> str:
    """EXPLAIN ANALYZE, as PostgreSQL prints it."""
    return "\n".join(row[0] for row in db.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params).fetchall())


# ---------------------------------------------------------------- export


def export_synthetic(server_url: str, n: int, directory: Path, repeat: int) -> service.ExportResult:
    """A `service.synthetic_store` of n profiles bulk-loaded into a database of its own (made afresh: its orders
    are relative to now), exported whole from a server over it, then dropped."""
    path = service.synthetic_store(n, directory)
    name = pg_store.database_name(path)
    asyncio.run(_drop_database(server_url, name))
    try:
        url, _ = asyncio.run(pg_store.ensure(path, server_url, log=lambda _: None))
        with service.Server(url) as server:
            return service.export_buyers(server, n, repeat)
    finally:
        asyncio.run(_drop_database(server_url, name))


# ---------------------------------------------------------------- ingest


async def _copy_database(server_url: str, source: str, target: str) -> str:
    admin = await asyncpg.connect(driver_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source}'")
        await admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    finally:
        await admin.close()
    return sa.make_url(server_url).set(database=target).render_as_string(hide_password=False)


async def _drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(driver_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def ingest(server_url: str, bench_url: str, profiles_count: int, seed_value: int, batches: int,
           size: int = 1000, block: int = service.INGEST_BLOCK) -> service.IngestResult:
    """trackEvents over HTTP in batches of `size` against raw COPY of the same rows (one transaction each) into a
    copy of the bench database, in alternating blocks as the SQLite ingest bench does."""
    source = sa.make_url(bench_url).database
    assert source
    target = f"{source}_ingest"
    url = asyncio.run(_copy_database(server_url, source, target))
    events = service.ingest_events(profiles_count, (batches + 1) * size, seed_value)
    chunks = [events[i:i + size] for i in range(0, len(events), size)]
    graphql_batches: list[float] = []
    raw_batches: list[float] = []
    columns = ["profile_id", "metric_id", "ts", "channel", "conversation_id", "properties", "unique_id"]
    try:
        db = PgDB(url)
        metric_ids = {key: metric_id for metric_id, key in db.execute("SELECT id, name_key FROM metrics").fetchall()}

        def insert_raw(rows: Sequence[tuple[Any, ...]]) -> float:
            async def copy() -> None:
                async with db.connection.transaction():
                    await db.connection.copy_records_to_table("events", records=rows, columns=columns)
            started = time.perf_counter()
            db.loop.run_until_complete(copy())
            return time.perf_counter() - started

        with service.Server(url) as server:
            server.post(service.TRACK_QUERY, {"events": service._graphql_batch(chunks[0], "gql-")})
            insert_raw(service._raw_batch(chunks[0], "raw-", metric_ids))
            measured = chunks[1:]
            for start in range(0, len(measured), block):
                blocked = measured[start:start + block]
                for chunk in blocked:
                    variables = {"events": service._graphql_batch(chunk, "gql-")}
                    started = time.perf_counter()
                    accepted = server.post(service.TRACK_QUERY, variables)["trackEvents"]["accepted"]
                    graphql_batches.append(time.perf_counter() - started)
                    if accepted != len(chunk):
                        raise RuntimeError(f"trackEvents accepted {accepted} of {len(chunk)}")
                time.sleep(service.INGEST_PAUSE)
                for chunk in blocked:
                    raw_batches.append(insert_raw(service._raw_batch(chunk, "raw-", metric_ids)))
                time.sleep(service.INGEST_PAUSE)
        db.close()
    finally:
        asyncio.run(_drop_database(server_url, target))
    counted = size * len(graphql_batches)
    return service.IngestResult(counted, sum(graphql_batches), sum(raw_batches), graphql_batches, raw_batches)

