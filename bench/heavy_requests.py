"""The heaviest legal segment requests against a real server on the demo data, and /healthz meanwhile.

    python bench/heavy_requests.py [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Builds chains of saved segments that name the one before along many paths (the shapes of
tests/test_segment_chains.py), then times each chain's count, first page, CSV export and explain
while a thread polls /healthz every 10 ms, and prints the slowest /healthz answer during each.
Prints figures only; bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seed  # noqa: E402
from store.engine import Store  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402
from tests.stores import create_database, drop_database  # noqa: E402

SAVE = "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"
COUNT = "query($id: ID!) { segment(id: $id) { count } }"
PAGE = "query($f: SegmentFilter!) { profiles(filter: $f, first: 1000) { nodes { id } } }"
EXPLAIN = "query($f: SegmentFilter!) { explain(filter: $f) }"
METRICS = ["Placed Order", "Viewed Product", "Conversation with Customer Agent Escalated"]

Link = Callable[[str, int], dict[str, Any]]


def doubling(previous: str, link: int) -> dict[str, Any]:
    return {"or": [{"inSegment": previous}, {"inSegment": previous},
                   {"did": {"metric": METRICS[link % 3], "within": {"lastDays": link}}}]}


def doubling_deeper(previous: str, link: int) -> dict[str, Any]:
    return {"or": [{"inSegment": previous}, {"and": [{"inSegment": previous}, {"did": {"metric": METRICS[link % 3]}}]}]}


def double_negation(previous: str, _link: int) -> dict[str, Any]:
    return {"not": {"not": {"inSegment": previous}}}


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=600)

    def data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = self.http.post("/graphql", json={"query": query, "variables": variables}).json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]  # type: ignore[no-any-return]

    def save(self, filter: dict[str, Any]) -> str:
        return str(self.data(SAVE, {"input": {"name": uuid.uuid4().hex[:8], "filter": filter}})["createSegment"]["id"])


def chain(client: Client, link: Link, links: int) -> str:
    last = client.save({"did": {"metric": "Placed Order", "within": {"lastDays": 7}}})
    for n in range(1, links + 1):
        last = client.save(link(last, n))
    return last


def diamonds(client: Client, levels: int) -> str:
    below = client.save({"did": {"metric": "Placed Order", "within": {"lastDays": 30}}})
    for _ in range(levels):
        sides = [client.save({"and": [{"inSegment": below}, {"did": {"metric": metric}}]}) for metric in METRICS[1:]]
        below = client.save({"or": [{"inSegment": side} for side in sides]})
    return below


class HealthProbe:
    """Polls /healthz every 10 ms in a thread; `slowest` is the longest answer since `start`."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.times: list[float] = []
        self._running = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._running = False
        assert self._thread is not None
        self._thread.join()

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while self._running:
                started = time.perf_counter()
                http.get("/healthz")
                self.times.append(time.perf_counter() - started)
                time.sleep(0.01)


def measure(server: ServerProcess, client: Client, segment_id: str) -> dict[str, float]:
    """Seconds of each request on the segment, and the slowest /healthz answer while they ran (ms)."""
    filter = {"inSegment": segment_id}
    timings: dict[str, float] = {}
    with HealthProbe(server.base) as probe:
        for name, run in (
            ("count", lambda: client.data(COUNT, {"id": segment_id})),
            ("first page", lambda: client.data(PAGE, {"f": filter})),
            ("export", lambda: client.http.get(f"/segments/{segment_id}/members.csv").raise_for_status()),
            ("explain", lambda: client.data(EXPLAIN, {"f": filter})),
        ):
            started = time.perf_counter()
            run()
            timings[name] = time.perf_counter() - started
    timings["healthz max ms"] = max(probe.times) * 1000 if probe.times else float("nan")
    timings["healthz median ms"] = statistics.median(probe.times) * 1000 if probe.times else float("nan")
    return timings


def run_store(name: str, url: str) -> None:
    async def seeded() -> None:
        store = Store(url)
        await seed.seed_store(store)
        await store.dispose()

    asyncio.run(seeded())
    server = ServerProcess(url, env={"SEGMENTQL_GRAPHIQL": "0"})
    try:
        client = Client(server.base)
        cases: list[tuple[str, Callable[[], str]]] = [
            ("20 links, each naming the one before twice", lambda: chain(client, doubling, 20)),
            ("15 links of or(P, and(P, did))", lambda: chain(client, doubling_deeper, 15)),
            ("15 links of not(not(P))", lambda: chain(client, double_negation, 15)),
            ("8 levels of diamonds (2^8 paths)", lambda: diamonds(client, 8)),
        ]
        print(f"\n{name}: seconds per request, and /healthz meanwhile")
        print(f"{'chain':<46} {'count':>7} {'page':>7} {'export':>7} {'explain':>8} {'hz max':>7} {'hz med':>7}")
        for title, build in cases:
            t = measure(server, client, build())
            print(f"{title:<46} {t['count']:>7.3f} {t['first page']:>7.3f} {t['export']:>7.3f} {t['explain']:>8.3f} "
                  f"{t['healthz max ms']:>6.1f}  {t['healthz median ms']:>6.1f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres-url", help="a PostgreSQL server to create a scratch database on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run_store("SQLite", f"sqlite+aiosqlite:///{Path(directory) / 'heavy.db'}")
    if args.postgres_url:
        name = f"heavy_{uuid.uuid4().hex[:8]}"
        url = asyncio.run(create_database(args.postgres_url, name))
        try:
            run_store("PostgreSQL", url)
        finally:
            asyncio.run(drop_database(args.postgres_url, name))


if __name__ == "__main__":
    main()
