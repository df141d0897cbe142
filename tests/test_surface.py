"""Parts of the public surface checked through HTTP with exact values: a profile by id, a saved segment's
fields through its life (description set and cleared, expression, createdAt/updatedAt, rename, delete),
explain at an asOf, and GraphQL over GET with variables.

Writes stamp createdAt/updatedAt (and an event sent without occurredAt) with the server's clock; the tests
set that clock (`clock` below), so the times they read back are exact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import resolvers.ingest
import resolvers.segments
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, RECOMMENDED_NAME, iso
from vocabulary.timestamps import to_micros

T1 = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
T2 = T1 + timedelta(hours=1, microseconds=1)
T3 = T1 + timedelta(days=2)


class Clock:
    """The server's clock for writes, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(T1)
    # The modules that stamp writes: profiles and events (ingest), saved segments.
    monkeypatch.setattr(resolvers.ingest, "now_utc", clock)
    monkeypatch.setattr(resolvers.segments, "now_utc", clock)
    return clock


# ---------------------------------------------------------------- profiles

PROFILE_FIELDS = "id email phoneNumber externalId firstName lastName properties createdAt updatedAt"
UPSERT = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { " + PROFILE_FIELDS + " } }"
PROFILE = """query($id: ID!) { profile(id: $id) { """ + PROFILE_FIELDS + """
  events { nodes { __typename metric occurredAt properties } } } }"""
TRACK_ONE = "mutation($e: TrackEventInput!) { trackEvent(input: $e) { id metric occurredAt } }"


async def test_profile_by_id_of_an_existing_profile(gql: GraphQLClient, clock: Clock) -> None:
    created = await gql.data(UPSERT, {"input": {
        "email": "ada@x", "phoneNumber": "+15550001", "externalId": "crm-1", "firstName": "Ada", "lastName": "Lovelace",
        "properties": {"loyalty tier": "gold", "visits": 1, "tags": ["a", "b"]}}})
    ada = {"id": "1", "email": "ada@x", "phoneNumber": "+15550001", "externalId": "crm-1", "firstName": "Ada",
           "lastName": "Lovelace", "properties": {"loyalty tier": "gold", "visits": 1, "tags": ["a", "b"]},
           "createdAt": iso(T1), "updatedAt": iso(T1)}
    assert created["upsertProfile"] == ada

    clock.now = T2  # an event sent without occurredAt happened when the server received it; the profile is unchanged
    tracked = await gql.data(TRACK_ONE, {"e": {"metric": "Placed Order", "profile": {"email": "ada@x"},
                                               "properties": {"total": 12.5}}})
    assert tracked["trackEvent"] == {"id": "1", "metric": "Placed Order", "occurredAt": iso(T2)}
    assert (await gql.data(PROFILE, {"id": "1"}))["profile"] == {**ada, "events": {"nodes": [
        {"__typename": "CustomEvent", "metric": "Placed Order", "occurredAt": iso(T2), "properties": {"total": 12.5}}]}}

    clock.now = T3  # an update: properties merge key by key (null deletes), createdAt stays
    await gql.data(UPSERT, {"input": {"email": "ada@x", "lastName": "King", "properties": {"visits": 2, "loyalty tier": None}}})
    assert (await gql.data(PROFILE, {"id": "1"}))["profile"] == {
        **ada, "lastName": "King", "properties": {"visits": 2, "tags": ["a", "b"]}, "updatedAt": iso(T3), "events": {"nodes": [
            {"__typename": "CustomEvent", "metric": "Placed Order", "occurredAt": iso(T2), "properties": {"total": 12.5}}]}}
    by_key = await gql.data('{ profileByKey(key: {phoneNumber: "+15550001"}) { id email updatedAt } }')
    assert by_key == {"profileByKey": {"id": "1", "email": "ada@x", "updatedAt": iso(T3)}}
    # An id no profile has is null, until a profile is created with it.
    assert (await gql.data(PROFILE, {"id": "2"}))["profile"] is None
    await gql.data(UPSERT, {"input": {"externalId": "crm-2"}})
    second = (await gql.data(PROFILE, {"id": "2"}))["profile"]
    assert second == {"id": "2", "email": None, "phoneNumber": None, "externalId": "crm-2", "firstName": None,
                      "lastName": None, "properties": {}, "createdAt": iso(T3), "updatedAt": iso(T3),
                      "events": {"nodes": []}}


# ---------------------------------------------------------------- saved segments

SEGMENT_FIELDS = "id name description filter expression createdAt updatedAt"
CREATE = "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { " + SEGMENT_FIELDS + " } }"
UPDATE = "mutation($id: ID!, $input: UpdateSegmentInput!) { updateSegment(id: $id, input: $input) { " + SEGMENT_FIELDS + " } }"
DELETE = "mutation($id: ID!) { deleteSegment(id: $id) }"
SEGMENT = "query($id: ID!) { segment(id: $id) { " + SEGMENT_FIELDS + " } segments { id name } }"

DROP_OFFS = {"and": [
    {"did": {"metric": RECOMMENDED_NAME, "within": {"lastDays": 7}}},
    {"didNot": {"metric": "Placed Order", "within": {"lastDays": 7}}},
]}
DROP_OFFS_TEXT = f'did "{RECOMMENDED_NAME}" in the last 7 days and didn\'t "Placed Order" in the last 7 days'


async def test_a_segment_through_its_life(gql: GraphQLClient, client: httpx.AsyncClient, clock: Clock) -> None:
    created = await gql.data(CREATE, {"input": {
        "name": "Drop-offs", "description": "Recommended, no order", "filter": DROP_OFFS}})
    segment = {"id": "1", "name": "Drop-offs", "description": "Recommended, no order", "filter": DROP_OFFS,
               "expression": DROP_OFFS_TEXT, "createdAt": iso(T1), "updatedAt": iso(T1)}
    assert created["createSegment"] == segment
    assert await gql.data(SEGMENT, {"id": "1"}) == {"segment": segment, "segments": [{"id": "1", "name": "Drop-offs"}]}

    # A rename changes the name and updatedAt only.
    clock.now = T2
    renamed = (await gql.data(UPDATE, {"id": "1", "input": {"name": "Drop-offs (7 days)"}}))["updateSegment"]
    segment = {**segment, "name": "Drop-offs (7 days)", "updatedAt": iso(T2)}
    assert renamed == segment
    assert (await gql.data(SEGMENT, {"id": "1"}))["segment"] == segment

    # An explicit null clears the description; leaving it out keeps it.
    clock.now = T3
    cleared = (await gql.data(UPDATE, {"id": "1", "input": {"description": None}}))["updateSegment"]
    segment = {**segment, "description": None, "updatedAt": iso(T3)}
    assert cleared == segment
    described = (await gql.data(UPDATE, {"id": "1", "input": {"description": "again"}}))["updateSegment"]
    assert described["description"] == "again"
    kept = (await gql.data(UPDATE, {"id": "1", "input": {"name": "Drop-offs"}}))["updateSegment"]
    assert (kept["name"], kept["description"]) == ("Drop-offs", "again")

    # A filter given as text is stored in the input shape and printed back as the same text.
    text = 'did "Placed Order" at least 2 times in the last 30 days or profile `loyalty tier` in ["gold", "platinum"]'
    refiltered = (await gql.data(UPDATE, {"id": "1", "input": {"filter": {"expression": text}}}))["updateSegment"]
    assert refiltered["expression"] == text
    assert refiltered["filter"] == {"or": [
        {"did": {"metric": "Placed Order", "count": {"atLeast": 2}, "within": {"lastDays": 30}}},
        {"profile": {"property": "loyalty tier", "op": "IN", "value": ["gold", "platinum"]}},
    ]}
    assert (refiltered["createdAt"], refiltered["updatedAt"]) == (iso(T1), iso(T3))

    # A second segment, then the first one deleted: gone from every read, and a second delete finds nothing.
    buyers = {"name": "Buyers", "filter": {"did": {"metric": "Placed Order"}}}
    other = (await gql.data(CREATE, {"input": buyers}))["createSegment"]
    assert (other["id"], other["description"], other["expression"]) == ("2", None, 'did "Placed Order"')
    assert await gql.data(DELETE, {"id": "1"}) == {"deleteSegment": True}
    assert await gql.data(SEGMENT, {"id": "1"}) == {"segment": None, "segments": [{"id": "2", "name": "Buyers"}]}
    error = await gql.error(DELETE, {"id": "1"})
    assert error["extensions"]["code"] == "NOT_FOUND" and error["path"] == ["deleteSegment"]
    assert (await client.get("/segments/1/members.csv")).status_code == 404
    assert (await client.get("/segments/2/members.csv", params={"asOf": iso(AS_OF)})).status_code == 200


async def test_a_segment_in_use_is_not_deleted(gql: GraphQLClient) -> None:
    await gql.data(CREATE, {"input": {"name": "Buyers", "filter": {"did": {"metric": "Placed Order"}}}})
    user = (await gql.data(CREATE, {"input": {"name": "Loyal buyers", "filter": {"and": [
        {"inSegment": "1"}, {"profile": {"property": "loyalty tier", "op": "EQ", "value": "gold"}}]}}}))["createSegment"]
    assert user["expression"] == 'in segment "1" and profile `loyalty tier` = "gold"'
    error = await gql.error(DELETE, {"id": "1"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "Loyal buyers" in error["message"]
    assert await gql.data(DELETE, {"id": user["id"]}) == {"deleteSegment": True}
    assert await gql.data(DELETE, {"id": "1"}) == {"deleteSegment": True}
    assert (await gql.data("{ segments { id } }"))["segments"] == []


# ---------------------------------------------------------------- explain at an asOf

EXPLAIN = "query($f: SegmentFilter!, $asOf: DateTime) { explain(filter: $f, asOf: $asOf) }"


async def test_explain_measures_the_window_back_from_as_of(gql: GraphQLClient) -> None:
    """The statements explained are those of profiles(filter, asOf): the window's two ends are asOf − 7 days and
    asOf, in microseconds, and another asOf changes those parameters and nothing else."""
    last_week = {"did": {"metric": "Placed Order", "within": {"lastDays": 7}}}

    def bounds(as_of: datetime) -> tuple[str, str]:
        return str(to_micros(as_of - timedelta(days=7))), str(to_micros(as_of))

    def generic(text: str, as_of: datetime) -> str:
        start, end = bounds(as_of)
        return text.replace(start, "<window start>").replace(end, "<asOf>")

    later = AS_OF + timedelta(days=1, hours=3)
    at_as_of = (await gql.data(EXPLAIN, {"f": last_week, "asOf": iso(AS_OF)}))["explain"]
    at_later = (await gql.data(EXPLAIN, {"f": last_week, "asOf": iso(later)}))["explain"]
    totals = at_as_of[at_as_of.index("-- totalCount"):]
    start, end = bounds(AS_OF)
    assert totals.count(start) == 1 and totals.count(end) == 1  # the count's window: both ends, once each
    assert set(bounds(later)).isdisjoint(bounds(AS_OF)) and not any(b in at_as_of for b in bounds(later))
    assert generic(at_as_of, AS_OF) == generic(at_later, later) != at_as_of
    # The same instant written with another offset is the same asOf.
    shifted = iso(AS_OF.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+05:30").tzinfo))
    assert (await gql.data(EXPLAIN, {"f": last_week, "asOf": shifted}))["explain"] == at_as_of
    # Without asOf: now, so neither of those instants.
    at_now = (await gql.data(EXPLAIN, {"f": last_week}))["explain"]
    assert not any(b in at_now for b in (*bounds(AS_OF), *bounds(later)))


# ---------------------------------------------------------------- GET /graphql

async def test_get_runs_a_query_with_variables_and_an_operation_name(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    buyers = {"name": "Buyers", "description": "any order", "filter": {"did": {"metric": "Placed Order"}}}
    await gql.data(CREATE, {"input": buyers})
    document = ("query One($id: ID!) { segment(id: $id) { id name description } } "
                "query Named($name: String!) { metric(name: $name) { name agentMetric } }")

    async def get(**params: Any) -> httpx.Response:
        return await client.get("/graphql", params=params, headers={"accept": "application/json"})

    one = await get(query=document, variables=json.dumps({"id": "1"}), operationName="One")
    assert one.status_code == 200
    assert one.json() == {"data": {"segment": {"id": "1", "name": "Buyers", "description": "any order"}}}
    missing = await get(query=document, variables=json.dumps({"id": "9"}), operationName="One")
    assert missing.json() == {"data": {"segment": None}}
    named = await get(query=document, variables=json.dumps({"name": "STARTED_CONVERSATION"}), operationName="Named")
    assert named.json() == {"data": {"metric": {"name": "Started Conversation with Customer Agent",
                                                "agentMetric": "STARTED_CONVERSATION"}}}
    # A variable left out is the usual GraphQL error; variables that are not JSON are a bad request.
    unset = await get(query="query($id: ID!) { segment(id: $id) { id } }")
    assert unset.status_code == 200 and "$id" in unset.json()["errors"][0]["message"]
    broken = await get(query="query($id: ID!) { segment(id: $id) { id } }", variables='{"id": ')
    assert broken.status_code == 400 and broken.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# ---------------------------------------------------------------- page sizes: `first: Int = n`, null means n

FIRST_NULL = """query($null: Int, $segment: ID!, $profile: ID!) {
  profiles(first: null) { nodes { id } pageInfo { hasNextPage } }
  events(first: $null) { nodes { id } pageInfo { hasNextPage } }
  conversations(first: null) { nodes { id } pageInfo { hasNextPage } }
  metric(name: "Placed Order") { activity(first: $null) { nodes { id } pageInfo { hasNextPage } } }
  segment(id: $segment) { members(first: $null) { nodes { id } pageInfo { hasNextPage } } }
  profile(id: $profile) { events(first: null) { nodes { id } pageInfo { hasNextPage } } }
}"""


async def test_first_null_is_the_fields_default_page_size(gql: GraphQLClient) -> None:
    orders = [{"metric": "Placed Order", "profile": {"email": f"p{i}@x"}, "occurredAt": iso(T1)} for i in range(101)]
    chats = [{"metric": "Started Conversation with Customer Agent", "profile": {"email": "p0@x"}, "occurredAt": iso(T1),
              "properties": {"conversation_id": f"c{i}"}} for i in range(51)]
    await gql.data("mutation($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted } }", {"e": orders + chats})
    segment = (await gql.data(CREATE, {"input": {"name": "Buyers", "filter": {"did": {"metric": "Placed Order"}}}}))
    profile = (await gql.data('{ profileByKey(key: {email: "p0@x"}) { id } }'))["profileByKey"]["id"]
    data = await gql.data(FIRST_NULL, {"null": None, "segment": segment["createSegment"]["id"], "profile": profile})
    sizes = {name: (len(page["nodes"]), page["pageInfo"]["hasNextPage"]) for name, page in [
        ("profiles", data["profiles"]), ("events", data["events"]), ("conversations", data["conversations"]),
        ("activity", data["metric"]["activity"]), ("members", data["segment"]["members"]),
        ("profile events", data["profile"]["events"])]}
    assert sizes == {"profiles": (100, True), "events": (50, True), "conversations": (50, True), "activity": (50, True),
                     "members": (100, True), "profile events": (50, True)}


ARGUMENTS = """{ __schema { types { name fields { name args { name defaultValue type { kind name } } } } } }"""


async def test_every_first_argument_is_a_nullable_int_with_a_default(gql: GraphQLClient) -> None:
    """As the contract writes them (`first: Int = 100`): a client may pass null, or a nullable variable."""
    types = (await gql.data(ARGUMENTS))["__schema"]["types"]
    firsts = {f"{t['name']}.{f['name']}": (a["type"], a["defaultValue"])
              for t in types if not t["name"].startswith("__") for f in t["fields"] or () for a in f["args"]
              if a["name"] == "first"}
    assert len(firsts) >= 6
    wrong = {where: found for where, found in firsts.items()
             if found[0] != {"kind": "SCALAR", "name": "Int"} or found[1] is None}
    assert wrong == {}
