"""`segmentql serve --workers 2` in processes of its own, on a SQLite file and on a PostgreSQL database: both
workers start, concurrent clients on connections of their own get exact answers, and a stop ends both."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, TRACK, before, iso
from tests.server_process import ServerProcess
from vocabulary.agent_metrics import AGENT_METRICS

WORKERS = 2
AGENT_METRIC_NAMES = [metric.name for metric in AGENT_METRICS]
CLIENTS, BATCHES, BATCH = 8, 4, 25


async def started_workers(server: ServerProcess, timeout: float = 60) -> set[str]:
    """The worker processes' ids, once every worker has logged that it is ready."""
    deadline = time.monotonic() + timeout
    while server.log().count("Application startup complete.") < WORKERS:
        assert server.process.poll() is None, server.log()
        assert time.monotonic() < deadline, server.log()
        await asyncio.sleep(0.05)
    return set(re.findall(r"Started server process \[(\d+)\]", server.log()))


def batch(client: int, number: int) -> list[dict[str, Any]]:
    return [{"metric": "Placed Order" if i % 2 else "Viewed Product", "profile": {"email": f"c{client}-{i % 5}@x"},
             "occurredAt": before(minutes=number * BATCH + i), "properties": {"total": i},
             "uniqueId": f"c{client}-b{number}-{i}"} for i in range(BATCH)]


async def test_serve_with_two_workers(store_url: str, tmp_path: Path) -> None:
    server = ServerProcess(store_url, workers=WORKERS, log=tmp_path / "server.log")
    try:
        workers = await started_workers(server)
        assert len(workers) == WORKERS and str(server.pid) not in workers

        async def client(number: int) -> list[dict[str, Any]]:
            """Batches, each replayed, each batch on a connection of its own (which either worker may accept)."""
            answers = []
            for b in range(BATCHES):
                async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                    events = batch(number, b)
                    for _ in range(2):
                        response = await http.post("/graphql", json={"query": TRACK, "variables": {"events": events}})
                        assert response.status_code == 200, response.text
                        answers.append(response.json())
            return answers

        answers = [answer for answers in await asyncio.gather(*(client(c) for c in range(CLIENTS))) for answer in answers]
        assert answers == [{"data": {"trackEvents": {"accepted": BATCH, "duplicates": 0}}},
                           {"data": {"trackEvents": {"accepted": 0, "duplicates": BATCH}}}] * (CLIENTS * BATCHES)

        segment = {"name": "Big orders", "filter": {"did": {"metric": "Placed Order", "where": [
            {"property": "total", "op": "GTE", "value": 20}]}}}
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            created = await GraphQLClient(http).data(
                "mutation($s: CreateSegmentInput!) { createSegment(input: $s) { id } }", {"s": segment})
        assert created == {"createSegment": {"id": "1"}}

        async def read() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                return await GraphQLClient(http).data(
                    'query($a: DateTime) { metrics { name count uniqueProfiles } profiles(first: 1) { totalCount } '
                    'segment(id: "1") { name count(asOf: $a) } }', {"a": iso(AS_OF)})

        # Whichever worker answers, it reads the one store: the same exact figures every time.
        reads = await asyncio.gather(*(read() for _ in range(4 * WORKERS)))
        sent = [e for c in range(CLIENTS) for b in range(BATCHES) for e in batch(c, b)]

        def figures(metric: str) -> dict[str, Any]:
            of_metric = [e for e in sent if e["metric"] == metric]
            return {"name": metric, "count": len(of_metric), "uniqueProfiles": len({e["profile"]["email"] for e in of_metric})}

        big_orders = {e["profile"]["email"] for e in sent if e["metric"] == "Placed Order" and e["properties"]["total"] >= 20}
        expected = {
            "metrics": {m["name"]: m for m in (*map(figures, AGENT_METRIC_NAMES), figures("Placed Order"),
                                                 figures("Viewed Product"))},
            "profiles": {"totalCount": len({e["profile"]["email"] for e in sent})},
            "segment": {"name": "Big orders", "count": len(big_orders)},
        }
        assert expected["profiles"]["totalCount"] == 5 * CLIENTS and len(big_orders) == 2 * CLIENTS  # c*-1 and c*-3
        reads = [{**r, "metrics": {m["name"]: m for m in r["metrics"]}} for r in reads]
        assert reads == [expected] * len(reads)
    finally:
        server.stop()
    assert server.process.returncode == 0
    log = server.log()
    # The parent stopped each worker, and each finished cleanly before the parent exited.
    assert all(f"Terminated child process [{pid}]" in log and f"Finished server process [{pid}]" in log for pid in workers)
