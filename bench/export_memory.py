"""Export memory bench: the CSV export's server memory must not grow with the audience.

For each size N (default 20,000 and 200,000) it builds a SQLite store of N profiles with one
"Placed Order" each (bulk inserts, then the tables derived from the events), starts the real server
(`segmentql serve`) in a subprocess on a free loopback port, saves a segment "did Placed Order" over GraphQL, downloads
/segments/{id}/members.csv with httpx streaming and prints rows, rows/s and the server's memory:
VmHWM (peak RSS) from /proc/PID/status before and after the download, and the peak of RssAnon
(heap: Python objects, SQLite's page cache and temp b-trees) sampled every 5 ms during it, since
VmHWM also counts the store's pages that SQLite maps into memory (mmap_size), which grow with the
file rather than with what the server holds. It checks that the rows equal Segment.count at the
same asOf. Figures only: nothing here asserts on time.

    .venv/bin/python bench/export_memory.py [N ...]
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from build import derive_tables  # noqa: E402

from store import migrate  # noqa: E402
from store.engine import Store  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from vocabulary.agent_metrics import metric_key  # noqa: E402
from vocabulary.timestamps import MICROS_PER_DAY, format_datetime, now_utc, to_micros  # noqa: E402

METRIC = "Placed Order"
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee"]


def build_store(path: Path, n: int) -> None:
    """N profiles, one Placed Order each in the last 30 days, written with executemany in one transaction."""
    asyncio.run(_create_tables(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(n)
    now = to_micros(now_utc())
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO metrics (id, name, name_key) VALUES (1, ?, ?)", (METRIC, metric_key(METRIC)))
        db.executemany(
            "INSERT INTO profiles (id, email, phone_number, external_id, first_name, last_name, properties,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?)",
            ((i, f"shopper{i}@example.com", f"+1555{i:07d}", f"crm-{i}", rng.choice(FIRST), rng.choice(LAST),
              now - 60 * MICROS_PER_DAY, now - 60 * MICROS_PER_DAY) for i in range(1, n + 1)),
        )
        db.executemany(
            "INSERT INTO events (profile_id, metric_id, ts, channel, properties) VALUES (?, 1, ?, 'web', ?)",
            ((i, now - rng.randrange(30 * MICROS_PER_DAY), f'{{"total": {rng.randrange(5, 500)}}}')
             for i in range(1, n + 1)),
        )
    derive_tables(path)
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE")


async def _create_tables(url: str) -> None:
    store = Store(url)
    await migrate.prepare(store)
    await store.dispose()


def proc_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/PID/status (VmHWM, VmRSS, RssAnon, RssFile, …)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            figures[key] = int(value.split()[0])
    return figures


class AnonPeak(threading.Thread):
    """Samples the server's RssAnon until stopped; `peak` is the highest seen (kB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, proc_status(self.pid)["RssAnon"])
            time.sleep(0.005)


def start_server(db: Path | str) -> ServerProcess:
    """A server over the SQLite file `db`, or the store a URL `db` names."""
    url = db if isinstance(db, str) else f"sqlite+aiosqlite:///{db}"
    return ServerProcess(url, env={"SEGMENTQL_GRAPHIQL": "0"})


def graphql(base: str, query: str, variables: dict[str, object]) -> dict[str, object]:
    body = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=120).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]  # type: ignore[no-any-return]


def run(n: int, directory: Path) -> bool:
    db = directory / f"export-{n}.db"
    started = time.perf_counter()
    build_store(db, n)
    built = time.perf_counter() - started
    server = start_server(db)
    base = server.base
    try:
        created = graphql(base, 'mutation { createSegment(input: {name: "buyers", filter: {did: {metric: "Placed Order"}}})'
                                " { id } }", {})
        segment_id = created["createSegment"]["id"]  # type: ignore[index]
        as_of = format_datetime(now_utc())
        count = graphql(base, "query($id: ID!, $asOf: DateTime) { segment(id: $id) { count(asOf: $asOf) } }",
                        {"id": segment_id, "asOf": as_of})["segment"]["count"]  # type: ignore[index]
        before = proc_status(server.pid)
        sampler = AnonPeak(server.pid)
        sampler.start()
        lines = size = 0
        clock = time.perf_counter()
        with httpx.stream("GET", f"{base}/segments/{segment_id}/members.csv", params={"asOf": as_of},
                          timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")  # no field in this data holds a line break
                size += len(chunk)
        elapsed = time.perf_counter() - clock
        sampler.done.set()
        sampler.join()
        after = proc_status(server.pid)
    finally:
        server.stop()
    rows = lines - 1
    print(f"N={n:>7,}  store built in {built:5.1f} s ({db.stat().st_size / 2**20:5.1f} MiB)")
    print(f"  rows {rows:>7,}  Segment.count {count:>7,}  {'equal' if rows == count else 'DIFFERENT'}")
    print(f"  {size / 2**20:6.1f} MiB in {elapsed:5.2f} s  = {rows / elapsed:>9,.0f} rows/s")
    print(f"  server VmHWM: {before['VmHWM'] / 1024:6.1f} MiB before, {after['VmHWM'] / 1024:6.1f} MiB after"
          f" (+{(after['VmHWM'] - before['VmHWM']) / 1024:.1f})")
    print(f"  server RssAnon: {before['RssAnon'] / 1024:6.1f} MiB before, peak {sampler.peak / 1024:6.1f} MiB during"
          f" (+{(sampler.peak - before['RssAnon']) / 1024:.1f});  RssFile after {after['RssFile'] / 1024:.1f} MiB")
    return rows == count


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or [20_000, 200_000]
    with tempfile.TemporaryDirectory(prefix="segmentql-export-bench-") as directory:
        results = [run(n, Path(directory)) for n in sizes]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
