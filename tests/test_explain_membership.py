"""explainMembership: each condition's truth for one profile at an instant, with its evidence.

The property test stores a random world through the API and explains random filters for its profiles:
`member` = `root.holds` = membership in `profiles(filter, asOf)`, and every node's `holds` (and a DID's
count, qualifying events and window) equals tests/reference.py's for that node, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.config import Settings
from tests.audience_strategies import Vocabulary, as_of_instants, filters, worlds
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, before, event, iso, track
from tests.reference import MISSING, Profile, World, figure, json_equal, parse_instant
from tests.stores import StoreFactory, store_params
from tests.test_audience_changes import members
from tests.test_audiences_reference import save, store_world

NODE = ("kind expression holds count aggregates { function property value } windowStart windowEnd value "
        "events { id metric occurredAt }")
EXPLAIN = """query($profile: ID!, $filter: SegmentFilter!, $asOf: DateTime) {
  explainMembership(profile: $profile, filter: $filter, asOf: $asOf) {
    member asOf
    root { ...node children { ...node children { ...node children { ...node children { ...node children {
      ...node children { ...node children { ...node } } } } } } } }
  }
}
fragment node on ConditionExplanation { """ + NODE + " }"
KINDS = {"and": "AND", "or": "OR", "not": "NOT", "did": "DID", "didNot": "DID_NOT", "profile": "PROFILE",
         "inSegment": "IN_SEGMENT"}


def check_node(world: World, node: dict[str, Any], explained: dict[str, Any], profile: Profile, as_of: datetime) -> None:
    """The explanation of `node` (input shape) agrees with the reference, and so do its children's."""
    ((key, value),) = node.items()
    assert explained["kind"] == KINDS[key], (node, explained)
    assert explained["holds"] == world.holds(node, profile, as_of), (node, explained)
    children = explained.get("children")
    if key in ("and", "or"):
        nested = value
    elif key == "not":
        nested = [value]
    elif key == "inSegment":
        nested = [world.segments[value]]
    else:
        nested = []
    if children is not None:  # the query asks for so many levels
        assert len(children) == len(nested)
        for item, child in zip(nested, children, strict=True):
            check_node(world, item, child, profile, as_of)
    if key in ("did", "didNot"):
        qualifying = world.qualifying(value, profile, as_of)
        assert explained["count"] == len(qualifying), (node, explained)
        figures = [{"function": a["function"], "property": a["property"], "value": figure(a, qualifying)}
                   for a in value.get("having") or ()]
        assert explained["aggregates"] == figures, (node, explained)
        newest = sorted((e.occurred_at for e in qualifying), reverse=True)[:20]
        assert [parse_instant(e["occurredAt"]) for e in explained["events"]] == newest, (node, explained)
        window_end = parse_instant(explained["windowEnd"])
        assert window_end <= as_of
        if explained["windowStart"] is not None:  # every qualifying event lies in the window
            assert all(parse_instant(explained["windowStart"]) <= t for t in newest)
        assert all(t <= window_end for t in newest)
        assert explained["value"] is None
    else:
        assert explained["count"] is None and explained["events"] == []
    if key == "profile":
        name = value["property"]
        if name == "createdAt":
            assert parse_instant(explained["value"]) == profile.created_at
        else:
            read = profile.fields.get(name, MISSING) if name in profile.fields else profile.properties.get(name, MISSING)
            expected = None if read is MISSING else read
            assert json_equal(explained["value"], expected) or explained["value"] == expected, (node, explained)


async def examine(factory: StoreFactory, world: World, data: st.DataObject) -> None:
    store = await factory.create()
    app = create_app(Settings(database_url=store.url), store=store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            await store_world(gql, world, data.draw(st.integers(1, 2), label="event batches"))
            as_of = data.draw(as_of_instants(world), label="asOf")
            vocabulary = Vocabulary(world, as_of)
            saved = data.draw(filters(vocabulary), label="saved segment")
            segment = await save(gql, "saved", saved, as_of)
            world.segments[segment["id"]] = saved
            vocabulary.segment_ids = list(world.segments)
            everyone = {email: key for key, email in (await members(gql, {"and": []}, as_of)).items()}
            for probe in data.draw(st.lists(filters(vocabulary), min_size=1, max_size=3), label="probes"):
                audience = set((await members(gql, probe, as_of)).values())
                for profile in data.draw(st.lists(st.sampled_from(world.profiles), min_size=1, max_size=3, unique_by=id),
                                         label="profiles"):
                    variables = {"profile": str(everyone[profile.email]), "filter": probe, "asOf": iso(as_of)}
                    explained = (await gql.data(EXPLAIN, variables))["explainMembership"]
                    assert explained["member"] == explained["root"]["holds"] == (profile.email in audience), probe
                    assert parse_instant(explained["asOf"]) == as_of
                    check_node(world, probe, explained["root"], profile, as_of)
    finally:
        await store.dispose()


@pytest.mark.parametrize("kind", store_params())
def test_explanations_agree_with_the_audience_and_the_reference(kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(kind, tmp_path)
    with asyncio.Runner() as runner:

        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(world=worlds(max_profiles=5), data=st.data())
        def check(world: World, data: st.DataObject) -> None:
            runner.run(examine(factory, world, data))

        try:
            check()
        finally:
            runner.run(factory.drop_all())


# ---------------------------------------------------------------- examples

RECOMMENDED = "Received Product Recommendation from Customer Agent"
DROP_OFF = ('did "Received Product Recommendation from Customer Agent" in the last 7 days '
            'not followed by "Placed Order" within 48 hours')


async def test_why_a_recent_recommendation_is_not_yet_a_drop_off(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", RECOMMENDED, before(hours=3), conversation_id="c1", products=["p1"]))
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    explained = (await gql.data(EXPLAIN, {"profile": str(key), "filter": {"expression": DROP_OFF},
                                          "asOf": iso(AS_OF)}))["explainMembership"]
    root = explained["root"]
    assert explained["member"] is False
    assert (root["kind"], root["holds"], root["count"], root["events"]) == ("DID", False, 0, [])
    assert root["expression"] == DROP_OFF
    assert parse_instant(root["windowStart"]) == AS_OF - timedelta(days=7)
    assert parse_instant(root["windowEnd"]) == AS_OF
    # Two days later the wait has passed: a drop-off.
    later = (await gql.data(EXPLAIN, {"profile": str(key), "filter": {"expression": DROP_OFF},
                                      "asOf": iso(AS_OF + timedelta(days=2))}))["explainMembership"]
    assert later["member"] is True and later["root"]["count"] == 1


async def test_a_calendar_window_as_instants(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", "Placed Order", before(hours=13)))  # 23:00 the day before AS_OF
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    yesterday = {"did": {"metric": "Placed Order", "within": {"calendar": {"unit": "DAY", "offset": 1}}}}
    explained = (await gql.data(EXPLAIN, {"profile": str(key), "filter": yesterday, "asOf": iso(AS_OF)}))
    root = explained["explainMembership"]["root"]
    midnight = AS_OF.replace(hour=0)
    assert (root["holds"], root["count"], root["expression"]) == (True, 1, 'did "Placed Order" yesterday')
    assert (parse_instant(root["windowStart"]), parse_instant(root["windowEnd"])) == (midnight - timedelta(days=1), midnight)


async def test_having_figures_are_shown_as_compared(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", "Placed Order", before(hours=5), total=30, skus=["a", "b"]),
                event("ann@x", "Placed Order", before(hours=3), total=12.5, skus=["b", "c", 1]),
                event("ann@x", "Placed Order", before(hours=2), total="100"))  # a string: no number
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    having = [{"function": "SUM", "property": "total", "op": "GT", "value": 40},
              {"function": "DISTINCT_COUNT", "property": "skus", "op": "EQ", "value": 4},
              {"function": "AVERAGE", "property": "missing", "op": "LT", "value": 1}]
    explained = (await gql.data(EXPLAIN, {"profile": str(key), "asOf": iso(AS_OF),
                                          "filter": {"did": {"metric": "Placed Order", "having": having}}}))
    root = explained["explainMembership"]["root"]
    assert root["aggregates"] == [{"function": "SUM", "property": "total", "value": 42.5},
                                  {"function": "DISTINCT_COUNT", "property": "skus", "value": 4.0},
                                  {"function": "AVERAGE", "property": "missing", "value": None}]
    # AVERAGE of no numbers has no value, so its comparison fails: the condition does not hold with 3 events.
    assert (root["holds"], root["count"]) == (False, 3)
    assert explained["explainMembership"]["member"] is False


async def test_an_unknown_profile_is_not_found(gql: GraphQLClient) -> None:
    for profile in ("999", "not-an-id"):
        error = await gql.error(EXPLAIN, {"profile": profile, "filter": {"and": []}})
        assert error["extensions"]["code"] == "NOT_FOUND"
    error = await gql.error(EXPLAIN, {"profile": "1", "filter": {"inSegment": "42"}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
