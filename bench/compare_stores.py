"""SQLite and PostgreSQL side by side: the same generated data in both, the reference segments' audience latency.

    .venv/bin/python bench/compare_stores.py --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        [--profiles 20000] [--days 90] [--seed 1] [--repeat 5] [--keep]

Both stores are fresh (a SQLite file under bench/data/, a PostgreSQL database of this script's own, created
through the given URL; both removed at the end unless --keep) and are filled by `seed.seed_store` with the same
seed and the bench's fixed end, through the real ingest path; a fingerprint of every profile, metric and event
row checks that they hold the same data. Then ANALYZE (VACUUM ANALYZE on PostgreSQL, so that index-only scans
apply) and, per reference segment, medians after a warm-up of: the count statement, the first page of 1000
(set shape) and the page after it (walk shape), all compiled once per dialect and run through `Store.fetch`.
The table is printed and appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import build  # noqa: E402
import report  # noqa: E402
from segments import SEGMENTS, Segment  # noqa: E402

import seed  # noqa: E402
from resolvers.compiler import FilterCompiler, count_statement, page_statement  # noqa: E402
from resolvers.language.structured import filter_from_input  # noqa: E402
from resolvers.language.text import parse_filter  # noqa: E402
from store.engine import Store  # noqa: E402
from store.tables import events, metrics, profiles  # noqa: E402
from tests.stores import create_database, drop_database  # noqa: E402

PAGE = 1000
HEADING = "## SQLite and PostgreSQL side by side"
STORES = ("sqlite", "postgresql")
SHAPES = ("count", "page 1 (set)", "page 2 (walk)")


@dataclass
class SegmentRun:
    segment: Segment
    members: dict[str, int] = field(default_factory=dict)  # store → count
    first_page: dict[str, list[int]] = field(default_factory=dict)  # store → member ids of page 1
    ms: dict[tuple[str, str], float] = field(default_factory=dict)  # (store, shape) → median ms
    plan: str = ""  # PostgreSQL EXPLAIN summary of the count statement

    @property
    def agree(self) -> bool:
        return len(set(self.members.values())) == 1 and len({tuple(ids) for ids in self.first_page.values()}) == 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", required=True, help="a server to create the comparison database on")
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure, after one warm-up")
    parser.add_argument("--keep", action="store_true", help="keep both stores (and say where)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to write nothing")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- the two stores


def fresh_sqlite(args: argparse.Namespace) -> str:
    path = build.DATA / f"compare-p{args.profiles}-d{args.days}-s{args.seed}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


async def fingerprint(store: Store) -> tuple[dict[str, int], str]:
    """Row counts and a hash of every metric, profile and event (JSON compared as parsed values)."""
    digest = hashlib.sha1()
    counts = {}
    for table in (metrics, profiles, events):
        rows = await store.fetch(sa.select(table).order_by(table.c.id))
        counts[table.name] = len(rows)
        for row in rows:
            digest.update(orjson.dumps(list(row), option=orjson.OPT_SORT_KEYS))
    return counts, digest.hexdigest()[:12]


async def analyze(store: Store) -> None:
    """Fresh planner statistics; on PostgreSQL VACUUM too, so the visibility map allows index-only scans."""
    if store.dialect == "sqlite":
        async with store.begin() as connection:  # committed (an AUTOCOMMIT connection here would roll it back)
            await connection.exec_driver_sql("ANALYZE")
        return
    async with store.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        await connection.exec_driver_sql("VACUUM ANALYZE")


# ---------------------------------------------------------------- measuring


async def median_ms(run: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await run()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def plan_node(node: dict[str, Any]) -> str:
    """One plan node as EXPLAIN's text form names it, its children in brackets (metric-id lookups left out)."""
    kind, join = node["Node Type"], node.get("Join Type", "Inner")
    if kind == "Aggregate":
        kind = {"Sorted": "GroupAggregate", "Hashed": "HashAggregate"}.get(node.get("Strategy"), "Aggregate")
    elif kind == "SetOp":
        kind = f"{'HashSetOp' if node.get('Strategy') == 'Hashed' else 'SetOp'} {node['Command']}"
    elif join != "Inner":
        kind = "Nested Loop " + join + " Join" if kind == "Nested Loop" else kind.replace(" Join", f" {join} Join")
    if "Index Name" in node:
        kind += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        kind += f" on {node['Relation Name']}"
    if node.get("Heap Fetches"):
        kind += f" [{node['Heap Fetches']:,} heap fetches]"
    children = [plan_node(child) for child in node.get("Plans", []) if child.get("Relation Name") != "metrics"]
    if node["Node Type"] == "Result" and len(children) == 1:
        return children[0]
    return kind + (f"({', '.join(children)})" if children else "")


def plan_summary(plan: dict[str, Any]) -> str:
    """The plan's shape, the shared buffers it touched and its execution time."""
    top = plan["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return f"{plan_node(top)} — {buffers:,} buffers, {plan['Execution Time']:.2f} ms"


async def explain(store: Store, statement: Any) -> str:
    sql = str(statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    async with store.reader.connect() as connection:
        result = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        document = result.scalar_one()
    return plan_summary((orjson.loads(document) if isinstance(document, str) else document)[0])


async def measure(segment: Segment, stores: dict[str, Store], repeat: int) -> SegmentRun:
    """The three statements of one segment on both stores, runs of the two stores interleaved per statement."""
    result = SegmentRun(segment)
    statements: dict[str, dict[str, Any]] = {}
    for name, store in stores.items():
        audience = FilterCompiler(store.dialect, build.AS_OF, {}).audience(filter_from_input(segment.filter, parse_filter))
        result.members[name] = (await store.fetch(count_statement(audience)))[0][0]
        first = await store.fetch(page_statement(audience, None, PAGE + 1))
        result.first_page[name] = [row.id for row in first[:PAGE]]
        cursor = first[:PAGE][-1].id if first else None  # the cursor after page 1 (the last member if fewer)
        statements[name] = {"count": count_statement(audience), "page 1 (set)": page_statement(audience, None, PAGE + 1),
                            "page 2 (walk)": page_statement(audience, cursor, PAGE + 1, walk=True)}
    for shape in SHAPES:
        for name, store in stores.items():
            statement = statements[name][shape]
            result.ms[name, shape] = await median_ms(lambda s=store, q=statement: s.fetch(q), repeat)
    result.plan = await explain(stores["postgresql"], statements["postgresql"]["count"])
    return result


# ---------------------------------------------------------------- output


def fmt(ms: float) -> str:
    return f"{ms:.2f}" if ms < 10 else f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def table(runs: list[SegmentRun]) -> list[str]:
    head = ["segment", "members (SQLite / PG)", "agree"]
    for shape in SHAPES:
        head += [f"{shape}: SQLite", f"{shape}: PG", "PG ÷ SQLite"]
    lines = ["| " + " | ".join(head) + " |", "|---|--:|:-:|" + "--:|" * 3 * len(SHAPES)]
    for run in runs:
        sqlite_n, pg_n = run.members["sqlite"], run.members["postgresql"]
        cells = [run.segment.title, f"{sqlite_n:,}" if sqlite_n == pg_n else f"{sqlite_n:,} / {pg_n:,}",
                 "✓" if run.agree else "✗"]
        for shape in SHAPES:
            lite, pg = run.ms["sqlite", shape], run.ms["postgresql", shape]
            cells += [fmt(lite), fmt(pg), f"{pg / lite:.2f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def section(args: argparse.Namespace, runs: list[SegmentRun], counts: dict[str, int], pg_version: str) -> str:
    sizes = ", ".join(f"{n:,} {name}" for name, n in counts.items())
    return "\n".join([
        HEADING, "",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {report.machine()}; {pg_version} on the same machine (asyncpg)  ",
        f"Command: `python bench/compare_stores.py --profiles {args.profiles} --days {args.days} --seed {args.seed}`  ",
        f"Data: seed.py's generator through `seed_store` (the ingest path) into both stores, seed {args.seed}, "
        f"{args.days} days ending {build.END.isoformat()} (evaluated as of that instant): {sizes}, identical in both "
        "(row fingerprint); then ANALYZE / VACUUM ANALYZE  ",
        f"Times: ms, median of {args.repeat} after a warm-up, the same compiled statements through `Store.fetch` "
        f"(count_statement; page 1 = page_statement(limit {PAGE + 1}); page 2 = the walk shape from the cursor "
        f"after page 1). Other work shared the 2 cores: compare ratios more than absolute figures.",
        "", *table(runs), "",
        "PostgreSQL plans of the count statements (EXPLAIN ANALYZE, BUFFERS):", "",
        *(f"- {run.segment.key}: {run.plan}" for run in runs), "",
    ])


def append_section(path: Path, text: str) -> None:
    """Append the section, replacing this script's previous one (up to the next `## ` heading)."""
    current = path.read_text() if path.exists() else ""
    current = re.sub(rf"\n*{re.escape(HEADING)}\n.*?(?=\n## |\Z)", "", current, flags=re.S)
    path.write_text(current.rstrip("\n") + "\n\n" + text)


# ---------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    name = f"segmentql_compare_{os.getpid()}"
    pg_url = await create_database(args.postgres_url, name)
    stores = {"sqlite": Store(fresh_sqlite(args)), "postgresql": Store(pg_url)}
    try:
        fingerprints = {}
        for store_name, store in stores.items():
            print(f"loading {store_name}: {args.profiles:,} profiles, {args.days} days, seed {args.seed}")
            summary = await seed.seed_store(store, args.profiles, args.days, args.seed, build.END)
            print(f"  {summary['events']:,} events in {summary['seconds']:.0f} s")
            fingerprints[store_name] = await fingerprint(store)
            print(f"  rows {fingerprints[store_name][0]}, fingerprint {fingerprints[store_name][1]}")
            await analyze(store)
        same = fingerprints["sqlite"] == fingerprints["postgresql"]
        print(f"same data in both stores: {'✓' if same else '✗'}")
        if not same:
            raise SystemExit("the stores differ: no comparison")
        pg_version = " ".join((await stores["postgresql"].fetch(sa.text("SELECT version()")))[0][0].split()[:2])
        runs = []
        for segment in SEGMENTS:
            run = await measure(segment, stores, args.repeat)
            runs.append(run)
            figures = "  ".join(f"{shape} {fmt(run.ms['sqlite', shape])} / {fmt(run.ms['postgresql', shape])}"
                                for shape in SHAPES)
            print(f"\n{segment.key}: {run.members['sqlite']:,} / {run.members['postgresql']:,} members "
                  f"{'✓' if run.agree else '✗'}  (ms, SQLite / PG)  {figures}\n  PG count plan: {run.plan}")
        text = section(args, runs, fingerprints["sqlite"][0], pg_version)
        print("\n" + text)
        if args.output:
            append_section(Path(args.output), text)
            print(f"appended to {args.output}")
    finally:
        for store in stores.values():
            await store.dispose()
        if args.keep:
            print(f"kept: {pg_url} and {stores['sqlite'].url}")
        else:
            await drop_database(args.postgres_url, name)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{make_url(stores['sqlite'].url).database}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
