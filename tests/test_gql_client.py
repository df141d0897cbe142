"""A real GraphQL client against the real app: the `gql` library, its schema fetched by introspection
(@oneOf included), runs the README's tour, pages an audience to the end and sends a trackEvents batch.

The app runs in this process behind httpx's ASGITransport, which gql's httpx transport passes to its
client: the same requests a client sends over the network, on each store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import GraphQLError, GraphQLInputObjectType

from seed import seed_store
from server.app import create_app
from server.config import Settings
from store.engine import Store

README = Path(__file__).resolve().parents[1] / "README.md"
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # where the demo data ends: the tour's `asOf`

# The README's tour, word for word.
AUDIENCE = gql("""
query Audience($filter: SegmentFilter, $asOf: DateTime) {
  profiles(filter: $filter, asOf: $asOf, first: 3) {
    totalCount
    nodes { email firstName lastName }
    pageInfo { hasNextPage endCursor }
  }
}""")
TOUR = [  # (structured filter, the same question in the text form, totalCount in the README)
    ({"did": {"metric": "Received Product Recommendation from Customer Agent", "within": {"lastDays": 7},
              "notFollowedBy": {"metric": "Placed Order", "withinHours": 48}}},
     'did "Received Product Recommendation from Customer Agent" in the last 7 days not followed by "Placed Order" '
     "within 48 hours", 53),
    ({"did": {"metric": "Conversation with Customer Agent Escalated", "within": {"lastDays": 7}}},
     'did "Conversation with Customer Agent Escalated" in the last 7 days', 73),
    ({"did": {"metric": "Started Conversation with Customer Agent",
              "where": [{"property": "channel", "op": "EQ", "value": "SMS"}]}},
     'did "Started Conversation with Customer Agent" where channel = "SMS"', 327),
    ({"did": {"metric": "Placed Order", "within": {"lastDays": 30},
              "having": [{"function": "SUM", "property": "total", "op": "GTE", "value": 100}]}},
     'did "Placed Order" with sum of total >= 100 in the last 30 days', 662),
    ({"did": {"metric": "Placed Order",
              "within": {"calendar": {"unit": "DAY", "offset": 1, "timezone": "America/New_York"}}}},
     'did "Placed Order" yesterday in time zone "America/New_York"', 37),
]
CREATE_SEGMENT = gql('mutation { createSegment(input: {name: "SMS starters", filter: {expression: '
                     '"did \\"STARTED_CONVERSATION\\" where channel = \\"SMS\\""}}) { id expression count } }')
EXPLAIN = gql('query { explain(filter: {inSegment: "1"}) }')

PAGE = gql("""
query Page($filter: SegmentFilter, $asOf: DateTime, $first: Int, $after: String) {
  profiles(filter: $filter, asOf: $asOf, first: $first, after: $after) {
    totalCount
    nodes { id email }
    pageInfo { hasNextPage endCursor }
  }
}""")
TRACK = gql("mutation Track($events: [TrackEventInput!]!) { trackEvents(events: $events) { accepted duplicates } }")


def as_of(moment: datetime) -> str:
    return moment.isoformat()


async def run(session: AsyncClientSession, request: GraphQLRequest, **variables: Any) -> dict[str, Any]:
    return await session.execute(GraphQLRequest(request, variable_values=variables))


@pytest.fixture
async def session(store: Store) -> AsyncIterator[AsyncClientSession]:
    """A gql session on the app over `store`, with the schema the server reports by introspection."""
    app = create_app(Settings(database_url=store.url), store=store)
    transport = HTTPXAsyncTransport(url="http://testserver/graphql", transport=httpx.ASGITransport(app=app))
    client = Client(transport=transport, fetch_schema_from_transport=True,
                    introspection_args={"input_object_one_of": True})
    async with client as opened:
        assert isinstance(opened, AsyncClientSession)
        yield opened


@pytest.fixture
async def seeded(store: Store) -> Store:
    """The quick start's demo data (seed.py's defaults: 3,000 shoppers, 90 days, seed 1), ending at END."""
    summary = await seed_store(store, end=END)
    assert (summary["profiles_created"], summary["accepted"]) == (3000, 36676)
    return store


def one_of(session: AsyncClientSession, name: str) -> bool:
    assert session.client.schema is not None
    type_ = session.client.schema.get_type(name)
    assert isinstance(type_, GraphQLInputObjectType)
    return type_.is_one_of


async def test_the_readme_tour(seeded: Store, session: AsyncClientSession) -> None:
    assert all(one_of(session, name) for name in ("SegmentFilter", "TimeWindow", "CountCondition"))
    assert not one_of(session, "ProfileKey")

    for structured, text, total in TOUR:
        page, same = [(await run(session, AUDIENCE, filter=f, asOf=as_of(END)))["profiles"]
                      for f in (structured, {"expression": text})]
        assert (page["totalCount"], same["totalCount"]) == (total, total)
        assert page["nodes"] == same["nodes"] and len(page["nodes"]) == 3  # the text form builds the same tree
        assert page["pageInfo"]["hasNextPage"] is same["pageInfo"]["hasNextPage"] is True
    escalated = (await run(session, AUDIENCE, filter=TOUR[1][0], asOf=as_of(END)))["profiles"]
    assert escalated["nodes"] == [
        {"email": "ines.taylor25@example.net", "firstName": "Ines", "lastName": "Taylor"},
        {"email": "mateo.smith96@example.org", "firstName": "Mateo", "lastName": "Smith"},
        {"email": "omar.lee103@example.com", "firstName": "Omar", "lastName": "Lee"},
    ]

    # The data ends before now, so the saved segment's count (as of now) is the tour's 327.
    created = await session.execute(CREATE_SEGMENT)
    assert created == {"createSegment": {
        "id": "1", "expression": 'did "Started Conversation with Customer Agent" where channel = "SMS"', "count": 327}}
    sql = (await session.execute(EXPLAIN))["explain"]
    assert sql.startswith("-- ") and "FROM profiles" in sql
    assert "started conversation with customer agent" in sql and "SMS" in sql


RECOMMENDED = "Received Product Recommendation from Customer Agent"
WHY_TEXT = (f'did \\"{RECOMMENDED}\\" in the last 7 days and did \\"{RECOMMENDED}\\" in the last 7 days '
            'not followed by \\"Placed Order\\" within 48 hours')
WHY_QUERY = """
query Why($asOf: DateTime) {
  explainMembership(profile: "238", asOf: $asOf, filter: {expression: "TEXT"}) {
    member
    root { children { expression holds count windowStart windowEnd events { occurredAt } } }
  }
}""".replace("TEXT", WHY_TEXT)
WHY = gql(WHY_QUERY)
WHEN = gql("""query When($filter: SegmentFilter!) { profile(id: "238") { email
  membership(filter: $filter, from: "2026-11-01T00:00:00Z", to: "2026-11-25T00:00:00Z") { from to } } }""")
CHANGES = gql("""
query Changes($filter: SegmentFilter!, $since: DateTime!, $asOf: DateTime) {
  audienceChanges(filter: $filter, since: $since, asOf: $asOf, first: 100) {
    totalCount entered exited
    edges { change node { email } }
  }
}""")


async def test_the_readme_why_and_when(seeded: Store, session: AsyncClientSession) -> None:
    assert WHY_QUERY.strip() in README.read_text()  # word for word
    drop_off = TOUR[0][0]
    why = (await run(session, WHY, asOf=as_of(END)))["explainMembership"]
    ever, waited = why["root"]["children"]
    assert why["member"] is False
    assert (ever["holds"], ever["count"], [e["occurredAt"] for e in ever["events"]]) == (
        True, 1, ["2026-11-19T02:24:08.355963+00:00"])
    assert (waited["holds"], waited["count"], waited["events"]) == (False, 0, [])
    assert (ever["windowStart"], ever["windowEnd"]) == ("2026-11-13T12:00:00+00:00", "2026-11-20T12:00:00+00:00")
    when = (await run(session, WHEN, filter=drop_off))["profile"]
    assert when == {"email": "yuki.okafor237@example.com",
                    "membership": [{"from": "2026-11-21T02:24:08.355963+00:00", "to": None}]}
    changes = (await run(session, CHANGES, filter=drop_off, since=as_of(END - timedelta(days=1)), asOf=as_of(END)))
    found = changes["audienceChanges"]
    assert (found["totalCount"], found["entered"], found["exited"]) == (18, 8, 10)
    assert [edge["change"] for edge in found["edges"]].count("ENTERED") == 8


async def test_the_client_checks_one_of_with_the_introspected_schema(session: AsyncClientSession) -> None:
    """gql validates a document against the fetched schema before sending it: two keys of a @oneOf literal never
    leave the client. Sent anyway, the server refuses them too."""
    two_keys = gql('{ profiles(filter: {did: {metric: "Placed Order"}, inSegment: "1"}) { totalCount } }')
    with pytest.raises(GraphQLError) as refused_here:
        await session.execute(two_keys)
    assert not isinstance(refused_here.value, TransportQueryError)
    assert "'SegmentFilter'" in refused_here.value.message and "exactly one field" in refused_here.value.message

    session.client.schema = None  # no local validation: the server answers
    with pytest.raises(TransportQueryError) as refused_there:
        await session.execute(two_keys)
    assert refused_there.value.errors is not None
    assert refused_there.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_paging_an_audience_to_the_end(seeded: Store, session: AsyncClientSession) -> None:
    escalated = TOUR[1][0]
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await run(session, PAGE, filter=escalated, asOf=as_of(END), first=10, after=after))["profiles"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [len(page["nodes"]) for page in pages] == [10] * 7 + [3]
    assert {page["totalCount"] for page in pages} == {73}
    ids = [int(node["id"]) for page in pages for node in page["nodes"]]
    assert ids == sorted(set(ids))  # id order, each member once
    everyone = await run(session, PAGE, filter=escalated, asOf=as_of(END), first=100)
    assert [node for page in pages for node in page["nodes"]] == everyone["profiles"]["nodes"]
    assert everyone["profiles"]["pageInfo"]["hasNextPage"] is False


async def test_a_track_events_batch(session: AsyncClientSession) -> None:
    started = END - timedelta(hours=2)
    kim = {"email": "kim@example.com"}
    opening = {"metric": "Started Conversation with Customer Agent", "profile": kim, "occurredAt": as_of(started),
               "uniqueId": "c-1-start",
               "properties": {"Conversation ID": "c-1", "channel": "SMS", "initial_skill": "Order tracking"}}
    batch = [
        opening,
        {"metric": "RECEIVED_PRODUCT_RECOMMENDATION", "profile": kim, "occurredAt": as_of(started + timedelta(minutes=5)),
         "properties": {"conversationId": "c-1", "products": ["sku-1", "sku-2"], "channel": "SMS"}},
        {"metric": "Conversation with Customer Agent Escalated", "profile": kim,
         "occurredAt": as_of(started + timedelta(minutes=9)),
         "properties": {"conversation_id": "c-1", "escalation_reason": "refund", "tags": ["refund"], "channel": "SMS"}},
        {"metric": "Placed Order", "profile": {"email": "lee@example.com"}, "occurredAt": as_of(started),
         "properties": {"total": 42.5}},
        opening,  # the same uniqueId again: a duplicate
    ]
    assert await run(session, TRACK, events=batch) == {
        "trackEvents": {"accepted": 4, "duplicates": 1}}
    assert await run(session, TRACK, events=batch[:1]) == {
        "trackEvents": {"accepted": 0, "duplicates": 1}}

    conversation = await session.execute(gql("""{ conversation(id: "c-1") {
        status channel initialSkill escalationReason tags recommendedProducts startedAt endedAt profile { email } } }"""))
    assert conversation == {"conversation": {
        "status": "ESCALATED", "channel": "SMS", "initialSkill": "Order tracking", "escalationReason": "refund",
        "tags": ["refund"], "recommendedProducts": ["sku-1", "sku-2"], "startedAt": "2026-11-20T10:00:00+00:00",
        "endedAt": "2026-11-20T10:09:00+00:00", "profile": {"email": "kim@example.com"}}}

    escalated_by_sms = {"expression": 'did "Conversation with Customer Agent Escalated" where channel = "SMS" '
                                      "in the last 1 days"}
    page = await run(session, PAGE, filter=escalated_by_sms, asOf=as_of(END))
    assert [node["email"] for node in page["profiles"]["nodes"]] == ["kim@example.com"]
    ordered = await run(session, PAGE, filter={"did": {"metric": "placed order"}}, asOf=as_of(END))
    assert [node["email"] for node in ordered["profiles"]["nodes"]] == ["lee@example.com"]
