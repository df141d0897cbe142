"""Benchmark stores: seed.py's deterministic shoppers bulk-loaded into SQLite, cached under bench/data/.

The tables come from the project's own metadata (`store.migrate.prepare`, the migrations); the events table's
indexes are dropped for the load and recreated from the same metadata afterwards. Events are
staged in shopper order (as the generator yields them) and copied into `events` in time order,
as a live store would have received them, so ids grow with `ts`. Then the tables derived from those
events (conversations, profile_metrics), as writes keep them, and ANALYZE.

seed.py's rates give about 23 events per shopper over 180 days; to reach the requested event count
at the requested profile count the bench picks the number of `days` (calibrated on a strided
sample of shoppers): more history, same shoppers, same rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import seed  # noqa: E402
from resolvers.ingest import rebuild_derived_tables  # noqa: E402
from store import migrate  # noqa: E402
from store.engine import Store  # noqa: E402
from store.tables import events  # noqa: E402
from vocabulary.agent_metrics import canonical_metric_name, metric_key  # noqa: E402
from vocabulary.timestamps import to_micros  # noqa: E402

DATA = ROOT / "bench" / "data"
# Every bench store ends here, and every query is evaluated as of this instant (reproducible counts).
END = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = to_micros(END)
SAMPLE = 2000
METRIC_NAMES = (seed.STARTED.name, seed.RECOMMENDED.name, seed.RESOLVED.name, seed.ESCALATED.name,
                seed.PLACED_ORDER, seed.VIEWED_PRODUCT)


@dataclass(frozen=True)
class BuiltStore:
    path: Path
    profiles: int
    events: int
    days: int
    seed: int
    seconds: float  # build time; 0 when it came from the cache

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"


def schema_tag() -> str:
    """A short hash of the schema (tables, indexes, migration head): a cached store is rebuilt when it changes."""
    from sqlalchemy.schema import CreateTable

    from store.tables import metadata

    ddl = [str(CreateTable(table).compile(dialect=sqlite_dialect.dialect())) for table in metadata.sorted_tables]
    ddl += [str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect()))
            for table in metadata.sorted_tables for index in sorted(table.indexes, key=lambda i: str(i.name))]
    try:
        from store.migrate import head_revision

        ddl.append(head_revision())
    except ImportError:  # a version without migrations
        pass
    return hashlib.sha1("\n".join(ddl).encode()).hexdigest()[:8]


def store_path(profiles: int, events_wanted: int, seed_value: int) -> Path:
    return DATA / f"store-p{profiles}-e{events_wanted}-s{seed_value}-{schema_tag()}.db"


def _sample_events(profiles: int, days: int, seed_value: int) -> float:
    """Mean events per shopper over a strided sample of the shoppers."""
    step = max(1, profiles // SAMPLE)
    indexes = range(0, profiles, step)
    total = sum(len(seed.shopper_events(seed.make_shopper(i, days, seed_value, END), days, seed_value, END))
                for i in indexes)
    return total / len(indexes)


def calibrate_days(profiles: int, events_wanted: int, seed_value: int) -> int:
    """The smallest number of days whose expected event count reaches `events_wanted` (bisection on a sample)."""
    low, high = 1, 90
    while _sample_events(profiles, high, seed_value) * profiles < events_wanted:
        low, high = high, high * 2
        if high > 20_000:
            raise ValueError(f"{events_wanted:,} events are out of reach for {profiles:,} profiles")
    while high - low > 1:
        middle = (low + high) // 2
        if _sample_events(profiles, middle, seed_value) * profiles >= events_wanted:
            high = middle
        else:
            low = middle
    return high


async def _create_tables(url: str) -> None:
    store = Store(url)
    try:
        await migrate.prepare(store)
    finally:
        await store.dispose()


def _event_rows(profiles: int, days: int, seed_value: int, metric_ids: dict[str, int]) -> Iterator[tuple[Any, ...]]:
    for shopper in seed.generate_profiles(profiles, days, seed_value, END):
        profile_id = shopper.index + 1
        for event in seed.shopper_events(shopper, days, seed_value, END):
            properties = event.properties
            channel, conversation = properties.get("channel"), properties.get("conversation_id")
            yield (profile_id, metric_ids[metric_key(event.metric)], to_micros(event.occurred_at or END),
                   channel if isinstance(channel, str) else None,
                   conversation if isinstance(conversation, str) else None,
                   orjson.dumps(properties).decode(), event.unique_id)


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(path: Path, profiles: int, days: int, seed_value: int, log: Any = print) -> int:
    """Fill a new SQLite store at `path`; returns the number of events."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_create_tables(f"sqlite+aiosqlite:///{path}"))
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1048576")
    db.execute("PRAGMA temp_store=FILE")
    for index in events.indexes:
        db.execute(f"DROP INDEX IF EXISTS {index.name}")
    db.execute("BEGIN")
    db.executemany("INSERT INTO metrics (name, name_key) VALUES (?, ?)",
                   [(canonical_metric_name(name), metric_key(name)) for name in METRIC_NAMES])
    metric_ids = {key: metric_id for metric_id, key in db.execute("SELECT id, name_key FROM metrics")}
    db.executemany(
        "INSERT INTO profiles (id, email, phone_number, external_id, first_name, last_name, properties,"
        " created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)",
        ((s.index + 1, s.email, s.phone_number, s.first_name, s.last_name, orjson.dumps(s.properties).decode(),
          s.created_at, s.created_at) for s in seed.generate_profiles(profiles, days, seed_value, END)))
    db.execute("COMMIT")
    staging = Path(f"{path}.staging")
    staging.unlink(missing_ok=True)
    db.execute(f"ATTACH '{staging}' AS staging")
    db.execute("PRAGMA staging.journal_mode=OFF")
    db.execute("CREATE TABLE staging.events (profile_id, metric_id, ts, channel, conversation_id, properties, unique_id)")
    total = 0
    for chunk in _chunks(_event_rows(profiles, days, seed_value, metric_ids), 200_000):
        db.execute("BEGIN")
        db.executemany("INSERT INTO staging.events VALUES (?, ?, ?, ?, ?, ?, ?)", chunk)
        db.execute("COMMIT")
        total += len(chunk)
        log(f"  generated {total:,} events ({time.perf_counter() - started:.0f} s)")
    log(f"  copying {total:,} events in time order")
    db.execute("BEGIN")
    db.execute("INSERT INTO events (profile_id, metric_id, ts, channel, conversation_id, properties, unique_id)"
               " SELECT profile_id, metric_id, ts, channel, conversation_id, properties, unique_id"
               " FROM staging.events ORDER BY ts, rowid")
    db.execute("COMMIT")
    db.execute("DETACH staging")
    staging.unlink()
    for index in events.indexes:
        log(f"  index {index.name} ({time.perf_counter() - started:.0f} s)")
        db.execute(str(CreateIndex(index).compile(dialect=sqlite_dialect.dialect())))
    log(f"  conversations and profile metric times ({time.perf_counter() - started:.0f} s)")
    derive_tables(path)
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return total


def ensure_store(profiles: int, events_wanted: int, seed_value: int, log: Any = print) -> BuiltStore:
    """The cached store for (profiles, events, seed), built when missing."""
    path = store_path(profiles, events_wanted, seed_value)
    ready = Path(f"{path}.ready")
    if path.exists() and ready.exists():
        days, total = (int(v) for v in ready.read_text().split())
        return BuiltStore(path, profiles, total, days, seed_value, 0.0)
    started = time.perf_counter()
    days = calibrate_days(profiles, events_wanted, seed_value)
    log(f"building {path.name}: {profiles:,} profiles over {days} days (≈{events_wanted:,} events wanted)")
    total = build(path, profiles, days, seed_value, log)
    ready.write_text(f"{days} {total}\n")
    seconds = time.perf_counter() - started
    log(f"  built in {seconds:.0f} s, {path.stat().st_size / 2**20:,.0f} MiB")
    return BuiltStore(path, profiles, total, days, seed_value, seconds)


def derive_tables(path: Path) -> None:
    """The tables a write keeps beside the events (conversations, profile_metrics), from the events a bench
    loaded around ingest."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        rebuild_derived_tables(connection)
    engine.dispose()


def connect(path: Path) -> sqlite3.Connection:
    """A raw sqlite3 connection with the server's own pragmas."""
    from store.engine import _sqlite_pragmas

    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _sqlite_pragmas(db, None)
    return db


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a store (sqlite3 backup), for benches that write."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst, pages=65536)


def metric_id_map(db: sqlite3.Connection) -> dict[str, int]:
    return {key: metric_id for metric_id, key in db.execute("SELECT id, name_key FROM metrics")}

