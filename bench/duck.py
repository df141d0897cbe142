"""DuckDB on the same data (optional: the `bench` extra), loaded into memory from the SQLite store.

DuckDB's sqlite extension is downloaded at run time, which this bench does not rely on: the
tables go through a CSV file instead (written once next to the store and cached as a .duckdb file).
"""

from __future__ import annotations

import csv
import sqlite3
import time
from pathlib import Path
from typing import Any

try:
    import duckdb
except ImportError:  # the optional extra is not installed
    duckdb = None


def available() -> bool:
    return duckdb is not None


def _cache_file(store: Path) -> Path:
    return store.with_suffix(".duckdb")


def _build_cache(store: Path, log: Any) -> Path:
    target = _cache_file(store)
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    events_csv, profiles_csv = store.with_suffix(".events.csv"), store.with_suffix(".profiles.csv")
    with sqlite3.connect(store) as db:
        for path, query in ((events_csv, "SELECT profile_id, metric_id, ts, channel, properties FROM events ORDER BY id"),
                            (profiles_csv, "SELECT id FROM profiles ORDER BY id")):
            with path.open("w", newline="") as out:
                csv.writer(out).writerows(db.execute(query))
    if duckdb is None:
        raise RuntimeError("duckdb is not installed")
    cache = duckdb.connect(str(target))
    cache.execute(
        "CREATE TABLE events AS SELECT * FROM read_csv(?, header = false, columns = {'profile_id': 'BIGINT',"
        " 'metric_id': 'BIGINT', 'ts': 'BIGINT', 'channel': 'VARCHAR', 'properties': 'JSON'})", [str(events_csv)])
    cache.execute("CREATE TABLE profiles AS SELECT * FROM read_csv(?, header = false, columns = {'id': 'BIGINT'})",
                  [str(profiles_csv)])
    cache.close()
    events_csv.unlink()
    profiles_csv.unlink()
    log(f"  DuckDB copy of the store built in {time.perf_counter() - started:.0f} s")
    return target


def load(store: Path, log: Any = print) -> Any:
    """An in-memory DuckDB connection holding the store's events (profile_id, metric_id, ts, channel, properties)
    and profiles (id)."""
    if duckdb is None:
        raise RuntimeError("duckdb is not installed")
    cache = _cache_file(store)
    built = Path(f"{store}.ready")  # written when the SQLite store was built
    if not cache.exists() or (built.exists() and cache.stat().st_mtime < built.stat().st_mtime):
        cache = _build_cache(store, log)
    db = duckdb.connect()
    db.execute(f"ATTACH '{cache}' AS cache (READ_ONLY)")
    db.execute("CREATE TABLE events AS SELECT * FROM cache.events")
    db.execute("CREATE TABLE profiles AS SELECT * FROM cache.profiles")
    db.execute("DETACH cache")
    return db
