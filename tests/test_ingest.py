"""Ingest over HTTP: aliases, typed events, profile resolution, idempotency, UTC."""

from __future__ import annotations

from typing import Any

from tests.helpers import before, event, track

EVENT_FIELDS = """
  id metric occurredAt channel properties profile { email }
  ... on StartedConversationEvent { conversationId initialSkill }
  ... on ConversationResolvedEvent { conversationId finalSkill tags }
  ... on ConversationEscalatedEvent { conversationId escalationReason tags }
  ... on ProductRecommendationEvent { conversationId products }
  __typename
"""
TRACK_ONE = f"mutation($e: TrackEventInput!) {{ trackEvent(input: $e) {{ {EVENT_FIELDS} }} }}"


async def test_track_event_normalises_metric_and_property_spellings(gql: Any) -> None:
    tracked = await gql.data(TRACK_ONE, {"e": {
        "metric": "Escalated Customer Agent Conversation",
        "profile": {"email": "ann@x"},
        "occurredAt": "2026-11-20T14:30:00+02:00",
        "properties": {"Conversation ID": "c1", "Escalation reason": "Refund request", "Tags": ["refund"],
                       "Channel": "SMS"},
    }})
    got = tracked["trackEvent"]
    assert got["__typename"] == "ConversationEscalatedEvent"
    assert got["metric"] == "Conversation with Customer Agent Escalated"
    assert got["occurredAt"] == "2026-11-20T12:30:00+00:00"
    assert got["channel"] == "SMS"
    assert got["conversationId"] == "c1"
    assert got["escalationReason"] == "Refund request"
    assert got["tags"] == ["refund"]
    assert got["properties"] == {"conversation_id": "c1", "escalation_reason": "Refund request", "tags": ["refund"],
                                 "channel": "SMS"}
    assert got["profile"] == {"email": "ann@x"}


async def test_each_agent_metric_has_its_type(gql: Any) -> None:
    cases = [
        ("STARTED_CONVERSATION", {"conversationId": "c", "initialSkill": "Order tracking"}, "StartedConversationEvent"),
        ("CONVERSATION_RESOLVED", {"conversation_id": "c", "final_skill": "Returns"}, "ConversationResolvedEvent"),
        ("RECEIVED_PRODUCT_RECOMMENDATION", {"conversation_id": "c", "Products": ["SKU-1"]}, "ProductRecommendationEvent"),
        ("Placed Order", {"channel": "Web", "total": 12.5}, "CustomEvent"),
    ]
    for metric, properties, typename in cases:
        got = (await gql.data(TRACK_ONE, {"e": {"metric": metric, "profile": {"email": "b@x"},
                                                 "properties": properties}}))["trackEvent"]
        assert got["__typename"] == typename
    timeline = await gql.data('{ profileByKey(key: {email: "b@x"}) { events { nodes { __typename } } } }')
    kinds = [n["__typename"] for n in timeline["profileByKey"]["events"]["nodes"]]
    assert sorted(kinds) == sorted(c[2] for c in cases)


async def test_an_empty_batch_stores_nothing(gql: Any) -> None:
    assert await track(gql) == {"accepted": 0, "duplicates": 0}
    assert (await gql.data("{ events(first: 1) { nodes { id } } }"))["events"]["nodes"] == []


async def test_unique_id_makes_replays_duplicates(gql: Any) -> None:
    batch = [
        {**event("a@x", "Placed Order", before(hours=1)), "uniqueId": "o-1"},
        {**event("a@x", "Placed Order", before(hours=2)), "uniqueId": "o-2"},
        {**event("a@x", "Viewed Product", before(hours=2)), "uniqueId": "o-1"},  # another metric: not a duplicate
        {**event("a@x", "Placed Order", before(hours=3)), "uniqueId": "o-1"},  # same batch duplicate
    ]
    assert await track(gql, *batch) == {"accepted": 3, "duplicates": 1}
    assert await track(gql, *batch) == {"accepted": 0, "duplicates": 4}
    events = await gql.data("{ events(first: 100) { nodes { id } } }")
    assert len(events["events"]["nodes"]) == 3
    again = await gql.data(TRACK_ONE, {"e": {**batch[0], "occurredAt": before(hours=9)}})
    assert again["trackEvent"]["occurredAt"] == before(hours=1)


async def test_profiles_resolve_by_email_then_phone_then_external_id(gql: Any) -> None:
    await track(gql, {"metric": "Placed Order", "profile": {"phoneNumber": "+15550001"}})
    await track(gql, {"metric": "Placed Order", "profile": {"email": "c@x", "phoneNumber": "+15550001"}})
    await track(gql, {"metric": "Placed Order", "profile": {"externalId": "ext-9"}})
    profiles = await gql.data("{ profiles { totalCount nodes { email phoneNumber externalId } } }")
    assert profiles["profiles"]["totalCount"] == 2
    assert {"email": "c@x", "phoneNumber": "+15550001", "externalId": None} in profiles["profiles"]["nodes"]
    by_phone = await gql.data('{ profileByKey(key: {phoneNumber: "+15550001"}) { email } }')
    assert by_phone["profileByKey"] == {"email": "c@x"}


async def test_upsert_profile_merges_properties(gql: Any) -> None:
    upsert = "mutation($i: ProfileInput!) { upsertProfile(input: $i) { id firstName properties createdAt updatedAt } }"
    first = (await gql.data(upsert, {"i": {"email": "d@x", "firstName": "Dee", "properties": {"a": 1, "b": 2}}}))
    second = (await gql.data(upsert, {"i": {"email": "d@x", "properties": {"b": None, "c": 3}}}))
    assert first["upsertProfile"]["id"] == second["upsertProfile"]["id"]
    assert second["upsertProfile"]["firstName"] == "Dee"
    assert second["upsertProfile"]["properties"] == {"a": 1, "c": 3}
    assert second["upsertProfile"]["createdAt"].endswith("+00:00")


async def test_event_pages_are_newest_first_without_gaps(gql: Any) -> None:
    await track(gql, *[event("e@x", "Viewed Product", before(hours=h), n=h) for h in range(7)])
    seen, after = [], None
    while True:
        page = await gql.data("query($a: String) { events(first: 3, after: $a) { nodes { properties } "
                              "pageInfo { hasNextPage endCursor } } }", {"a": after})
        seen.extend(n["properties"]["n"] for n in page["events"]["nodes"])
        if not page["events"]["pageInfo"]["hasNextPage"]:
            break
        after = page["events"]["pageInfo"]["endCursor"]
    assert seen == list(range(7))


async def test_graphiql_and_healthz(client: Any) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


async def test_keys_of_one_batch_share_identifiers_with_stored_and_new_profiles(gql: Any) -> None:
    await gql.data('mutation { upsertProfile(input: {email: "b@x"}) { id } }')
    await track(
        gql,
        {"metric": "Placed Order", "profile": {"email": "b@x", "phoneNumber": "+1"}},
        {"metric": "Placed Order", "profile": {"phoneNumber": "+1"}},
        {"metric": "Placed Order", "profile": {"email": "n@x"}},
        {"metric": "Placed Order", "profile": {"email": "n@x", "externalId": "e1"}},
        {"metric": "Placed Order", "profile": {"externalId": "e1"}},
    )
    found = await gql.data("{ profiles { nodes { email phoneNumber externalId events { nodes { id } } } } }")
    summary = sorted((p["email"], p["phoneNumber"], p["externalId"], len(p["events"]["nodes"]))
                     for p in found["profiles"]["nodes"])
    assert summary == [("b@x", "+1", None, 2), ("n@x", None, "e1", 3)]


async def test_metric_aliases_work_in_event_lists_and_replays(gql: Any) -> None:
    tracked = {"metric": "STARTED_CONVERSATION", "profile": {"email": "s@x"},
               "properties": {"conversation_id": "c1"}, "uniqueId": "u1"}
    first = await gql.data(TRACK_ONE, {"e": tracked})
    again = await gql.data(TRACK_ONE, {"e": {**tracked, "metric": "Started Customer Agent Conversation"}})
    assert again["trackEvent"]["id"] == first["trackEvent"]["id"]
    listed = await gql.data('{ events(metric: "started_conversation") { nodes { id } } }')
    assert [n["id"] for n in listed["events"]["nodes"]] == [first["trackEvent"]["id"]]


async def test_events_of_a_page_of_profiles_are_each_profiles_newest_first(gql: Any) -> None:
    await track(gql, *[event("three@x", "Viewed Product", before(hours=h), n=h) for h in (1, 2, 3)],
                event("one@x", "Placed Order", before(hours=5), n=5),
                event("one@x", "Viewed Product", before(hours=4), n=4))
    await gql.data('mutation { upsertProfile(input: {email: "none@x"}) { id } }')
    query = """query($m: String) { profiles { nodes { email events(first: 2, metric: $m) {
        nodes { properties } pageInfo { hasNextPage endCursor } } } } }"""
    found = {p["email"]: p["events"] for p in (await gql.data(query))["profiles"]["nodes"]}
    assert [e["properties"]["n"] for e in found["three@x"]["nodes"]] == [1, 2]
    assert found["three@x"]["pageInfo"]["hasNextPage"] is True
    assert [e["properties"]["n"] for e in found["one@x"]["nodes"]] == [4, 5]
    assert found["one@x"]["pageInfo"]["hasNextPage"] is False
    assert found["none@x"]["nodes"] == []
    rest = await gql.data('query($a: String) { profileByKey(key: {email: "three@x"}) { events(first: 2, after: $a) '
                          "{ nodes { properties } } } }", {"a": found["three@x"]["pageInfo"]["endCursor"]})
    assert [e["properties"]["n"] for e in rest["profileByKey"]["events"]["nodes"]] == [3]
    viewed = {p["email"]: p["events"] for p in (await gql.data(query, {"m": "viewed product"}))["profiles"]["nodes"]}
    assert [e["properties"]["n"] for e in viewed["one@x"]["nodes"]] == [4]
