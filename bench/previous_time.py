"""A design measured and not built: each event's previous time of the same metric for its profile.

With it, "did X in the window" counts the events in the window whose previous time is before the
window (one per member: nothing to de-duplicate), and "at least twice" de-duplicates only the events
whose previous time is inside the window. The column lives in a side table built from the bench store
(`lag(ts)` per profile and metric, indexed on (metric, ts, previous time, profile)), so the store
itself is untouched. The script prints, side by side and in rounds, SQLite today, SQLite with the
column, and DuckDB (when installed) for three of the four reference segments where DuckDB is faster;
the fourth, a follow-up, tests each recommendation, which the column does not change.

    python bench/previous_time.py --profiles 200000 --events 5000000
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import build  # noqa: E402
import duck  # noqa: E402
import measure  # noqa: E402
import segments  # noqa: E402

# The window's first event of a profile: its previous one, if any, is before the 7 days.
FIRST_IN_7D = "(prev_ts IS NULL OR prev_ts < :d7)"
WITH_PREVIOUS_TIME = {
    "rec_7d": f"""SELECT count(*) FROM p.prev INDEXED BY ix_prev
        WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of AND {FIRST_IN_7D}""",
    "rec_7d_no_order": f"""SELECT count(*) FROM (
        SELECT profile_id FROM p.prev INDEXED BY ix_prev
        WHERE metric_id = :m_rec AND ts >= :d7 AND ts <= :as_of AND {FIRST_IN_7D}
        EXCEPT
        SELECT profile_id FROM p.prev INDEXED BY ix_prev
        WHERE metric_id = :m_order AND ts >= :d7 AND ts <= :as_of AND {FIRST_IN_7D})""",
    "rec_7d_no_order (probe per member)": """SELECT count(*) FROM p.prev AS a INDEXED BY ix_prev
        WHERE a.metric_id = :m_rec AND a.ts >= :d7 AND a.ts <= :as_of AND (a.prev_ts IS NULL OR a.prev_ts < :d7)
        AND NOT EXISTS (SELECT 1 FROM events INDEXED BY ix_events_profile_metric_ts
                        WHERE profile_id = a.profile_id AND metric_id = :m_order AND ts >= :d7 AND ts <= :as_of)""",
    "esc_2x_30d": """SELECT count(DISTINCT profile_id) FROM p.prev INDEXED BY ix_prev
        WHERE metric_id = :m_esc AND ts >= :d30 AND ts <= :as_of AND prev_ts >= :d30""",
}
SEGMENT_OF = {name: name.split(" ")[0] for name in WITH_PREVIOUS_TIME}


def side_table(store: Path) -> Path:
    """The previous times of the store's events, built once next to the store."""
    path = store.with_suffix(".previous-time.db")
    if path.exists():
        return path
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(partial)) as db, db:
        db.execute("ATTACH ? AS s", (str(store),))
        db.execute("CREATE TABLE prev AS SELECT profile_id, metric_id, ts,"
                   " lag(ts) OVER (PARTITION BY profile_id, metric_id ORDER BY ts, id) AS prev_ts FROM s.events")
        db.execute("CREATE INDEX ix_prev ON prev (metric_id, ts, prev_ts, profile_id)")
    partial.rename(path)
    print(f"side table built in {time.perf_counter() - started:.0f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    store = build.ensure_store(args.profiles, args.events, args.seed)
    db = build.connect(store.path)
    db.execute("ATTACH ? AS p", (str(side_table(store.path)),))
    params = segments.parameters(db, build.AS_OF)
    by_key = {segment.key: segment for segment in segments.SEGMENTS}
    duckdb_db = duck.load(store.path) if duck.available() else None
    print(f"{'segment':36} {'members':>8} {'SQLite today':>13} {'with prev. time':>16} {'DuckDB':>8}  (ms, medians)")
    for name, sql in WITH_PREVIOUS_TIME.items():
        segment = by_key[SEGMENT_OF[name]]
        today = measure.compiled_count(segment.filter, build.AS_OF)
        runs: dict[str, Any] = {
            "today": lambda st=today: db.execute(st.sql, st.params).fetchone()[0],
            "previous": lambda q=sql: db.execute(q, params).fetchone()[0],
        }
        if duckdb_db is not None:
            bound = {key: value for key, value in params.items() if f"${key}" in segment.duckdb}
            runs["duckdb"] = lambda s=segment, b=bound: duckdb_db.execute(s.duckdb, b).fetchone()[0]
        timings = measure.timed_together(runs, args.repeat)
        counts = {timing.result for timing in timings.values()}
        if len(counts) != 1:
            raise RuntimeError(f"{name}: the counts differ: {counts}")
        duckdb_ms = f"{timings['duckdb'].ms:8.2f}" if "duckdb" in timings else f"{'-':>8}"
        print(f"{name:36} {counts.pop():>8,} {timings['today'].ms:13.2f} {timings['previous'].ms:16.2f} {duckdb_ms}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
