"""Audience changes: audienceChanges, Segment.changes, GET /segments/{id}/changes.ndjson and `segmentql changes`.

The property test stores a random world through the API, then asks for the changes of random filters
between two instants near its events, page after page with keyset cursors, and holds them to the set
differences of two `profiles` queries (and to the reference evaluator's), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.types.nodes import InlineFragment, SelectedField

from resolvers.audiences import Paging
from resolvers.page_plan import PagePolicy
from schema.types import edge_json
from server.app import create_app
from server.config import Settings
from store import migrate
from store.engine import Store
from tests.audience_strategies import Vocabulary, as_of_instants, filters, worlds
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, before, event, iso, run_cli, track
from tests.reference import World
from tests.stores import StoreFactory, store_params
from tests.test_audiences_reference import save, store_world

CHANGES = """query($filter: SegmentFilter!, $since: DateTime!, $asOf: DateTime, $first: Int, $after: String) {
  audienceChanges(filter: $filter, since: $since, asOf: $asOf, first: $first, after: $after) {
    totalCount entered exited
    edges { cursor change node { id email } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
SEGMENT_CHANGES = """query($id: ID!, $since: DateTime!, $asOf: DateTime, $first: Int, $after: String) {
  segment(id: $id) {
    changes(since: $since, asOf: $asOf, first: $first, after: $after) {
      totalCount entered exited
      edges { cursor change node { id email } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""
MEMBERS = """query($filter: SegmentFilter, $asOf: DateTime, $after: String) {
  profiles(filter: $filter, asOf: $asOf, first: 1000, after: $after) {
    nodes { id email } pageInfo { hasNextPage endCursor }
  }
}"""

Change = tuple[int, str, str]  # (profile id, email, ENTERED | EXITED)


async def members(gql: GraphQLClient, filter: dict[str, Any], as_of: datetime) -> dict[int, str]:
    """The `profiles` audience at `as_of`: email by id."""
    found: dict[int, str] = {}
    after = None
    while True:
        page = (await gql.data(MEMBERS, {"filter": filter, "asOf": iso(as_of), "after": after}))["profiles"]
        found.update((int(node["id"]), node["email"]) for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def differences(then: dict[int, str], now: dict[int, str]) -> list[Change]:
    entered = [(key, email, "ENTERED") for key, email in now.items() if key not in then]
    exited = [(key, email, "EXITED") for key, email in then.items() if key not in now]
    return sorted(entered + exited)


async def paged_changes(
    gql: GraphQLClient, variables: dict[str, Any], first: int, segment: bool = False
) -> tuple[list[Change], tuple[int, int, int]]:
    """Every change, page after page, and (totalCount, entered, exited), the same on every page."""
    found: list[Change] = []
    counts = set()
    after = None
    while True:
        data = await gql.data(SEGMENT_CHANGES if segment else CHANGES, {**variables, "first": first, "after": after})
        page = data["segment"]["changes"] if segment else data["audienceChanges"]
        counts.add((page["totalCount"], page["entered"], page["exited"]))
        edges = page["edges"]
        found += [(int(edge["node"]["id"]), edge["node"]["email"], edge["change"]) for edge in edges]
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if edges:
            assert (info["startCursor"], info["endCursor"]) == (edges[0]["cursor"], edges[-1]["cursor"])
        if not info["hasNextPage"]:
            break
        assert info["endCursor"] != after
        after = info["endCursor"]
    assert len(counts) == 1, counts
    return found, counts.pop()


def summary(changes: list[Change]) -> tuple[int, int, int]:
    entered = sum(1 for change in changes if change[2] == "ENTERED")
    return len(changes), entered, len(changes) - entered


async def examine(factory: StoreFactory, world: World, data: st.DataObject) -> None:
    store = await factory.create()
    # Pages of changes walk profiles always (density 0) or never unless a complement's (2): both shapes.
    policy = PagePolicy(walk_density=data.draw(st.sampled_from([0.0, 2.0]), label="walk density"))
    app = create_app(Settings(database_url=store.url), store=store, paging=Paging(policy=policy))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            await store_world(gql, world, data.draw(st.integers(1, 2), label="event batches"))
            first_instant = data.draw(as_of_instants(world), label="one instant")
            # Mostly a short while apart, as syncs are: few events between them, so that the profiles whose events
            # leave a window or end a wait meanwhile, not those with new events, make most of the changes.
            gap = data.draw(st.sampled_from([None, timedelta(minutes=30), timedelta(hours=1), timedelta(days=1)]), label="gap")
            other = first_instant + gap if gap else data.draw(as_of_instants(world).filter(lambda t: t != first_instant),
                                                              label="other instant")
            since, as_of = min(first_instant, other), max(first_instant, other)
            vocabulary = Vocabulary(world, as_of)
            saved = data.draw(filters(vocabulary), label="saved segment")
            segment = await save(gql, "synced", saved, as_of)
            world.segments[segment["id"]] = saved
            vocabulary.segment_ids = list(world.segments)
            probes = data.draw(st.lists(filters(vocabulary), min_size=1, max_size=3), label="probes")
            first = data.draw(st.integers(1, 3), label="page size")
            for probe in probes:
                expected = differences(await members(gql, probe, since), await members(gql, probe, as_of))
                # The reference agrees with both `profiles` queries (tests/test_audiences_reference.py checks
                # that at length): here it guards the instants' order.
                assert sorted(e for _, e, c in expected if c == "ENTERED") == sorted(
                    set(world.members(probe, as_of)) - set(world.members(probe, since)))
                variables = {"filter": probe, "since": iso(since), "asOf": iso(as_of)}
                assert await paged_changes(gql, variables, first) == (expected, summary(expected)), probe
            expected = differences(await members(gql, saved, since), await members(gql, saved, as_of))
            variables = {"id": segment["id"], "since": iso(since), "asOf": iso(as_of)}
            assert await paged_changes(gql, variables, first, segment=True) == (expected, summary(expected)), saved
            response = await http.get(f"/segments/{segment['id']}/changes.ndjson",
                                      params={"since": iso(since), "asOf": iso(as_of)})
            assert response.status_code == 200, response.text
            lines = [orjson.loads(line) for line in response.content.splitlines()]
            assert [(int(line["id"]), line["email"], line["change"].upper()) for line in lines] == expected
    finally:
        await store.dispose()


@pytest.mark.parametrize("kind", store_params())
def test_changes_equal_the_differences_of_two_audiences(kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(kind, tmp_path)
    with asyncio.Runner() as runner:

        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(world=worlds(), data=st.data())
        def check(world: World, data: st.DataObject) -> None:
            runner.run(examine(factory, world, data))

        try:
            check()
        finally:
            runner.run(factory.drop_all())


# ---------------------------------------------------------------- examples

RECENT_ORDER = {"did": {"metric": "Placed Order", "within": {"lastDays": 1}}}
CREATE = """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"""


async def two_days(gql: GraphQLClient) -> str:
    """ann ordered two days before AS_OF, bo one hour before it, cy both: a segment of who ordered in the last day."""
    await track(gql, event("ann@x", "Placed Order", before(days=2)), event("bo@x", "Placed Order", before(hours=1)),
                event("cy@x", "Placed Order", before(days=2)), event("cy@x", "Placed Order", before(hours=1)))
    data = await gql.data(CREATE, {"input": {"name": "ordered today", "filter": RECENT_ORDER}})
    return str(data["createSegment"]["id"])


async def test_changes_since_yesterday(gql: GraphQLClient) -> None:
    await two_days(gql)
    variables = {"filter": RECENT_ORDER, "since": iso(AS_OF - timedelta(days=1, hours=12)), "asOf": iso(AS_OF)}
    page = (await gql.data(CHANGES, {**variables, "first": 10}))["audienceChanges"]
    assert [(edge["node"]["email"], edge["change"]) for edge in page["edges"]] == [("ann@x", "EXITED"), ("bo@x", "ENTERED")]
    assert (page["totalCount"], page["entered"], page["exited"]) == (2, 1, 1)


async def test_changes_with_no_event_between_the_instants(gql: GraphQLClient) -> None:
    """Profiles change with no event of their own between `since` and `asOf`: "yesterday" moves past midnight
    (onto ann's order, off bo's), bo's order leaves a day's window, cy's recommendation waits out its four hours."""
    await track(gql, event("ann@x", "Placed Order", before(hours=2)), event("bo@x", "Placed Order", before(hours=30)),
                event("cy@x", "Received Product Recommendation from Customer Agent", before(hours=5),
                      conversation_id="c1", products=["p1"]))
    cases = [
        ({"did": {"metric": "Placed Order", "within": {"calendar": {"unit": "DAY", "offset": 1}}}},
         AS_OF + timedelta(hours=11), AS_OF + timedelta(hours=13), [("ann@x", "ENTERED"), ("bo@x", "EXITED")]),
        (RECENT_ORDER, AS_OF - timedelta(hours=7), AS_OF - timedelta(hours=3), [("bo@x", "EXITED")]),
        ({"did": {"metric": "Received Product Recommendation from Customer Agent",
                  "notFollowedBy": {"metric": "Placed Order", "withinHours": 4}}},
         AS_OF - timedelta(hours=2), AS_OF, [("cy@x", "ENTERED")]),
    ]
    for filter, since, as_of, expected in cases:
        variables = {"filter": filter, "since": iso(since), "asOf": iso(as_of), "first": 10}
        page = (await gql.data(CHANGES, variables))["audienceChanges"]
        assert [(edge["node"]["email"], edge["change"]) for edge in page["edges"]] == expected, filter


async def test_since_must_come_before_as_of(gql: GraphQLClient) -> None:
    error = await gql.error(CHANGES, {"filter": RECENT_ORDER, "since": iso(AS_OF), "asOf": iso(AS_OF)})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["audienceChanges"]
    error = await gql.error(CHANGES, {"filter": RECENT_ORDER, "since": iso(AS_OF), "asOf": before(hours=1), "first": 0})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_changes_ndjson_route_and_its_errors(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    segment_id = await two_days(gql)
    response = await client.get(f"/segments/{segment_id}/changes.ndjson",
                                params={"since": before(days=1, hours=12), "asOf": iso(AS_OF)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [(line["email"], line["change"]) for line in lines] == [("ann@x", "exited"), ("bo@x", "entered")]
    assert set(lines[0]) == {"id", "email", "phone_number", "external_id", "first_name", "last_name", "change"}
    missing = await client.get(f"/segments/{segment_id}/changes.ndjson")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = await client.get("/segments/999/changes.ndjson", params={"since": before(days=1)})
    assert unknown.status_code == 404
    backwards = await client.get(f"/segments/{segment_id}/changes.ndjson",
                                 params={"since": iso(AS_OF), "asOf": before(days=1)})
    assert backwards.status_code == 400


@pytest.fixture
async def url_store(store_url: str) -> AsyncIterator[Store]:
    """A store of each kind that its URL alone names, as the command line opens it."""
    store = Store(store_url)
    await migrate.prepare(store)
    yield store
    await store.dispose()


async def test_changes_command(url_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(Settings(database_url=url_store.url), store=url_store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        segment_id = await two_days(GraphQLClient(http))
    url = url_store.url
    output = tmp_path / "changes.ndjson"
    code = await run_cli("changes", "--segment", segment_id, "--since", before(days=1, hours=12), "--as-of", iso(AS_OF),
                         "--output", str(output), "--database-url", url)
    assert code == 0
    lines = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert [(line["email"], line["change"]) for line in lines] == [("ann@x", "exited"), ("bo@x", "entered")]
    assert "1 entered and 1 exited" in capsys.readouterr().err
    assert await run_cli("changes", "--segment", segment_id, "--since", iso(AS_OF), "--as-of", before(days=1),
                         "--database-url", url) == 2


# ---------------------------------------------------------------- edges written as JSON


def selected(name: str, *selections: Any, alias: str | None = None) -> SelectedField:
    return SelectedField(name, {}, {}, list(selections), alias)


def test_plain_edges_are_written_as_json_and_others_built_as_objects() -> None:
    node = selected("node", selected("id"), selected("email", alias="mail"))
    plain = edge_json([selected("audienceChanges", selected("edges", selected("change"), node, selected("cursor")),
                                selected("totalCount"))])
    assert plain is not None
    assert plain.keys == (("change", "change"), ("node", "node"), ("cursor", "cursor"))
    assert plain.node.fields == (("id", "id"), ("mail", "email"))
    not_plain = [
        selected("edges", selected("change"), selected("node", selected("properties"))),  # not a column's text
        selected("edges", selected("node", selected("id")), selected("node", selected("id"), alias="again")),
        selected("edges", selected("cursor"), selected("cursor", alias="cursor2"), selected("cursor", alias="cursor2")),
        selected("edges", InlineFragment("AudienceChangeEdge", [selected("cursor")], {})),
    ]
    for edges in not_plain:
        assert edge_json([selected("audienceChanges", edges)]) is None, edges
    assert edge_json([selected("audienceChanges", selected("edges", node), selected("nodes"))]) is None


JSON_EDGES = """query($filter: SegmentFilter!, $since: DateTime!, $asOf: DateTime, $first: Int, $after: String) {
  audienceChanges(filter: $filter, since: $since, asOf: $asOf, first: $first, after: $after) {
    edges { how: change __typename node { mail: email id __typename } cursor } pageInfo { endCursor hasNextPage } } }"""
OBJECT_EDGES = JSON_EDGES.replace("__typename } cursor", "__typename properties } cursor")


async def test_edges_written_as_json_equal_the_edges_built_as_objects(gql: GraphQLClient) -> None:
    await two_days(gql)
    await track(gql, event("dee@x", "Placed Order", before(hours=3)))
    variables = {"filter": RECENT_ORDER, "since": iso(AS_OF - timedelta(days=1, hours=12)), "asOf": iso(AS_OF), "first": 2}
    pages: dict[str, list[Any]] = {}
    for name, query in (("json", JSON_EDGES), ("objects", OBJECT_EDGES)):
        after = None
        pages[name] = []
        while True:
            page = (await gql.data(query, {**variables, "after": after}))["audienceChanges"]
            pages[name].append(page)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    for page in pages["objects"]:
        for edge in page["edges"]:
            assert edge["node"].pop("properties") == {}
    assert pages["json"] == pages["objects"]
    edges = [edge for page in pages["json"] for edge in page["edges"]]
    changed = [(edge["how"], edge["node"]["mail"]) for edge in edges]
    assert changed == [("EXITED", "ann@x"), ("ENTERED", "bo@x"), ("ENTERED", "dee@x")]
    assert {tuple(edge) for edge in edges} == {("how", "__typename", "node", "cursor")}  # in the selection's order
    assert edges[0]["__typename"] == "AudienceChangeEdge" and edges[0]["node"]["__typename"] == "Profile"
