"""Reliability of ingest: concurrent batches creating the same new profiles, a server SIGKILLed mid-stream,
and a soak of writers and readers against a real `segmentql serve` process on a SQLite file.

SEGMENTQL_SOAK_SECONDS sets the soak's duration (default 10 s here; docs/security.md has a 20 s run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from server.store import Store
from tests.conftest import GraphQLClient
from tests.helpers import RECOMMENDED_NAME, STARTED_NAME, TRACK, before
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
SOAK_SECONDS = float(os.environ.get("SEGMENTQL_SOAK_SECONDS", "10"))
KILL_ROUNDS = 3
KILL_BATCH = 200


def batch_events(batch_id: str, size: int, profiles: str) -> list[dict[str, Any]]:
    """`size` events with uniqueIds `{batch_id}-{i}` over ten profiles named by `profiles` (new the first time)."""
    events = []
    for i in range(size):
        metric = (STARTED_NAME, "Placed Order", RECOMMENDED_NAME, "Viewed Product")[i % 4]
        properties: dict[str, Any] = {"conversation_id": f"{batch_id}-c{i // 4}", "channel": ("SMS", "Web")[i % 2]}
        if metric == RECOMMENDED_NAME:
            properties["products"] = [f"SKU-{i % 7}"]
        events.append({"metric": metric, "profile": {"email": f"{profiles}-{i % 10}@example.com"},
                       "occurredAt": before(minutes=i), "properties": properties, "uniqueId": f"{batch_id}-{i}"})
    return events


async def test_concurrent_batches_creating_the_same_profiles_all_succeed(gql: GraphQLClient, store: Store) -> None:
    """Every batch names the same ten new profiles: on SQLite BEGIN IMMEDIATE serialises them, on
    PostgreSQL the loser of a unique-index race retries and finds the winner's rows."""
    for round_ in range(3):
        batches = [batch_events(f"r{round_}-b{b}", 40, f"new{round_}") for b in range(8)]
        answers = await asyncio.gather(*(gql(TRACK, {"events": batch}) for batch in batches))
        assert [a.get("errors") for a in answers] == [None] * 8, answers
        assert all(a["data"]["trackEvents"] == {"accepted": 40, "duplicates": 0} for a in answers)
        replays = await asyncio.gather(*(gql(TRACK, {"events": batch}) for batch in batches[:4]))
        assert all(r["data"]["trackEvents"] == {"accepted": 0, "duplicates": 40} for r in replays)
    counts = await gql.data("{ profiles(first: 1) { totalCount } metrics { count } }")
    assert counts["profiles"]["totalCount"] == 30
    assert sum(metric["count"] for metric in counts["metrics"]) == 3 * 8 * 40


# ---------------------------------------------------------------- a real server process


def start(database: Path, log: Path) -> ServerProcess:
    return ServerProcess(f"sqlite+aiosqlite:///{database}", env={"SEGMENTQL_KEY_CACHE_SECONDS": "2"}, log=log)


@contextlib.contextmanager
def serving(database: Path, log: Path) -> Iterator[ServerProcess]:
    server = start(database, log)
    try:
        yield server
    finally:
        server.stop()


def stored_unique_ids(database: Path) -> Counter[str]:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return Counter(row[0] for row in connection.execute("SELECT unique_id FROM events"))


@dataclass
class Tally:
    sent: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def stream_until_killed(server: ServerProcess, round_: int, tally: Tally, senders: int = 4) -> None:
    """Senders post batches one after another; the server is SIGKILLed while some are in flight."""
    async def sender(s: int) -> None:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for n in range(10_000):
                batch_id = f"k{round_}-s{s}-b{n}"
                tally.sent.append(batch_id)
                try:
                    response = await http.post("/graphql", json={
                        "query": TRACK, "variables": {"events": batch_events(batch_id, KILL_BATCH, f"kill{n % 5}")}})
                except httpx.HTTPError:
                    return  # the server is gone: this batch is unacknowledged
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
                assert body["data"]["trackEvents"]["accepted"] == KILL_BATCH
                tally.acknowledged.append(batch_id)

    async def killer() -> None:
        while len(tally.acknowledged) < 8 * (round_ + 1) + 3 * round_:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.037 * (round_ + 1))  # land somewhere inside the next batches
        await asyncio.to_thread(server.kill)

    await asyncio.gather(killer(), *(sender(s) for s in range(senders)))


async def test_sigkill_mid_stream_keeps_every_acknowledged_batch_and_no_partial_one(tmp_path: Path) -> None:
    database, log = tmp_path / "kill.db", tmp_path / "server.log"
    tally = Tally()
    for round_ in range(KILL_ROUNDS):
        server = start(database, log)
        try:
            await stream_until_killed(server, round_, tally)
        finally:
            server.stop()
        assert server.process.returncode == -signal.SIGKILL
    with serving(database, log) as server:  # restarted on the same file: recovery, then it answers
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            gql = GraphQLClient(http)
            counted = await gql.data("{ metrics { count } }")
    stored = stored_unique_ids(database)
    assert max(stored.values()) == 1  # no event twice
    by_batch = Counter(unique_id.rsplit("-", 1)[0] for unique_id in stored)
    assert sum(metric["count"] for metric in counted["metrics"]) == sum(by_batch.values())
    partial = {batch: n for batch, n in by_batch.items() if n != KILL_BATCH}
    assert partial == {}, partial  # each batch is all there or not there at all
    missing = [batch for batch in tally.acknowledged if batch not in by_batch]
    assert missing == []  # every acknowledged batch survived the kill
    unacknowledged = set(tally.sent) - set(tally.acknowledged)
    committed_unacknowledged = unacknowledged & set(by_batch)
    print(f"\nkill test: {KILL_ROUNDS} SIGKILLs, {len(tally.sent)} batches sent, {len(tally.acknowledged)} acknowledged, "
          f"{len(unacknowledged)} in flight at a kill ({len(committed_unacknowledged)} of them committed whole, "
          f"the rest absent), {sum(by_batch.values())} events stored, 0 partial batches, 0 acknowledged lost")
    assert "serving openly, to loopback clients only" in server.log()


async def test_soak_of_writers_and_readers_on_sqlite(tmp_path: Path) -> None:
    database, log = tmp_path / "soak.db", tmp_path / "server.log"
    url = f"sqlite+aiosqlite:///{database}"
    created = subprocess.run([sys.executable, "-m", "server.cli", "keys", "create", "--name", "soak", "--scope", "read",
                              "track", "--database-url", url], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    acknowledged: list[str] = []
    errors: list[str] = []
    reads = Counter[str]()
    writes = 0
    with serving(database, log) as server:
        deadline = time.monotonic() + SOAK_SECONDS

        async def writer(w: int, http: httpx.AsyncClient) -> None:
            nonlocal writes
            n = 0
            while time.monotonic() < deadline:
                batch_id = f"w{w}-n{n}"
                # Writers at the same step name the same ten new profiles: they race to create them.
                events = batch_events(batch_id, 50, f"soak{n}")
                try:
                    response = await http.post("/graphql", json={"query": TRACK, "variables": {"events": events}})
                    body = response.json()
                    if response.status_code != 200 or "errors" in body or body["data"]["trackEvents"]["accepted"] != 50:
                        errors.append(f"write {batch_id}: {response.status_code} {body}")
                    else:
                        acknowledged.extend(e["uniqueId"] for e in events)
                        writes += 1
                except httpx.HTTPError as error:
                    errors.append(f"write {batch_id}: {error!r}")
                n += 1

        queries = {
            "audience": ('query { profiles(first: 20, filter: {did: {metric: "Placed Order", within: {lastDays: 7}}}) '
                         "{ totalCount nodes { id email } } }"),
            "feed": "query { events(first: 20) { nodes { id metric occurredAt } } }",
            "conversations": "query { conversations(first: 10) { totalCount nodes { id status channel } } }",
            "metrics": "query { metrics { name count } }",
        }

        async def reader(r: int, http: httpx.AsyncClient) -> None:
            names = list(queries)
            i = r
            while time.monotonic() < deadline:
                name = names[i % len(names)]
                i += 1
                try:
                    response = await http.post("/graphql", json={"query": queries[name]})
                    body = response.json()
                    if response.status_code != 200 or "errors" in body:
                        errors.append(f"read {name}: {response.status_code} {body}")
                    reads[name] += 1
                except httpx.HTTPError as error:
                    errors.append(f"read {name}: {error!r}")

        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.base, timeout=60, headers=headers, limits=limits) as http:
            await asyncio.gather(*(writer(w, http) for w in range(8)), *(reader(r, http) for r in range(4)))
            denied = await http.post("/graphql", json={"query": 'mutation { deleteSegment(id: "1") }'})
            assert denied.status_code == 403  # the key had read and track only
    assert errors == [], errors[:5]
    stored = stored_unique_ids(database)
    assert all(count == 1 for count in stored.values())
    assert set(stored) == set(acknowledged) and len(stored) == len(acknowledged)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        profiles = connection.execute("SELECT count(*), count(DISTINCT email) FROM profiles").fetchone()
    assert profiles[0] == profiles[1]
    print(f"\nsoak: {SOAK_SECONDS:g} s, 8 writers and 4 readers against `segmentql serve` on SQLite: {writes} batches, "
          f"{len(acknowledged)} events acknowledged and stored exactly once, {profiles[0]} profiles, "
          f"{sum(reads.values())} reads ({dict(reads)}), {len(errors)} errors")
    assert "no API keys" not in server.log()

