"""Load test: concurrent ingest and audience reads against `segmentql serve --workers N`, then an audit.

    python bench/load.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --seconds 60

Starts the real server (loopback only) on a fresh PostgreSQL schema (or a new SQLite file), runs
writers that send trackEvents batches with unique ids and readers that ask for audiences, for a
bounded time; then checks that every acknowledged event is stored exactly once and nothing else is.
Prints throughput and latency percentiles; exits 1 when the audit fails or any request errored.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server_process import ServerProcess  # noqa: E402
from tests.stores import create_database, drop_database  # noqa: E402

TRACK = "mutation($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted duplicates } }"
AUDIENCES = [
    '{ profiles(filter: {did: {metric: "Placed Order", within: {lastHours: 1}}}, first: 100) { totalCount nodes { id } } }',
    '{ profiles(filter: {didNot: {metric: "Placed Order", where: [{property: "channel", op: EQ, value: "SMS"}]}}) '
    "{ totalCount } }",
    '{ profiles(filter: {expression: "did \\"Viewed Product\\" at least 2 times in the last 1 hours"}) { totalCount } }',
]


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)
    write_latencies: list[float] = field(default_factory=list)
    read_latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def writer(client: httpx.AsyncClient, number: int, deadline: float, batch: int, tally: Tally) -> None:
    sent = 0
    while time.monotonic() < deadline:
        ids = [f"load-{number}-{sent + i}" for i in range(batch)]
        events = [{
            "metric": "Placed Order" if i % 3 else "Viewed Product",
            "profile": {"email": f"shopper{(number * 7919 + sent + i) % 5000}@load.test"},
            "properties": {"channel": "SMS" if i % 2 else "Web Chat", "total": i},
            "uniqueId": uid,
        } for i, uid in enumerate(ids)]
        started = time.perf_counter()
        try:
            response = await client.post("/graphql", json={"query": TRACK, "variables": {"e": events}})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            tally.errors.append(f"writer {number}: {error!r}")  # not acknowledged: may or may not be stored
            continue
        finally:
            sent += batch
        tally.write_latencies.append(time.perf_counter() - started)
        if response.status_code == 200 and not body.get("errors"):
            tally.acknowledged.extend(ids)
        else:
            tally.errors.append(f"writer {number}: {response.status_code} {body.get('errors')}")


async def reader(client: httpx.AsyncClient, number: int, deadline: float, tally: Tally) -> None:
    turn = number
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = await client.post("/graphql", json={"query": AUDIENCES[turn % len(AUDIENCES)]})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            tally.errors.append(f"reader {number}: {error!r}")
            continue
        tally.read_latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or body.get("errors"):
            tally.errors.append(f"reader {number}: {response.status_code} {body.get('errors')}")
        turn += 1


async def audit(url: str, acknowledged: list[str]) -> tuple[int, int, int]:
    """(acknowledged events stored, stored load events, stored events with a repeated unique id)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            stored = (await connection.execute(
                sa.text("SELECT unique_id FROM events WHERE unique_id LIKE 'load-%'"))).scalars().all()
    finally:
        await engine.dispose()
    repeated = len(stored) - len(set(stored))
    return len(set(acknowledged) & set(stored)), len(stored), repeated


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))] * 1000 if values else float("nan")


async def run(args: argparse.Namespace) -> int:
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'load.db'}"
    database = f"segmentql_load_{uuid.uuid4().hex[:10]}" if url.startswith("postgresql") else None
    # On PostgreSQL, a database of its own, dropped afterwards.
    server_url = await create_database(url, database) if database else url
    server = ServerProcess(server_url, workers=args.workers)
    base = server.base
    tally = Tally()
    try:
        deadline = time.monotonic() + args.seconds
        limits = httpx.Limits(max_connections=args.writers + args.readers)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            await asyncio.gather(
                *(writer(client, n, deadline, args.batch, tally) for n in range(args.writers)),
                *(reader(client, n, deadline, tally) for n in range(args.readers)),
            )
    finally:
        server.stop()
    stored_acknowledged, stored, repeated = await audit(server_url, tally.acknowledged)
    if database:
        await drop_database(url, database)
    store = "PostgreSQL" if database else "SQLite"
    print(f"{store}, {args.workers} workers, {args.writers} writers + {args.readers} readers, {args.seconds:g} s")
    print(f"  acknowledged events {len(tally.acknowledged):,} ({len(tally.acknowledged) / args.seconds:,.0f}/s), "
          f"stored {stored:,}, acknowledged and stored {stored_acknowledged:,}, stored twice {repeated}")
    print(f"  trackEvents batch of {args.batch}: p50 {percentile(tally.write_latencies, 0.5):.1f} ms, "
          f"p99 {percentile(tally.write_latencies, 0.99):.1f} ms")
    print(f"  audience reads {len(tally.read_latencies):,}: p50 {percentile(tally.read_latencies, 0.5):.1f} ms, "
          f"p99 {percentile(tally.read_latencies, 0.99):.1f} ms, "
          f"mean {statistics.fmean(tally.read_latencies) * 1000 if tally.read_latencies else float('nan'):.1f} ms")
    print(f"  errors {len(tally.errors)}" + (f": {tally.errors[:3]}" if tally.errors else ""))
    exact = stored_acknowledged == len(tally.acknowledged) and repeated == 0
    # An unacknowledged batch (a client-side error) may or may not have landed; with no errors, none exist.
    complete = stored == len(tally.acknowledged) or bool(tally.errors)
    ok = exact and complete and not tally.errors
    print("  audit:", "every acknowledged event stored exactly once" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
