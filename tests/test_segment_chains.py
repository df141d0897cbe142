"""Saved segments that refer to each other along many paths: compiled once each, held to the limits.

A chain whose every link names the one before twice has 2^n paths to its first link; its SQL must
grow with the number of links (each segment a named subquery), and its audience must equal the
reference evaluator's on both stores, through count, pages, export and explain.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, event, iso, track
from tests.reference import Event, Profile, World

SAVE = "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"
UPDATE = "mutation($id: ID!, $input: UpdateSegmentInput!) { updateSegment(id: $id, input: $input) { id } }"
ASK = """query($id: ID!, $f: SegmentFilter!, $asOf: DateTime) {
  segment(id: $id) { count(asOf: $asOf) }
  profiles(filter: $f, first: 1000, asOf: $asOf) { totalCount nodes { email } }
  explain(filter: $f, asOf: $asOf)
}"""
METRICS = ["Placed Order", "Viewed Product", "Opened Email"]


def world_events() -> list[Event]:
    """Twelve profiles, each with some of the metrics at some hours before AS_OF."""
    return [Event(f"p{i:02d}@x", metric, AS_OF - timedelta(hours=3 * i + j), {})
            for i in range(12) for j, metric in enumerate(METRICS) if (i + j) % 3 != 0 or i % 4 == 0]


async def stored_world(gql: GraphQLClient) -> World:
    happened = world_events()
    await track(gql, *(event(e.email, e.metric, iso(e.occurred_at)) for e in happened))
    emails = sorted({e.email for e in happened})
    return World([Profile(email, {"email": email}, {}) for email in emails], happened)


async def save(gql: GraphQLClient, world: World, filter: dict[str, Any]) -> str:
    segment_id: str = (await gql.data(SAVE, {"input": {"name": f"link {len(world.segments)}", "filter": filter}}))[
        "createSegment"]["id"]
    world.segments[segment_id] = filter
    return segment_id


def doubling(previous: str, link: int) -> dict[str, Any]:
    """A link naming the one before twice, one level deeper: or(P, P and did M), as an or of three."""
    return {"or": [{"inSegment": previous}, {"inSegment": previous},
                   {"did": {"metric": METRICS[link % 3], "within": {"lastHours": 6 + link}}}]}


def doubling_deeper(previous: str, link: int) -> dict[str, Any]:
    """or(P, and(P, did M)): two levels a link."""
    return {"or": [{"inSegment": previous}, {"and": [{"inSegment": previous}, {"did": {"metric": METRICS[link % 3]}}]}]}


def double_negation(previous: str, link: int) -> dict[str, Any]:
    return {"not": {"not": {"inSegment": previous}}}


async def chain(gql: GraphQLClient, world: World, link: Any, links: int) -> str:
    last = await save(gql, world, {"did": {"metric": "Placed Order", "within": {"lastHours": 20}}})
    for n in range(1, links + 1):
        last = await save(gql, world, link(last, n))
    return last


async def check_audience(client: httpx.AsyncClient, gql: GraphQLClient, world: World, segment_id: str) -> None:
    """Count, members, export and explain of the chain's last link, against the reference."""
    expected = world.members({"inSegment": segment_id}, AS_OF)
    assert 0 < len(expected) < len(world.profiles)  # the chain splits the profiles
    answer = await gql.data(ASK, {"id": segment_id, "f": {"inSegment": segment_id}, "asOf": iso(AS_OF)})
    assert answer["segment"]["count"] == answer["profiles"]["totalCount"] == len(expected)
    assert [node["email"] for node in answer["profiles"]["nodes"]] == expected
    # Linear in the links: without named subqueries 20 links of two paths each wrote megabytes.
    assert len(answer["explain"]) < 100_000
    exported = await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(AS_OF)})
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert [row[1] for row in rows[1:]] == expected


async def health_meanwhile(client: httpx.AsyncClient, work: Awaitable[None]) -> list[int]:
    """Run `work`, asking /healthz again and again meanwhile: the statuses of the answers that came before it ended."""
    running = asyncio.ensure_future(work)
    answered = []
    while not running.done():
        status = (await client.get("/healthz")).status_code
        if not running.done():
            answered.append(status)
        await asyncio.sleep(0.002)
    await running
    return answered


@pytest.mark.parametrize(("link", "links"), [(doubling, 20), (doubling_deeper, 15), (double_negation, 15)])
async def test_a_chain_of_segments_is_compiled_once_per_segment(
    client: httpx.AsyncClient, gql: GraphQLClient, link: Any, links: int
) -> None:
    world = await stored_world(gql)
    last = await chain(gql, world, link, links)
    # The server goes on answering while it compiles and reads the chain: compiling never holds the event loop.
    answered = await health_meanwhile(client, check_audience(client, gql, world, last))
    assert answered and set(answered) == {200}, answered


@pytest.mark.parametrize("link", [doubling_deeper, double_negation])
async def test_a_link_past_the_nesting_limit_is_refused_with_its_path(gql: GraphQLClient, link: Any) -> None:
    """Two levels a link: the 16th would nest 33 levels once its segments are expanded."""
    world = await stored_world(gql)
    last = await chain(gql, world, link, 15)
    error = await gql.error(SAVE, {"input": {"name": "too deep", "filter": link(last, 16)}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["inputPath"] == ["input", "filter"]
    assert "nests 33 levels: at most 32" in error["message"]


async def test_an_update_that_pushes_a_segment_using_it_past_the_limits_is_refused(gql: GraphQLClient) -> None:
    world = await stored_world(gql)
    first = await save(gql, world, {"did": {"metric": "Placed Order"}})
    last = first
    for n in range(1, 16):
        last = await save(gql, world, doubling_deeper(last, n))
    # The first link two levels deeper would make the last one nest 33 levels.
    deeper = {"and": [{"and": [{"did": {"metric": "Placed Order"}}]}]}
    error = await gql.error(UPDATE, {"id": first, "input": {"filter": deeper}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["inputPath"] == ["input", "filter"]
    assert f"segment {last} (link 15), which uses this one," in error["message"]
    # Nothing was stored: the first link is as it was.
    assert (await gql.data("query($id: ID!) { segment(id: $id) { filter } }", {"id": first}))["segment"]["filter"] == {
        "did": {"metric": "Placed Order"}}


async def test_an_audience_past_the_conditions_limit_once_expanded_is_too_complex(gql: GraphQLClient) -> None:
    """Two segments of 101 conditions each: each is within the limit, the two together are not."""
    world = await stored_world(gql)
    wide = {"or": [{"did": {"metric": "Placed Order", "within": {"lastHours": hours}}} for hours in range(1, 102)]}
    one, other = await save(gql, world, wide), await save(gql, world, wide)
    error = await gql.error("query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }",
                            {"f": {"and": [{"inSegment": one}, {"inSegment": other}]}})
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "holds 204 conditions: at most 200" in error["message"]


async def diamonds(gql: GraphQLClient, world: World, levels: int) -> str:
    """Each level two segments naming the level below, and one naming both: 2^levels paths to the first."""
    below = await save(gql, world, {"did": {"metric": "Placed Order", "within": {"lastHours": 30}}})
    for _ in range(levels):
        sides = [await save(gql, world, {"and": [{"inSegment": below}, {"did": {"metric": metric}}]})
                 for metric in METRICS[1:]]
        below = await save(gql, world, {"or": [{"inSegment": side} for side in sides]})
    return below


async def test_segments_reached_along_many_paths_are_each_compiled_once(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    world = await stored_world(gql)
    await check_audience(client, gql, world, await diamonds(gql, world, 8))


async def test_sqlite_refuses_segments_reached_along_too_many_paths_where_postgresql_answers(
    client: httpx.AsyncClient, gql: GraphQLClient, store_kind: str
) -> None:
    """SQLite copies a named subquery into each of its uses while it parses: past a bound, QUERY_TOO_COMPLEX."""
    world = await stored_world(gql)
    top = await diamonds(gql, world, 12)
    if store_kind == "postgresql":
        await check_audience(client, gql, world, top)
        return
    error = await gql.error("query($id: ID!) { segment(id: $id) { count } }", {"id": top})
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "reached along 16378 paths; this store takes at most 2048" in error["message"]
    exported = await client.get(f"/segments/{top}/members.csv")
    assert exported.status_code == 400 and exported.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
