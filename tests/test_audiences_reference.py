"""Audiences through the real request path against the reference evaluator.

Each example stores a random world through the API (upsertProfile, trackEvents), saves two random
segments (createSegment; the second may name the first), then asks random probes drawn from the world's
own data at an instant near its events: as the structured input, paged with keyset cursors, with
totalCount; as a saved segment's count; and as the text that segment prints, parsed back by the
server. Every answer must equal tests/reference.py's, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.config import Settings
from tests.audience_strategies import Vocabulary, as_of_instants, conditions, edge_conditions, filters, iso, worlds
from tests.conftest import GraphQLClient
from tests.probe_power import POWER_PROPERTY, Power
from tests.reference import World, parse_instant
from tests.stores import StoreFactory, store_params

UPSERT = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { email createdAt } }"
TRACK = "mutation($events: [TrackEventInput!]!) { trackEvents(events: $events) { accepted duplicates } }"
SAVE = """mutation($input: CreateSegmentInput!, $asOf: DateTime) {
  createSegment(input: $input) { id expression count(asOf: $asOf) }
}"""
PAGE = """query($filter: SegmentFilter, $asOf: DateTime, $first: Int, $after: String) {
  profiles(filter: $filter, asOf: $asOf, first: $first, after: $after) {
    totalCount nodes { email } pageInfo { hasNextPage endCursor }
  }
}"""


async def store_world(gql: GraphQLClient, world: World, batches: int) -> None:
    """Profiles one by one (each gets its own creation time), then the events in `batches` batches, in the
    world's order (not by time): a later batch may hold a profile's earlier event of a metric."""
    for profile in world.profiles:
        fields = {k: v for k, v in profile.fields.items() if v is not None}
        data = await gql.data(UPSERT, {"input": {**fields, "properties": profile.properties}})
        profile.created_at = parse_instant(data["upsertProfile"]["createdAt"])
    size = max(1, -(-len(world.events) // batches))
    for start in range(0, len(world.events), size):
        batch = [{"metric": e.metric, "profile": {"email": e.email}, "occurredAt": iso(e.occurred_at),
                  "properties": e.properties} for e in world.events[start:start + size]]
        tracked = (await gql.data(TRACK, {"events": batch}))["trackEvents"]
        assert tracked == {"accepted": len(batch), "duplicates": 0}


async def paged_audience(gql: GraphQLClient, filter: dict[str, Any], as_of: datetime, first: int) -> tuple[list[str], int]:
    """Every member's email, page after page, and totalCount (the same on every page)."""
    emails: list[str] = []
    totals = set()
    after = None
    while True:
        page = (await gql.data(PAGE, {"filter": filter, "asOf": iso(as_of), "first": first, "after": after}))["profiles"]
        totals.add(page["totalCount"])
        emails.extend(node["email"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["endCursor"] != after, "a page ended where the one before it did"  # else: no end
        after = page["pageInfo"]["endCursor"]
    assert len(totals) == 1, totals
    return emails, totals.pop()


async def save(gql: GraphQLClient, name: str, filter: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    return (await gql.data(SAVE, {"input": {"name": name, "filter": filter}, "asOf": iso(as_of)}))["createSegment"]  # type: ignore[no-any-return]


async def examine(
    factory: StoreFactory, world: World, data: st.DataObject, power: Power, singles: Power, edges: Power
) -> None:
    store = await factory.create()
    app = create_app(Settings(database_url=store.url), store=store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            await store_world(gql, world, data.draw(st.integers(1, 3), label="event batches"))
            as_of = data.draw(as_of_instants(world), label="asOf")
            vocabulary = Vocabulary(world, as_of)
            for name in ("first", "second"):  # the second may name the first
                saved = data.draw(filters(vocabulary), label=f"{name} saved segment")
                segment = await save(gql, name, saved, as_of)
                world.segments[segment["id"]] = saved
                vocabulary.segment_ids = list(world.segments)
                assert segment["count"] == len(world.members(saved, as_of)), saved
            probes = data.draw(st.lists(filters(vocabulary), min_size=1, max_size=4), label="probes")
            page_size = data.draw(st.integers(1, 4), label="page size")
            for probe in probes:
                expected = world.members(probe, as_of)
                power.record(world, probe, as_of)
                assert await paged_audience(gql, probe, as_of, page_size) == (expected, len(expected)), probe
                # The text form: the server prints the filter, and parses the text back.
                twin = await save(gql, "probe", probe, as_of)
                assert twin["count"] == len(expected), probe
                text = {"expression": twin["expression"]}
                assert await paged_audience(gql, text, as_of, 1000) == (expected, len(expected)), twin["expression"]
            # Single conditions, many and cheap (one request each: every member and totalCount).
            for condition in data.draw(st.lists(conditions(vocabulary), min_size=4, max_size=10), label="conditions"):
                expected = world.members(condition, as_of)
                singles.record(world, condition, as_of)
                assert await paged_audience(gql, condition, as_of, 1000) == (expected, len(expected)), condition
            # Conditions on an edge (a window's, a wait's, a JSON type's), pinned to the count of the profile there;
            # those with a window also as the text their saved segment prints, which must keep its instants whole.
            for condition in data.draw(st.lists(edge_conditions(vocabulary), min_size=5, max_size=9), label="edges"):
                expected = world.members(condition, as_of)
                edges.record(world, condition, as_of)
                assert await paged_audience(gql, condition, as_of, 1000) == (expected, len(expected)), condition
                if "within" in condition.get("did", {}):
                    twin = await save(gql, "edge", condition, as_of)
                    assert twin["count"] == len(expected), condition
                    text = {"expression": twin["expression"]}
                    assert await paged_audience(gql, text, as_of, 1000) == (expected, len(expected)), twin["expression"]
    finally:
        await store.dispose()


@pytest.mark.parametrize("kind", store_params())
def test_audiences_through_the_api_equal_reference(
    kind: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    power = Power(f"audiences through the API on {kind}")
    singles = Power(f"single conditions on {kind} (not steered to split: shown, not held to a share)")
    edges = Power(f"conditions on an edge, pinned to one profile's count, on {kind} (shown)")
    factory = StoreFactory(kind, tmp_path)
    with asyncio.Runner() as runner:

        @settings(max_examples=settings.default.max_examples * 2, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(world=worlds(), data=st.data())
        def check(world: World, data: st.DataObject) -> None:
            runner.run(examine(factory, world, data, power, singles, edges))

        try:
            check()
        finally:
            runner.run(factory.drop_all())
    report = power.report()
    # The power is part of the result: tests/conftest.py prints it at the end of the run, from any worker.
    record_property(POWER_PROPERTY, f"{report}\n{singles.report()}\n{edges.report()}")
    assert not power.weak_kinds(), report
