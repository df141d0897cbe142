"""Why and when on the bench store: explainMembership, a page of audience changes beside a page of members,
and one profile's membership over 180 days, each over GraphQL (the app in this process, over ASGI).

    python bench/why_and_when.py --store bench/data/store-p200000-e5000000-s1-f3efc6a1.db

The store is the one bench/run.py builds (data ending 2026-01-01, evaluated as of then). Prints figures
only; bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.app import create_app  # noqa: E402
from server.config import Settings  # noqa: E402
from store.engine import Store  # noqa: E402

AS_OF = "2026-01-01T00:00:00+00:00"
SINCE = "2025-12-31T00:00:00+00:00"
RECOMMENDED = "Received Product Recommendation from Customer Agent"
# Five conditions: the drop-off question, narrowed.
FIVE = {"and": [
    {"did": {"metric": RECOMMENDED, "within": {"lastDays": 30}, "notFollowedBy": {"metric": "Placed Order", "withinHours": 48}}},
    {"did": {"metric": "Viewed Product", "count": {"atLeast": 2}, "within": {"lastDays": 30}}},
    {"didNot": {"metric": "Conversation with Customer Agent Escalated", "within": {"lastDays": 30}}},
    {"did": {"metric": "Started Conversation with Customer Agent",
             "where": [{"property": "channel", "op": "EQ", "value": "SMS"}]}},
    {"not": {"profile": {"property": "email", "op": "STARTS_WITH", "value": "vip"}}},
]}
VIEWED = {"did": {"metric": "Viewed Product", "within": {"lastDays": 30}}}  # about 113,000 members

MEMBERS = "query($f: SegmentFilter, $a: DateTime) { profiles(filter: $f, asOf: $a, first: 1000) { nodes { id email } } }"
CHANGES = """query($f: SegmentFilter!, $s: DateTime!, $a: DateTime) {
  audienceChanges(filter: $f, since: $s, asOf: $a, first: 1000) { edges { change node { id email } } }
}"""
EXPLAIN = """query($p: ID!, $f: SegmentFilter!, $a: DateTime) {
  explainMembership(profile: $p, filter: $f, asOf: $a) {
    member root { holds children { kind holds count windowStart windowEnd events { id occurredAt } value } }
  }
}"""
MEMBERSHIP = """query($p: ID!, $f: SegmentFilter!, $from: DateTime!, $to: DateTime) {
  profile(id: $p) { membership(filter: $f, from: $from, to: $to) { from to } }
}"""


async def median_ms(ask: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await ask()  # warm-up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        await ask()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True, help="the bench store (a SQLite file bench/run.py built)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    url = f"sqlite+aiosqlite:///{Path(args.store).resolve()}"
    store = Store(url)
    app = create_app(Settings(database_url=url), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as http:

        async def ask(query: str, **variables: Any) -> dict[str, Any]:
            body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
            assert "errors" not in body, body["errors"]
            return body["data"]  # type: ignore[no-any-return]

        members = (await ask(MEMBERS, f=FIVE, a=AS_OF))["profiles"]["nodes"]
        member = members[0]["id"]
        other = str(int(member) + 1)
        print(f"5-condition filter: {len(members)} members in the first page; explaining profiles {member} and {other}")
        for profile in (member, other):
            ms = await median_ms(lambda p=profile: ask(EXPLAIN, p=p, f=FIVE, a=AS_OF), args.repeat)
            print(f"explainMembership, 5 conditions, profile {profile}: {ms:.1f} ms")
            ms = await median_ms(lambda p=profile: ask(MEMBERSHIP, p=p, f=FIVE, **{"from": "2025-07-05T00:00:00Z"}, to=AS_OF),
                                 args.repeat)
            found = (await ask(MEMBERSHIP, p=profile, f=FIVE, **{"from": "2025-07-05T00:00:00Z"}, to=AS_OF))
            print(f"membership over 180 days, 5 conditions, profile {profile}: {ms:.1f} ms "
                  f"({len(found['profile']['membership'])} intervals)")
        changes = (await ask(CHANGES, f=VIEWED, s=SINCE, a=AS_OF))["audienceChanges"]["edges"]
        page = await median_ms(lambda: ask(MEMBERS, f=VIEWED, a=AS_OF), args.repeat)
        changed = await median_ms(lambda: ask(CHANGES, f=VIEWED, s=SINCE, a=AS_OF), args.repeat)
        print(f"viewed a product in 30 days: first page of 1000 members {page:.1f} ms; first page of changes since "
              f"the day before ({len(changes)} changes) {changed:.1f} ms: {changed / page:.2f}×")
    await store.dispose()


if __name__ == "__main__":
    asyncio.run(main())
