"""Reliability of ingest: concurrent batches creating the same new profiles, a server SIGKILLed mid-stream,
and a soak of writers and readers against a real `segmentql serve` process, on a SQLite file and on a
PostgreSQL database of its own.

SEGMENTQL_SOAK_SECONDS sets the soak's duration (default 10 s here; docs/security.md has a 20 s run); the
soak runs at least that long and until every writer and reader has done its minimum of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import RECOMMENDED_NAME, STARTED_NAME, TRACK, before
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
SOAK_SECONDS = float(os.environ.get("SEGMENTQL_SOAK_SECONDS", "10"))
KILL_ROUNDS = 3
KILL_BATCH = 200
KILL_SENDERS = 4
# The soak's minimum of work, whatever its duration: batches each writer has acknowledged, reads each reader has done.
SOAK_WRITERS, SOAK_READERS, SOAK_BATCH = 8, 4, 50
MIN_WRITES_EACH, MIN_READS_EACH = 5, 8


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


def start(url: str, log: Path) -> ServerProcess:
    return ServerProcess(url, env={"SEGMENTQL_KEY_CACHE_SECONDS": "2"}, log=log)


@contextlib.contextmanager
def serving(url: str, log: Path) -> Iterator[ServerProcess]:
    server = start(url, log)
    try:
        yield server
    finally:
        server.stop()


async def stored(url: str, query: str) -> list[Any]:
    """Rows of `query` read straight from the store (not through the server)."""
    store = Store(url)
    try:
        async with store.connect() as connection:
            return [tuple(row) for row in (await connection.execute(sa.text(query))).all()]
    finally:
        await store.dispose()


async def stored_unique_ids(url: str) -> Counter[str]:
    return Counter(row[0] for row in await stored(url, "SELECT unique_id FROM events"))


@dataclass
class Tally:
    sent: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acknowledged_by_round: Counter[int] = field(default_factory=Counter)


def kill_after(round_: int) -> int:
    """Batches the server acknowledges in round `round_` before that round's kill."""
    return 8 + 3 * round_


async def stream_until_killed(server: ServerProcess, round_: int, tally: Tally, senders: int = KILL_SENDERS) -> None:
    """Senders post batches one after another; the server is SIGKILLed while some are in flight."""
    killed = asyncio.Event()

    async def sender(s: int) -> None:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            for n in range(10_000):
                batch_id = f"k{round_}-s{s}-b{n}"
                tally.sent.append(batch_id)
                try:
                    response = await http.post("/graphql", json={
                        "query": TRACK, "variables": {"events": batch_events(batch_id, KILL_BATCH, f"kill{n % 5}")}})
                except httpx.HTTPError:
                    assert killed.is_set(), f"{batch_id} failed before the kill"
                    return  # the server is gone: this batch is unacknowledged
                body = response.json()
                assert response.status_code == 200 and "errors" not in body, body
                assert body["data"]["trackEvents"]["accepted"] == KILL_BATCH
                tally.acknowledged.append(batch_id)
                tally.acknowledged_by_round[round_] += 1
        raise AssertionError("the server was never killed")

    async def killer() -> None:
        deadline = time.monotonic() + 120
        while tally.acknowledged_by_round[round_] < kill_after(round_):
            assert time.monotonic() < deadline, f"round {round_}: {tally.acknowledged_by_round[round_]} batches acknowledged"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.037 * (round_ + 1))  # land somewhere inside the next batches
        killed.set()
        await asyncio.to_thread(server.kill)

    await asyncio.gather(killer(), *(sender(s) for s in range(senders)))


async def test_sigkill_mid_stream_keeps_every_acknowledged_batch_and_no_partial_one(store_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    tally = Tally()
    for round_ in range(KILL_ROUNDS):
        server = start(store_url, log)
        try:
            await stream_until_killed(server, round_, tally)
        finally:
            server.stop()
        assert server.process.returncode == -signal.SIGKILL
        # Work done before each kill: at least the batches the killer waited for.
        assert tally.acknowledged_by_round[round_] >= kill_after(round_)
    with serving(store_url, log) as server:  # restarted on the same store: recovery, then it answers
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            gql = GraphQLClient(http)
            counted = await gql.data("{ metrics { count } }")
    stored_ids = await stored_unique_ids(store_url)
    assert max(stored_ids.values()) == 1  # no event twice
    by_batch = Counter(unique_id.rsplit("-", 1)[0] for unique_id in stored_ids)
    assert sum(metric["count"] for metric in counted["metrics"]) == sum(by_batch.values())
    partial = {batch: n for batch, n in by_batch.items() if n != KILL_BATCH}
    assert partial == {}, partial  # each batch is all there or not there at all
    missing = [batch for batch in tally.acknowledged if batch not in by_batch]
    assert missing == []  # every acknowledged batch survived the kill
    unacknowledged = set(tally.sent) - set(tally.acknowledged)
    committed_unacknowledged = unacknowledged & set(by_batch)
    # Every sender's stream ended at a kill, with a batch the server never answered.
    assert len(unacknowledged) >= KILL_ROUNDS * KILL_SENDERS
    assert len(tally.acknowledged) >= sum(map(kill_after, range(KILL_ROUNDS)))
    assert sum(by_batch.values()) >= KILL_BATCH * len(tally.acknowledged)
    print(f"\nkill test: {KILL_ROUNDS} SIGKILLs, {len(tally.sent)} batches sent, {len(tally.acknowledged)} acknowledged, "
          f"{len(unacknowledged)} in flight at a kill ({len(committed_unacknowledged)} of them committed whole, "
          f"the rest absent), {sum(by_batch.values())} events stored, 0 partial batches, 0 acknowledged lost")
    assert "serving openly, to loopback clients only" in server.log()


async def test_soak_of_writers_and_readers(store_url: str, store_kind: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    created = subprocess.run([sys.executable, "-m", "server.cli", "keys", "create", "--name", "soak", "--scope", "read",
                              "track", "--database-url", store_url], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    acknowledged: list[str] = []
    errors: list[str] = []
    reads = Counter[str]()
    writes_by_writer = Counter[int]()
    reads_by_reader = Counter[int]()
    writing = SOAK_WRITERS
    with serving(store_url, log) as server:
        deadline = time.monotonic() + SOAK_SECONDS

        async def writer(w: int, http: httpx.AsyncClient) -> None:
            nonlocal writing
            n = 0
            # At least SOAK_SECONDS, and at least MIN_WRITES_EACH attempts: a slow machine still soaks.
            while time.monotonic() < deadline or n < MIN_WRITES_EACH:
                batch_id = f"w{w}-n{n}"
                # Writers at the same step name the same ten new profiles: they race to create them.
                events = batch_events(batch_id, SOAK_BATCH, f"soak{n}")
                try:
                    response = await http.post("/graphql", json={"query": TRACK, "variables": {"events": events}})
                    body = response.json()
                    if (response.status_code != 200 or "errors" in body
                            or body["data"]["trackEvents"]["accepted"] != SOAK_BATCH):
                        errors.append(f"write {batch_id}: {response.status_code} {body}")
                    else:
                        acknowledged.extend(e["uniqueId"] for e in events)
                        writes_by_writer[w] += 1
                except httpx.HTTPError as error:
                    errors.append(f"write {batch_id}: {error!r}")
                n += 1
            writing -= 1

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
            # While the writers write, and at least MIN_READS_EACH reads.
            while writing > 0 or i - r < MIN_READS_EACH:
                name = names[i % len(names)]
                i += 1
                try:
                    response = await http.post("/graphql", json={"query": queries[name]})
                    body = response.json()
                    if response.status_code != 200 or "errors" in body:
                        errors.append(f"read {name}: {response.status_code} {body}")
                    else:
                        reads[name] += 1
                        reads_by_reader[r] += 1
                except httpx.HTTPError as error:
                    errors.append(f"read {name}: {error!r}")

        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.base, timeout=60, headers=headers, limits=limits) as http:
            await asyncio.gather(*(writer(w, http) for w in range(SOAK_WRITERS)),
                                 *(reader(r, http) for r in range(SOAK_READERS)))
            denied = await http.post("/graphql", json={"query": 'mutation { deleteSegment(id: "1") }'})
            assert denied.status_code == 403  # the key had read and track only
            counted = (await http.post("/graphql", json={"query": "{ metrics { count } }"})).json()["data"]
    assert errors == [], errors[:5]
    # The work done: every writer had batches acknowledged, every reader and every query answered, repeatedly.
    assert sorted(writes_by_writer) == list(range(SOAK_WRITERS))
    assert min(writes_by_writer.values()) >= MIN_WRITES_EACH
    assert sorted(reads_by_reader) == list(range(SOAK_READERS))
    assert min(reads_by_reader.values()) >= MIN_READS_EACH
    assert set(reads) == set(queries) and min(reads.values()) >= SOAK_READERS * MIN_READS_EACH // len(queries)
    writes = sum(writes_by_writer.values())
    assert len(acknowledged) == SOAK_BATCH * writes >= SOAK_BATCH * SOAK_WRITERS * MIN_WRITES_EACH
    stored_ids = await stored_unique_ids(store_url)
    assert all(count == 1 for count in stored_ids.values())
    assert set(stored_ids) == set(acknowledged) and len(stored_ids) == len(acknowledged)
    assert sum(metric["count"] for metric in counted["metrics"]) == len(acknowledged)
    ((profile_count, distinct_emails),) = await stored(store_url, "SELECT count(*), count(DISTINCT email) FROM profiles")
    assert profile_count == distinct_emails
    # Writers at step n name profiles soak{n}-0 … soak{n}-9; the steps reached are the longest writer's.
    steps = max(int(unique_id.split("-")[1][1:]) for unique_id in acknowledged) + 1
    assert profile_count == 10 * steps
    print(f"\nsoak: {SOAK_SECONDS:g} s, {SOAK_WRITERS} writers and {SOAK_READERS} readers against `segmentql serve` "
          f"on {store_kind}: {writes} batches, {len(acknowledged)} events acknowledged and stored exactly once, "
          f"{profile_count} profiles, {sum(reads.values())} reads ({dict(reads)}), {len(errors)} errors")
    assert "no API keys" not in server.log()
