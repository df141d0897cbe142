"""SegmentQL benchmark: one command builds (or reuses) a store of generated data and prints, side by side,
the reference segments (hand-written SQL, compiled SQL, GraphQL, DuckDB), paging, export, ingest and
latency growth; the table goes to bench/RESULTS.md.

    .venv/bin/python bench/run.py --quick
    .venv/bin/python bench/run.py --profiles 200000 --events 5000000 [--growth 1000000,5000000,20000000]
    .venv/bin/python bench/run.py --store postgresql --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Stores are cached under bench/data/ by (profiles, events, seed, schema). With `--store postgresql` the SQLite store
(and each growth size's) is also bulk-loaded (COPY, bench/pg_store.py) into a database of its own on that server, kept
for later runs, and every part but DuckDB runs there too (segments with hand-written PostgreSQL SQL, GraphQL, paging,
exports, conversations, ingest, growth), printed beside SQLite's. Figures only: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import asyncio  # noqa: E402

import build  # noqa: E402
import duck  # noqa: E402
import measure  # noqa: E402
import pg  # noqa: E402
import pg_store  # noqa: E402
import report  # noqa: E402
import segments  # noqa: E402
import service  # noqa: E402

from resolvers.compiler import page_statement  # noqa: E402
from vocabulary.timestamps import format_datetime  # noqa: E402

PARTS = ("segments", "duckdb", "graphql", "paging", "export", "conversations", "ingest", "growth")
SERVER_PARTS = {"graphql", "paging", "export", "conversations"}  # measured through a `segmentql serve`
# Why the PostgreSQL run has no DuckDB column (a design choice, printed with its tables).
DUCKDB_ON_SQLITE = ("DuckDB runs beside SQLite only, by design: it loads the SQLite store's file into an in-process "
                    "engine, the analytic reference for the embedded store; PostgreSQL's reference is its own "
                    "hand-written SQL above")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000, help="events wanted (≈: whole shoppers)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20k profiles / 500k events, smaller growth and exports")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per segment figure (after one warm-up)")
    parser.add_argument("--heavy-repeat", type=int, default=5, help="timed runs of paging and exports")
    parser.add_argument("--growth", default=None, help="event counts, comma-separated (default 1000000,5000000; "
                        "add 20000000 for the long one; '' to skip)")
    parser.add_argument("--export-sizes", default=None, help="members of the export_memory.py stores (default 20000,200000)")
    parser.add_argument("--ingest-batches", type=int, default=50, help="batches of 1000 events (after a warm-up batch)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {', '.join(PARTS)}")
    parser.add_argument("--api-key", default=None, help="sent as a bearer token, for a server that wants one")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to write nothing")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database-url", default=None, help="with --store postgresql")
    args = parser.parse_args(argv)
    if args.quick:
        args.profiles, args.events = 20_000, 500_000
    if args.growth is None:
        args.growth = "100000,500000" if args.quick else "1000000,5000000"
    if args.export_sizes is None:
        args.export_sizes = "2000,20000" if args.quick else "20000,200000"
    args.skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = args.skip - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.store == "postgresql" and not args.database_url:
        parser.error("--store postgresql needs --database-url (a server to load the bench database into)")
    return args


def say(message: str) -> None:
    print(message, flush=True)


def run_segments(db: Any, repeat: int, postgres: bool = False) -> list[report.SegmentResult]:
    """The reference segments on sqlite3, or (`postgres`) on a PgDB with the PostgreSQL dialect and hand-written SQL."""
    params = segments.parameters(db, build.AS_OF)
    query_plan = pg.query_plan if postgres else measure.query_plan
    results = []
    for segment in segments.SEGMENTS:
        hand_sql = segment.postgres if postgres else segment.hand
        if postgres:
            statement = pg.compiled_count(segment.filter, build.AS_OF)
            page = pg.compiled_page(segment.filter, build.AS_OF, None, service.PAGE + 1)
        else:
            statement = measure.compiled_count(segment.filter, build.AS_OF)
            page = measure.raw(page_statement(measure.audience(segment.filter, build.AS_OF), None, service.PAGE + 1))
        alternatives = {f"hand: {shape}": (lambda sql=sql: db.execute(sql, params).fetchone()[0])
                        for shape, sql in hand_sql.items()}
        alternatives["compiled"] = lambda st=statement: db.execute(st.sql, st.params).fetchone()[0]
        alternatives["page"] = lambda st=page: db.execute(st.sql, st.params).fetchall()
        timings = measure.timed_together(alternatives, repeat)
        hand = {shape: timings[f"hand: {shape}"] for shape in hand_sql}
        compiled, raw_page = timings["compiled"], timings["page"]
        result = report.SegmentResult(
            segment.key, segment.title, int(compiled.result), hand, compiled, raw_page=raw_page,
            counts={"compiled": int(compiled.result), **{f"hand: {k}": int(t.result) for k, t in hand.items()}},
            compiled_sql=statement.sql, compiled_plan=query_plan(db, statement.sql, statement.params),
            page_plan=query_plan(db, page.sql, page.params), page_ids=tuple(int(row[0]) for row in raw_page.result),
        )
        result.hand_sql = hand_sql[result.best_shape]
        result.hand_plan = query_plan(db, result.hand_sql, params)
        results.append(result)
        say(f"  {segment.key:<20} members {result.members:>7,}  hand {result.best.ms:8.1f} ms  "
            f"compiled {compiled.ms:8.1f} ms  ({compiled.median / result.best.median:.2f}×)  page {raw_page.ms:.1f} ms")
    return results


def run_duckdb(path: Path, db: Any, results: list[report.SegmentResult], repeat: int) -> None:
    duckdb_db = duck.load(path, say)
    params = segments.parameters(db, build.AS_OF)
    for segment, result in zip(segments.SEGMENTS, results, strict=True):
        bound = {name: value for name, value in params.items() if f"${name}" in segment.duckdb}
        result.duckdb = measure.timed(lambda s=segment, b=bound: duckdb_db.execute(s.duckdb, b).fetchone()[0], repeat)
        result.counts["duckdb"] = int(result.duckdb.result)
        say(f"  {segment.key:<20} DuckDB {result.duckdb.ms:8.1f} ms")
    duckdb_db.close()


def run_graphql(server: service.Server, db: Any, results: list[report.SegmentResult], repeat: int,
                postgres: bool = False) -> None:
    for segment, result in zip(segments.SEGMENTS, results, strict=True):
        segment_id = server.saved_segment(segment.key, segment.filter)
        # In rounds with the compiled SQL on this side's connection: "GraphQL − compiled" is then a
        # difference of times taken under the same load (a few ms apart), not minutes apart.
        statement = (pg.compiled_count if postgres else measure.compiled_count)(segment.filter, build.AS_OF)
        paired = measure.timed_together({
            "graphql": lambda i=segment_id: server.count(i),
            "compiled": lambda st=statement: db.execute(st.sql, st.params).fetchone()[0],
        }, repeat * 3)
        result.graphql_count, result.paired_compiled = paired["graphql"], paired["compiled"]
        result.counts["graphql"] = int(result.graphql_count.result)
        result.graphql_page = measure.timed(lambda f=segment.filter: server.page(f), repeat)
        say(f"  {segment.key:<20} GraphQL count {result.graphql_count.ms:8.1f} ms  page {result.graphql_page.ms:8.1f} ms")


def paging_audience(db: Any, wanted: int, postgres: bool = False) -> tuple[segments.PagingAudience, int]:
    """The candidate audience whose size is nearest `wanted`, and its size."""
    sized = []
    for candidate in segments.paging_candidates():
        statement = (pg.compiled_count if postgres else measure.compiled_count)(candidate.filter, build.AS_OF)
        sized.append((int(db.execute(statement.sql, statement.params).fetchone()[0]), candidate))
    size, chosen = min(sized, key=lambda item: abs(item[0] - wanted))
    return chosen, size


def growth_step(db: Any, built: build.BuiltStore, repeat: int, postgres: bool = False) -> report.GrowthRow:
    """Compiled and best hand-written counts of the reference segments on one store size (sqlite3 or a PgDB)."""
    params = segments.parameters(db, build.AS_OF)
    compiled: dict[str, float] = {}
    hand: dict[str, float] = {}
    for segment in segments.SEGMENTS:
        statement = (pg.compiled_count if postgres else measure.compiled_count)(segment.filter, build.AS_OF)
        hand_sql = segment.postgres if postgres else segment.hand
        alternatives = {shape: (lambda sql=sql: db.execute(sql, params).fetchone()) for shape, sql in hand_sql.items()}
        alternatives[""] = lambda st=statement: db.execute(st.sql, st.params).fetchone()
        timings = measure.timed_together(alternatives, repeat)
        compiled[segment.key] = timings.pop("").ms
        hand[segment.key] = min(timing.ms for timing in timings.values())
    return report.GrowthRow(built.events, built.days, compiled, hand)


def open_store(built: build.BuiltStore, server_url: str | None) -> Any:
    """sqlite3 on the store, or (with `server_url`) a PgDB on its PostgreSQL copy, bulk-loaded when missing."""
    if server_url is None:
        return build.connect(built.path)
    url, seconds = asyncio.run(pg_store.ensure(built.path, server_url, say))
    if seconds:
        say(f"  loaded {pg_store.database_name(built.path)} in {seconds:.0f} s")
    return pg.PgDB(url)


def run_growth(args: argparse.Namespace, sizes: list[int], server_url: str | None = None) -> list[report.GrowthRow]:
    """Growth on each size's SQLite store, or (with `server_url`) on its PostgreSQL copy."""
    rows = []
    for size in sizes:
        built = build.ensure_store(args.profiles, size, args.seed, say)
        db = open_store(built, server_url)
        try:
            row = growth_step(db, built, args.repeat, postgres=server_url is not None)
        finally:
            db.close()
        rows.append(row)
        say(f"  {row.events:,} events: " + ", ".join(f"{k} {v:.1f}" for k, v in row.compiled.items()))
    return rows


def run_server_parts(server: service.Server, db: Any, results: report.Results, args: argparse.Namespace,
                     postgres: bool = False) -> None:
    """GraphQL counts, paging, the bench store's export and conversations through `server`, raw sides on `db`."""
    parts = SERVER_PARTS - args.skip
    side = "postgresql " if postgres else ""
    if "graphql" in parts and results.segments:
        say(f"{side}segments: GraphQL")
        results.graphql_floor = measure.timed(server.floor, args.repeat)
        run_graphql(server, db, results.segments, args.repeat, postgres)
    if "paging" in parts:
        chosen, size = paging_audience(db, min(100_000, args.profiles // 2), postgres)
        say(f"{side}paging: {chosen.name} ({size:,} members)")
        statements = pg.PAGING if postgres else service.SQLITE_PAGING
        results.paging = service.paging(server, db, chosen, segments.parameters(db, build.AS_OF), args.heavy_repeat,
                                        statements)
        if "export" in parts:
            segment_id = server.saved_segment("paging", chosen.filter)
            results.exports.append(service.export(server, segment_id, f"{chosen.name} ({size:,}, bench store)",
                                                  args.heavy_repeat))
    if "conversations" in parts:
        say(f"{side}conversations")
        results.conversations = service.conversations(server, args.repeat)
        for c in results.conversations:
            say(f"  {c.label:<36} {c.timing.ms:8.1f} ms")


def export_sizes(args: argparse.Namespace) -> list[int]:
    return [int(v) for v in args.export_sizes.split(",") if v.strip()]


def growth_sizes(args: argparse.Namespace) -> list[int]:
    return [int(v) for v in args.growth.split(",") if v.strip()]


def run_postgres(args: argparse.Namespace, built: build.BuiltStore) -> report.Results:
    """The bench's parts on a PostgreSQL copy of the store (and of each growth size), DuckDB aside."""
    say(f"postgresql: loading {built.path.name} into {pg_store.database_name(built.path)} (COPY), when not loaded yet")
    url, seconds = asyncio.run(pg_store.ensure(built.path, args.database_url, say))
    db = pg.PgDB(url)
    server_version = db.execute("SHOW server_version").fetchone()[0]
    store_info = {"server": f"PostgreSQL {server_version}, {url.rsplit('/', 1)[-1]}",
                  "built": f"loaded in {seconds:.0f} s" if seconds else "loaded before"}
    results = report.Results("", store_info)
    if "segments" not in args.skip:
        say("postgresql segments: hand-written and compiled SQL")
        results.segments = run_segments(db, args.repeat, postgres=True)
    if SERVER_PARTS - args.skip:
        with service.Server(url, args.api_key) as server:
            run_server_parts(server, db, results, args, postgres=True)
    db.close()
    if "export" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="segmentql-bench-", dir=build.DATA) as directory:
            for n in export_sizes(args):
                say(f"postgresql export: {n:,} members")
                results.exports.append(pg.export_synthetic(args.database_url, n, Path(directory), args.heavy_repeat))
    if "ingest" not in args.skip:
        say("postgresql ingest: trackEvents and raw COPY into a copy of the database")
        results.ingest = pg.ingest(args.database_url, url, args.profiles, args.seed, args.ingest_batches)
    sizes = growth_sizes(args)
    if "growth" not in args.skip and sizes:
        say("postgresql growth: each size's store loaded into a database of its own, when not loaded yet")
        results.growth = run_growth(args, sizes, args.database_url)
    results.notes.append(DUCKDB_ON_SQLITE)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    built = build.ensure_store(args.profiles, args.events, args.seed, say)
    store_info = {
        "profiles": built.profiles, "events": built.events, "days": built.days, "seed": built.seed,
        "end": format_datetime(build.END), "size_mib": built.path.stat().st_size / 2**20,
        "built": f"built in {built.seconds:.0f} s" if built.seconds else f"cached ({built.path.name})",
    }
    results = report.Results(command, store_info)
    say(f"store {built.path.name}: {built.profiles:,} profiles, {built.events:,} events, {built.days} days")
    db = build.connect(built.path)
    if "segments" not in args.skip:
        say("segments: hand-written and compiled SQL")
        results.segments = run_segments(db, args.repeat)
        if "duckdb" not in args.skip:
            if duck.available():
                say("segments: DuckDB")
                run_duckdb(built.path, db, results.segments, args.repeat)
            else:
                results.notes.append("DuckDB not installed (`pip install -e '.[bench]'`): its column is empty.")
    if SERVER_PARTS - args.skip:
        with service.Server(built.path, args.api_key) as server:
            run_server_parts(server, db, results, args)
        if results.graphql_floor is not None:
            results.wake_cost = measure.wake_cost()
    if "export" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="segmentql-bench-", dir=build.DATA) as directory:
            for n in export_sizes(args):
                say(f"export: {n:,} members")
                results.exports.append(service.export_synthetic(n, Path(directory), args.heavy_repeat))
    db.close()
    if "ingest" not in args.skip:
        copy = build.DATA / "ingest-copy.db"
        say(f"ingest: copying the store to {copy.name}")
        build.copy_store(built.path, copy)
        try:
            results.ingest = service.ingest(copy, args.profiles, args.seed, args.ingest_batches)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
    sizes = growth_sizes(args)
    if "growth" not in args.skip and sizes:
        say("growth")
        results.growth = run_growth(args, sizes)
    if args.store == "postgresql":
        results.postgres = run_postgres(args, built)
    print()
    print(report.console(results))
    if args.output:
        Path(args.output).write_text(report.render(results))
        print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
