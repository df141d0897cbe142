"""The results table: printed, and written to bench/RESULTS.md with the machine and the date."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from measure import Timing
from service import INGEST_BLOCK, ConversationResult, ExportResult, IngestResult, PagingResult


@dataclass
class SegmentResult:
    key: str
    title: str
    members: int
    hand: dict[str, Timing]  # shape → timing
    compiled: Timing
    graphql_count: Timing | None = None
    # The compiled SQL again, run in the same rounds as the GraphQL count (the machine's drift hits both).
    paired_compiled: Timing | None = None
    raw_page: Timing | None = None
    graphql_page: Timing | None = None
    duckdb: Timing | None = None
    counts: dict[str, int] = field(default_factory=dict)  # who → count, to check they agree
    compiled_sql: str = ""
    compiled_plan: str = ""
    hand_sql: str = ""
    hand_plan: str = ""
    page_plan: str = ""
    page_ids: tuple[int, ...] = ()  # the first page's members, to check that stores agree

    @property
    def graphql_overhead_ms(self) -> float | None:
        """What the GraphQL count took beyond the compiled SQL run beside it."""
        if self.graphql_count is None:
            return None
        return self.graphql_count.ms - (self.paired_compiled or self.compiled).ms

    @property
    def best_shape(self) -> str:
        return min(self.hand, key=lambda shape: self.hand[shape].median)

    @property
    def best(self) -> Timing:
        return self.hand[self.best_shape]


@dataclass
class GrowthRow:
    events: int
    days: int
    compiled: dict[str, float]  # segment key → ms
    hand: dict[str, float]


@dataclass
class Results:
    command: str
    store: dict[str, Any]
    segments: list[SegmentResult] = field(default_factory=list)
    paging: PagingResult | None = None
    exports: list[ExportResult] = field(default_factory=list)
    ingest: IngestResult | None = None
    conversations: list[ConversationResult] = field(default_factory=list)
    growth: list[GrowthRow] = field(default_factory=list)
    graphql_floor: Timing | None = None  # `{ __typename }` over the same transport
    wake_cost: Timing | None = None  # measure.wake_cost: the machine's cost of waking idle threads
    graphql_transport: str = "HTTP to a `segmentql serve` (uvicorn) subprocess on 127.0.0.1, httpx keep-alive client"
    notes: list[str] = field(default_factory=list)
    # The same parts on a PostgreSQL copy of the store (`--store postgresql`), and how that copy was made.
    postgres: Results | None = None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "—"


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        memory = 0
    versions = ", ".join(f"{name} {_version(name)}" for name in (
        "SQLAlchemy", "aiosqlite", "strawberry-graphql", "graphql-core", "uvicorn", "orjson", "duckdb"))
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; {platform.platform()}; "
            f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; {versions}")


def _ms(timing: Timing | None) -> str:
    if timing is None:
        return "—"
    ms = timing.ms
    return f"{ms:.2f}" if ms < 10 else f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def _count(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def segment_table(results: Results) -> list[str]:
    lines = [
        "| segment | members | best hand-written SQL (shape) | compiled SQL | compiled ÷ hand | DuckDB "
        "| GraphQL count | GraphQL − compiled | page 1000: compiled SQL | page 1000: GraphQL | counts agree |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for s in results.segments:
        agree = len(set(s.counts.values())) == 1
        overhead = s.graphql_overhead_ms
        extra = f"{overhead:+.1f}" if overhead is not None else "—"
        lines.append(
            f"| {s.title} | {s.members:,} | {_ms(s.best)} ({s.best_shape}) | {_ms(s.compiled)} "
            f"| {_ratio(s.compiled.median, s.best.median)} | {_ms(s.duckdb)} | {_ms(s.graphql_count)} | {extra} "
            f"| {_ms(s.raw_page)} | {_ms(s.graphql_page)} | {_mark(agree)} |")
    return lines


def other_tables(results: Results) -> list[str]:
    lines: list[str] = []
    if results.paging:
        p = results.paging
        rate = p.members / p.graphql.median
        lines += [
            "", f"### Paging: {p.audience} ({p.members:,} members, pages of 1000; "
            f"median of {len(p.graphql.runs)} after a warm-up)",
            "", "| path | seconds | profiles/s | GraphQL ÷ this |", "|---|--:|--:|--:|",
            f"| GraphQL `profiles(filter, first: 1000, after)` {{nodes {{id email firstName lastName}} pageInfo}} | "
            f"{p.graphql.median:.2f} | {rate:,.0f} | 1.00× |",
            f"| raw: the statements the server runs (density probe, pages in the shape it picks) on {p.driver} + orjson | "
            f"{p.raw_pages.median:.2f} "
            f"| {p.members / p.raw_pages.median:,.0f} | {_ratio(p.graphql.median, p.raw_pages.median)} |",
            f"| raw: one SELECT of all members + orjson (the limit) | {p.raw_single.median:.2f} "
            f"| {p.members / p.raw_single.median:,.0f} | {_ratio(p.graphql.median, p.raw_single.median)} |",
            f"| raw: hand-written pages (profiles from the cursor, EXISTS per profile) + orjson | {p.raw_exists.median:.2f} "
            f"| {p.members / p.raw_exists.median:,.0f} | {_ratio(p.graphql.median, p.raw_exists.median)} |",
        ]
    if results.exports:
        lines += ["", "### CSV export (`GET /segments/{id}/members.csv`, server in a subprocess)", "",
                  "| audience | rows | = Segment.count | rows/s (median) | server RssAnon before → peak "
                  "| server VmHWM before → after |",
                  "|---|--:|:-:|--:|--:|--:|"]
        for e in results.exports:
            lines.append(
                f"| {e.label} | {e.rows:,} | {_mark(e.rows == e.count)} | {e.rows_per_s:,.0f} "
                f"| {e.rss_anon_before / 1024:.0f} → {e.rss_anon_peak / 1024:.0f} MiB "
                f"(+{(e.rss_anon_peak - e.rss_anon_before) / 1024:.0f}) "
                f"| {e.hwm_before / 1024:.0f} → {e.hwm_after / 1024:.0f} MiB |")
    if results.ingest:
        i = results.ingest
        lines += ["", f"### Ingest ({i.events:,} events in batches of 1000 into a copy of the store, after a warm-up "
                  f"batch; each side sends blocks of {INGEST_BLOCK} batches back to back, in turn, raw checkpointing "
                  f"off the clock)", "",
                  "| path | events/s | median batch | ÷ raw |", "|---|--:|--:|--:|",
                  f"| `trackEvents` over HTTP (profiles by email, dedupe by uniqueId) | {i.events / i.graphql_seconds:,.0f} "
                  f"| {sorted(i.graphql_batches)[len(i.graphql_batches) // 2] * 1000:.1f} ms "
                  f"| {i.raw_seconds / i.graphql_seconds:.2f} |",
                  f"| raw sqlite3 executemany, one transaction per batch | {i.events / i.raw_seconds:,.0f} "
                  f"| {sorted(i.raw_batches)[len(i.raw_batches) // 2] * 1000:.1f} ms | 1.00 |"]
    if results.conversations:
        total = results.conversations[0].total
        lines += ["", f"### Conversations (`conversations` over HTTP; {total:,} in the store; medians after a warm-up)", "",
                  "| page | ms |", "|---|--:|"]
        lines += [f"| {c.label} | {c.timing.ms:,.1f} |" for c in results.conversations]
    if results.growth:
        lines += ["", "### Growth of audience latency (compiled count SQL, ms; hand-written best in brackets)", "",
                  *growth_table(results.growth)]
    return lines


def growth_table(sizes: list[GrowthRow], versus: list[GrowthRow] | None = None) -> list[str]:
    """Compiled [best hand-written] ms per segment and size; with `versus` (SQLite's rows), ÷ its compiled too."""
    against = {g.events: g for g in versus or []}
    lines = ["| segment | " + " | ".join(f"{_count(g.events)} events ({g.days} d)" for g in sizes)
             + f" | latency × vs events × ({sizes[-1].events / sizes[0].events:.1f}×) |",
             "|---|" + "--:|" * (len(sizes) + 1)]
    for key in sizes[0].compiled:
        cells = []
        for g in sizes:
            lite = against.get(g.events)
            ratio = f" ({_ratio(g.compiled[key], lite.compiled[key])})" if lite and key in lite.compiled else ""
            cells.append(f"{g.compiled[key]:,.2f} [{g.hand[key]:,.2f}]{ratio}")
        growth = sizes[-1].compiled[key] / sizes[0].compiled[key] if sizes[0].compiled[key] else 0
        lines.append(f"| {key} | {' | '.join(cells)} | {growth:.1f}× |")
    return lines


def goals(results: Results) -> list[str]:
    lines = ["", "### Goals", ""]
    if results.segments:
        worst = max(results.segments, key=lambda s: s.compiled.median / s.best.median)
        ratio = worst.compiled.median / worst.best.median
        lines.append(f"- compiled SQL ≤ 1.2× best hand-written for every segment: {_mark(ratio <= 1.2)} "
                     f"(worst {ratio:.2f}×, {worst.key})")
        ducked = [s for s in results.segments if s.duckdb]
        if ducked:
            slower = [s.key for s in ducked if s.duckdb and s.compiled.median >= s.duckdb.median]
            lines.append(f"- compiled SQL faster than DuckDB: {_mark(not slower)} "
                         f"({len(ducked) - len(slower)}/{len(ducked)}; slower on: {', '.join(slower) or 'none'})")
        counted = [s for s in results.segments if s.graphql_count]
        if counted:
            over = max(counted, key=lambda s: s.graphql_overhead_ms or 0)
            extra = over.graphql_overhead_ms or 0
            lines.append(f"- GraphQL count ≤ compiled SQL + 5 ms: {_mark(extra <= 5)} (worst +{extra:.1f} ms, {over.key})")
    if results.paging:
        p = results.paging
        rate = p.members / p.graphql.median
        lines.append(f"- paging ≥ 50,000 profiles/s: {_mark(rate >= 50_000)} ({rate:,.0f}/s); "
                     f"≤ 2× raw+orjson: {_mark(p.graphql.median <= 2 * p.raw_single.median)} vs one SELECT "
                     f"({p.graphql.median / p.raw_single.median:.1f}×), "
                     f"{_mark(p.graphql.median <= 2 * p.raw_pages.median)} vs the same pages "
                     f"({p.graphql.median / p.raw_pages.median:.1f}×)")
    if results.exports:
        slowest = min(results.exports, key=lambda e: e.rows_per_s)
        growth = [(e.rss_anon_peak - e.rss_anon_before) / 1024 for e in results.exports]
        lines.append(f"- export ≥ 200,000 rows/s: {_mark(slowest.rows_per_s >= 200_000)} "
                     f"(slowest {slowest.rows_per_s:,.0f}/s, {slowest.label}); flat peak memory: RssAnon growth during "
                     f"the export {', '.join(f'{g:+.0f} MiB' for g in growth)}")
    if results.ingest:
        i = results.ingest
        rate = i.events / i.graphql_seconds
        lines.append(f"- ingest ≥ 20,000 events/s: {_mark(rate >= 20_000)} ({rate:,.0f}/s); ≥ 1/3 of raw executemany: "
                     f"{_mark(i.raw_seconds / i.graphql_seconds >= 1 / 3)} ({i.raw_seconds / i.graphql_seconds:.2f})")
    if len(results.growth) > 1:
        lines.append(growth_goal(results.growth))
    return lines


def growth_goal(sizes: list[GrowthRow]) -> str:
    """Whether the compiled counts' latency grew at most as the events did, from the first size to the last."""
    first, last = sizes[0], sizes[-1]
    factor = last.events / first.events
    worst_key = max(first.compiled, key=lambda k: last.compiled[k] / first.compiled[k] if first.compiled[k] else 0)
    worst = last.compiled[worst_key] / first.compiled[worst_key]
    return (f"- latency growth ≤ linear {_count(first.events)} → {_count(last.events)} events: "
            f"{_mark(worst <= factor)} (worst {worst:.1f}× for {factor:.1f}× events, {worst_key})")


def plans(results: Results) -> list[str]:
    lines = ["", "## Query plans (EXPLAIN QUERY PLAN on the bench store)", ""]
    for s in results.segments:
        lines += [f"### {s.title}", "", f"Compiled count statement ({_ms(s.compiled)} ms):", "", "```sql",
                  s.compiled_sql.strip(), "```", "", "```", s.compiled_plan, "```", "",
                  "Hand-written shapes: " + "; ".join(f"{shape} {_ms(t)} ms" for shape, t in s.hand.items()) + ".", "",
                  f"Best hand-written ({s.best_shape}, {_ms(s.best)} ms):", "", "```sql", s.hand_sql.strip(), "```", "",
                  "```", s.hand_plan, "```", ""]
        if s.page_plan:
            lines += ["First page of 1000 (compiled page statement):", "", "```", s.page_plan, "```", ""]
    return lines


def render(results: Results) -> str:
    store = results.store
    head = [
        "# SegmentQL benchmark results", "",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: {machine()}  ",
        f"Command: `{results.command}`  ",
        f"Store: SQLite, {store['profiles']:,} profiles, {store['events']:,} events over {store['days']} days "
        f"(seed.py's generator, seed {store['seed']}, data ending {store['end']}; evaluated as of that instant); "
        f"{store['size_mib']:,.0f} MiB; {store['built']}  ",
        f"GraphQL: {results.graphql_transport}"
        + (f"; the floor, `{{ __typename }}`, takes {_ms(results.graphql_floor)} ms" if results.graphql_floor else "")
        + (f"; a loopback request answered after a worker thread's 10 ms wait takes {_ms(results.wake_cost)} ms beyond "
           "the wait (`measure.wake_cost`: no SegmentQL code, only waking idle threads, as a GraphQL count does "
           "around each of its two reads)  " if results.wake_cost else "  "),
        "Times: medians after a warm-up (segments: 5 runs; paging, export: see each table). Times in ms unless noted. "
        "Other work shared the 2 cores: compare ratios more than absolute figures.", "",
        "## Reference segments (count of the audience)", "",
        "Best hand-written = the fastest of the hand-written shapes in bench/segments.py (metric ids bound as "
        "parameters); compiled SQL = `count_statement(FilterCompiler(...).audience(ast))` run raw on the same sqlite3 "
        "connection; GraphQL count = `segment(id) { count(asOf) }` of the saved segment, over HTTP, timed in rounds "
        "with the compiled SQL (15 each), and GraphQL − compiled is the difference of those paired medians; "
        "page 1000 = the first page of members (`page_statement`, limit 1001, on sqlite3 / "
        "`profiles(filter, first: 1000)` over HTTP); DuckDB = the "
        "same data in memory (`duckdb` from the `bench` extra).", "",
    ]
    body = head + segment_table(results) + other_tables(results) + goals(results)
    if results.notes:
        body += ["", "### Notes", "", *(f"- {note}" for note in results.notes)]
    postgres = postgres_section(results)
    if results.postgres is not None:
        postgres += ["", "### PostgreSQL plans (EXPLAIN ANALYZE)", *plans(results.postgres)[2:]]
    return "\n".join(body + postgres + plans(results)) + "\n"


def postgres_section(results: Results) -> list[str]:
    """SQLite and PostgreSQL side by side: every part the PostgreSQL run measured, and the goals for PostgreSQL."""
    pg = results.postgres
    if pg is None:
        return []
    lines = ["", "## SQLite and PostgreSQL side by side", "",
             f"PostgreSQL: {pg.store.get('server', '?')}; the same data bulk-loaded (COPY) from the SQLite store "
             f"({pg.store.get('built', '')}), derived tables rebuilt, VACUUM ANALYZE; statements compiled by the store's "
             "PostgreSQL dialect and run raw on one asyncpg connection (jit off, as the store's); hand-written "
             "PostgreSQL = the fastest of each segment's `postgres` shapes in bench/segments.py; GraphQL, paging, "
             "exports and conversations through a `segmentql serve` over that database"
             + (f" (its floor, `{{ __typename }}`, {_ms(pg.graphql_floor)} ms)" if pg.graphql_floor else "")
             + ". PG ÷ SQLite compares times (below 1: PostgreSQL is faster), or rates where a table gives rows/s.", ""]
    lines += _pg_segments(results, pg)
    if pg.paging:
        lines += _pg_paging(results.paging, pg.paging)
    if pg.exports:
        lines += _pg_exports(results.exports, pg.exports)
    if pg.conversations:
        lines += _pg_conversations(results.conversations, pg.conversations)
    if pg.ingest:
        lines += _pg_ingest(results.ingest, pg.ingest)
    if pg.growth:
        lines += ["", "### Growth on PostgreSQL (compiled count SQL, ms; hand-written best PostgreSQL in brackets; "
                  "PG ÷ SQLite compiled in parentheses)", "", *growth_table(pg.growth, results.growth)]
        if len(pg.growth) > 1:
            lines += ["", growth_goal(pg.growth)]
    if pg.notes:
        lines += ["", "PostgreSQL notes:", "", *(f"- {note}" for note in pg.notes)]
    return lines


def _pg_segments(results: Results, pg: Results) -> list[str]:
    if not pg.segments:
        return []
    lines = ["| segment | members | SQLite compiled | PG compiled | PG ÷ SQLite | PG best hand-written (shape) "
             "| PG compiled ÷ hand | SQLite page 1000 | PG page 1000 | PG ÷ SQLite | PG GraphQL count | counts and pages agree |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|"]
    by_key = {r.key: r for r in results.segments}
    worst_hand = worst_count = worst_page = 0.0
    for r in pg.segments:
        lite = by_key.get(r.key)
        agree = (lite is not None and r.members == lite.members and all(v == r.members for v in r.counts.values())
                 and r.page_ids == lite.page_ids)
        hand_ratio = r.compiled.median / r.best.median
        worst_hand = max(worst_hand, hand_ratio)
        count_ratio = r.compiled.median / lite.compiled.median if lite else 0.0
        page_ratio = (r.raw_page.median / lite.raw_page.median) if lite and lite.raw_page and r.raw_page else 0.0
        worst_count, worst_page = max(worst_count, count_ratio), max(worst_page, page_ratio)
        lines.append(
            f"| {r.title} | {_count(r.members)} | {_ms(lite.compiled if lite else None)} | {_ms(r.compiled)} "
            f"| {count_ratio:.2f}× | {_ms(r.best)} ({r.best_shape}) | {hand_ratio:.2f}× "
            f"| {_ms(lite.raw_page if lite else None)} | {_ms(r.raw_page)} | {page_ratio:.2f}× "
            f"| {_ms(r.graphql_count)} | {_mark(agree)} |")
    return [
        *lines, "", "Goals (issue 20):", "",
        f"- PostgreSQL compiled ≤ 1.2× the best hand-written PostgreSQL: {_mark(worst_hand <= 1.2)} "
        f"(worst {worst_hand:.2f}×)",
        f"- PostgreSQL count ≤ 1.5× SQLite's: {_mark(worst_count <= 1.5)} (worst {worst_count:.2f}×); first page: "
        f"{_mark(worst_page <= 1.5)} (worst {worst_page:.2f}×)"]


def _seconds(timing: Timing | None) -> str:
    return "—" if timing is None else f"{timing.median:.2f}"


def _times(pg: Timing, lite: Timing | None) -> str:
    """PG ÷ SQLite of two medians, or — when SQLite's side was not measured."""
    return _ratio(pg.median, lite.median) if lite else "—"


def _pg_paging(lite: PagingResult | None, p: PagingResult) -> list[str]:
    paths = [("GraphQL `profiles(filter, first: 1000, after)`", p.graphql, lite.graphql if lite else None),
             ("raw: the statements the server runs (density probe, pages in the shape it picks) + orjson",
              p.raw_pages, lite.raw_pages if lite else None),
             ("raw: one SELECT of all members + orjson (the limit)", p.raw_single, lite.raw_single if lite else None),
             ("raw: hand-written pages (profiles from the cursor, EXISTS per profile) + orjson",
              p.raw_exists, lite.raw_exists if lite else None)]
    lines = ["", f"### Paging on PostgreSQL: {p.audience} ({p.members:,} members, pages of 1000; median of "
             f"{len(p.graphql.runs)} after a warm-up; raw sides on {p.driver}"
             + (f", SQLite's on {lite.driver})" if lite else ")"), "",
             "| path | SQLite s | PG s | PG ÷ SQLite | PG profiles/s | PG GraphQL ÷ this |", "|---|--:|--:|--:|--:|--:|"]
    for label, timing, lite_timing in paths:
        lines.append(f"| {label} | {_seconds(lite_timing)} | {timing.median:.2f} | {_times(timing, lite_timing)} "
                     f"| {p.members / timing.median:,.0f} | {_ratio(p.graphql.median, timing.median)} |")
    rate = p.members / p.graphql.median
    lines += ["", f"- paging on PostgreSQL ≥ 50,000 profiles/s (SQLite's goal): {_mark(rate >= 50_000)} ({rate:,.0f}/s); "
              f"≤ 2× raw+orjson: {_mark(p.graphql.median <= 2 * p.raw_single.median)} vs one SELECT "
              f"({p.graphql.median / p.raw_single.median:.1f}×), {_mark(p.graphql.median <= 2 * p.raw_pages.median)} "
              f"vs the same pages ({p.graphql.median / p.raw_pages.median:.1f}×)"]
    if lite and lite.members != p.members:
        lines.append(f"- ✗ the stores page different audiences: SQLite {lite.members:,}, PostgreSQL {p.members:,}")
    return lines


def _pg_exports(lite: list[ExportResult], exports: list[ExportResult]) -> list[str]:
    by_label = {e.label: e for e in lite}
    lines = ["", "### CSV export on PostgreSQL (`GET /segments/{id}/members.csv`, server in a subprocess)", "",
             "| audience | rows | = Segment.count | SQLite rows/s | PG rows/s | PG ÷ SQLite (rate) "
             "| PG server RssAnon before → peak | PG server VmHWM before → after |",
             "|---|--:|:-:|--:|--:|--:|--:|--:|"]
    for e in exports:
        other = by_label.get(e.label)
        lines.append(
            f"| {e.label} | {e.rows:,} | {_mark(e.rows == e.count)} | {f'{other.rows_per_s:,.0f}' if other else '—'} "
            f"| {e.rows_per_s:,.0f} | {_ratio(e.rows_per_s, other.rows_per_s) if other else '—'} "
            f"| {e.rss_anon_before / 1024:.0f} → {e.rss_anon_peak / 1024:.0f} MiB "
            f"(+{(e.rss_anon_peak - e.rss_anon_before) / 1024:.0f}) | {e.hwm_before / 1024:.0f} → {e.hwm_after / 1024:.0f} MiB |")
    slowest = min(exports, key=lambda e: e.rows_per_s)
    growth = [(e.rss_anon_peak - e.rss_anon_before) / 1024 for e in exports]
    lines += ["", f"- export on PostgreSQL ≥ 200,000 rows/s (SQLite's goal): {_mark(slowest.rows_per_s >= 200_000)} "
              f"(slowest {slowest.rows_per_s:,.0f}/s, {slowest.label}); RssAnon growth during the export "
              f"{', '.join(f'{g:+.0f} MiB' for g in growth)}"]
    return lines


def _pg_conversations(lite: list[ConversationResult], pg: list[ConversationResult]) -> list[str]:
    by_label = {c.label: c for c in lite}
    lines = ["", f"### Conversations on PostgreSQL ({pg[0].total:,} in the database; medians after a warm-up)", "",
             "| page | SQLite ms | PG ms | PG ÷ SQLite |", "|---|--:|--:|--:|"]
    for c in pg:
        other = by_label.get(c.label)
        lines.append(f"| {c.label} | {_ms(other.timing if other else None)} | {_ms(c.timing)} "
                     f"| {_times(c.timing, other.timing if other else None)} |")
    return lines


def _pg_ingest(lite: IngestResult | None, i: IngestResult) -> list[str]:
    rate, copy = i.events / i.graphql_seconds, i.events / i.raw_seconds
    lines = ["", f"### Ingest on PostgreSQL ({i.events:,} events in batches of 1000 into a copy of the database)", "",
             "| path | events/s | median batch | ÷ raw COPY |", "|---|--:|--:|--:|",
             f"| `trackEvents` over HTTP | {rate:,.0f} | {statistics.median(i.graphql_batches) * 1000:.1f} ms "
             f"| {rate / copy:.2f} |",
             f"| raw asyncpg COPY, one transaction per batch | {copy:,.0f} "
             f"| {statistics.median(i.raw_batches) * 1000:.1f} ms | 1.00 |", "",
             f"- `trackEvents` on PostgreSQL ≥ 0.5 of raw COPY: {_mark(rate / copy >= 0.5)} ({rate / copy:.2f})"]
    if lite:
        sqlite_rate = lite.events / lite.graphql_seconds
        lines.append(f"- ≥ 0.8 of SQLite's `trackEvents` in the same run: {_mark(rate / sqlite_rate >= 0.8)} "
                     f"({rate:,.0f} vs {sqlite_rate:,.0f}/s: {rate / sqlite_rate:.2f})")
    return lines


def console(results: Results) -> str:
    """The tables without the plans, for the terminal."""
    floor = [f"GraphQL floor (`{{ __typename }}` over HTTP): {_ms(results.graphql_floor)} ms", ""]
    if results.graphql_floor is None:
        floor = []
    return "\n".join(floor + segment_table(results) + other_tables(results) + goals(results) + postgres_section(results))
