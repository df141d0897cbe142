"""Bad input: each limit and malformed value is a GraphQL error with a code and a path, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import AUDIENCE, TRACK, before, event, track

COUNT_EVENTS = "{ events(first: 1000) { nodes { id } } }"
SEGMENTS = "{ segments { id } }"
CREATE = """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id name expression } }"""
UPDATE = """mutation($id: ID!, $input: UpdateSegmentInput!) { updateSegment(id: $id, input: $input) { id } }"""


def did(**condition: Any) -> dict[str, Any]:
    return {"did": {"metric": "Placed Order", **condition}}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = did()
    for _ in range(depth - 1):
        node = {"not": node}
    return node


LIMIT_CASES = [
    ("lastDays too large", did(within={"lastDays": 36501}), ["filter", "did", "within", "lastDays"]),
    ("lastDays zero", did(within={"lastDays": 0}), ["filter", "did", "within", "lastDays"]),
    ("lastHours too large", did(within={"lastHours": 876001}), ["filter", "did", "within", "lastHours"]),
    ("count negative", did(count={"atLeast": -1}), ["filter", "did", "count", "atLeast"]),
    ("count too large", did(count={"exactly": 1_000_001}), ["filter", "did", "count", "exactly"]),
    ("withinHours zero", did(followedBy={"metric": "x", "withinHours": 0}), ["filter", "did", "followedBy", "withinHours"]),
    ("too deep", nested(33), ["filter", *["not"] * 32]),
    ("too many conditions", {"or": [did() for _ in range(201)]}, ["filter", "or", 200]),
    ("IN list too long", did(where=[{"property": "sku", "op": "IN", "value": list(range(1001))}]),
     ["filter", "did", "where", 0, "value"]),
    ("IN without a list", did(where=[{"property": "sku", "op": "IN", "value": "a"}]), ["filter", "did", "where", 0, "value"]),
    ("EQ without a value", did(where=[{"property": "sku", "op": "EQ"}]), ["filter", "did", "where", 0, "value"]),
    ("between reversed", did(within={"between": {"from": before(hours=1), "to": before(hours=2)}}),
     ["filter", "did", "within", "between"]),
    ("calendar offset too large", did(within={"calendar": {"unit": "DAY", "offset": 36501}}),
     ["filter", "did", "within", "calendar", "offset"]),
    ("calendar offset negative", did(within={"calendar": {"unit": "DAY", "offset": -1}}),
     ["filter", "did", "within", "calendar", "offset"]),
    ("calendar count zero", did(within={"calendar": {"unit": "WEEK", "count": 0}}),
     ["filter", "did", "within", "calendar", "count"]),
    ("calendar count too large", did(within={"calendar": {"unit": "DAY", "count": 36501}}),
     ["filter", "did", "within", "calendar", "count"]),
    ("calendar before year 1", did(within={"calendar": {"unit": "MONTH", "offset": 30000, "count": 1}}),
     ["filter", "did", "within", "calendar"]),
    ("unknown time zone", did(within={"calendar": {"unit": "DAY", "timezone": "Mars/Olympus_Mons"}}),
     ["filter", "did", "within", "calendar", "timezone"]),
    ("too many having", did(having=[{"function": "SUM", "property": "total", "op": "GTE", "value": i} for i in range(11)]),
     ["filter", "did", "having"]),
    ("having property with a quote", did(having=[{"function": "MAX", "property": 'a"b', "op": "GT", "value": 1}]),
     ["filter", "did", "having", 0, "property"]),
    ("unknown segment", {"inSegment": "999"}, ["filter", "inSegment"]),
    ("inSegment not an id", {"and": [{"inSegment": "abc"}]}, ["filter", "and", 0, "inSegment"]),
]


@pytest.mark.parametrize(("name", "filter", "input_path"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
async def test_limits_are_bad_user_input_with_a_path(gql: Any, name: str, filter: dict[str, Any], input_path: list[Any]) -> None:
    error = await gql.error(AUDIENCE, {"filter": filter})
    assert error["extensions"]["code"] in ("BAD_USER_INPUT", "NOT_FOUND"), error
    assert error["path"] == ["profiles"]
    assert error["extensions"]["inputPath"] == input_path
    # The same filter cannot be saved either, and nothing is stored.
    error = await gql.error(CREATE, {"input": {"name": name, "filter": filter}})
    assert error["extensions"]["inputPath"] == ["input", *input_path]
    assert (await gql.data(SEGMENTS))["segments"] == []


@pytest.mark.parametrize("first", [0, 1001, -5])
async def test_first_out_of_range(gql: Any, first: int) -> None:
    error = await gql.error(AUDIENCE, {"first": first})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "inputPath": ["first"]}
    assert error["path"] == ["profiles"]


async def test_malformed_datetime_variable(gql: Any) -> None:
    error = await gql.error(AUDIENCE, {"filter": did(within={"since": "last tuesday"})})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["profiles"]
    assert error["extensions"]["inputPath"] == ["filter", "did", "within", "since"]


async def test_malformed_datetime_literal(gql: Any) -> None:
    error = await gql.error('{ profiles(asOf: "2026-13-45") { totalCount } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["profiles"]
    assert "locations" in error


async def test_two_fields_in_a_one_of_input(gql: Any) -> None:
    error = await gql.error(
        '{ profiles(filter: {did: {metric: "a"}, inSegment: "1"}) { totalCount } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["profiles"]
    error = await gql.error(AUDIENCE, {"filter": did(within={"lastDays": 1, "lastHours": 2})})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["inputPath"] == ["filter", "did", "within"]


async def test_bad_cursor(gql: Any) -> None:
    error = await gql.error(AUDIENCE, {"after": "not-a-cursor"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "inputPath": ["after"]}


async def test_invalid_batch_item_stores_nothing_and_lists_every_bad_index(gql: Any) -> None:
    batch = [
        event("ok@x", "Placed Order", before(hours=1)),
        {"metric": "Started Conversation with Customer Agent", "profile": {"email": "a@x"}, "properties": {}},
        event("ok2@x", "Placed Order", before(hours=1)),
        {"metric": "Placed Order", "profile": {}},
        {"metric": "RECEIVED_PRODUCT_RECOMMENDATION", "profile": {"email": "b@x"},
         "properties": {"conversation_id": "c", "products": []}},
    ]
    error = await gql.error(TRACK, {"events": batch})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["trackEvents"]
    details = error["extensions"]["details"]
    assert [d["index"] for d in details] == [1, 3, 4]
    assert details[0]["path"] == ["events", 1, "properties", "conversation_id"]
    assert details[1]["path"] == ["events", 3, "profile"]
    assert (await gql.data(COUNT_EVENTS))["events"]["nodes"] == []
    assert (await gql.data(AUDIENCE))["profiles"]["totalCount"] == 0


async def test_key_naming_two_profiles_stores_nothing(gql: Any) -> None:
    await track(gql, event("a@x", "Placed Order", before(hours=1)))
    await gql.data('mutation { upsertProfile(input: {phoneNumber: "+1555"}) { id } }')
    conflicting = {"metric": "Placed Order", "profile": {"email": "a@x", "phoneNumber": "+1555"}}
    batch = [event("new@x", "Placed Order", before(hours=1)), conflicting, conflicting,
             {"metric": "Viewed Product", "profile": {"email": "a@x", "externalId": "x-1"}}]
    error = await gql.error(TRACK, {"events": batch})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["inputPath"] == ["events", 1, "profile"]
    assert [d["index"] for d in error["extensions"]["details"]] == [1, 2]
    assert len((await gql.data(COUNT_EVENTS))["events"]["nodes"]) == 1
    assert (await gql.data(AUDIENCE))["profiles"]["totalCount"] == 2


async def test_unknown_segment_ids(gql: Any) -> None:
    error = await gql.error(UPDATE, {"id": "42", "input": {"name": "x"}})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["updateSegment"]
    error = await gql.error('mutation { deleteSegment(id: "42") }')
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await gql.data('{ segment(id: "42") { id } }'))["segment"] is None


async def test_cycles_are_refused(gql: Any) -> None:
    a = (await gql.data(CREATE, {"input": {"name": "a", "filter": did()}}))["createSegment"]["id"]
    b = (await gql.data(CREATE, {"input": {"name": "b", "filter": {"inSegment": a}}}))["createSegment"]["id"]
    for filter in ({"inSegment": a}, {"not": {"inSegment": b}}):
        error = await gql.error(UPDATE, {"id": a, "input": {"filter": filter}})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["inputPath"] == ["input", "filter"]
    stored = await gql.data(f'{{ segment(id: "{a}") {{ filter }} }}')
    assert stored["segment"]["filter"] == did()


async def test_segment_in_use_cannot_be_deleted(gql: Any) -> None:
    a = (await gql.data(CREATE, {"input": {"name": "a", "filter": did()}}))["createSegment"]["id"]
    await gql.data(CREATE, {"input": {"name": "b", "filter": {"inSegment": a}}})
    error = await gql.error(f'mutation {{ deleteSegment(id: "{a}") }}')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert len((await gql.data(SEGMENTS))["segments"]) == 2


@pytest.mark.parametrize("query", [
    '{ segment(id: "²") { id } }',
    '{ profile(id: "٣") { id } }',
    '{ profiles(filter: {inSegment: "²"}) { totalCount } }',
    '{ profiles(filter: {expression: "did \\"x\\" since 0001-01-01T00:00:00+01:00"}) { totalCount } }',
    '{ profiles(filter: {profile: {property: "createdAt", op: GT, value: "0001-01-01T00:00:00+01:00"}}) { totalCount } }',
    '{ profiles(after: "WyJwcm9maWxlIiwxODQ0Njc0NDA3MzcwOTU1MTYxNSwwXQ") { totalCount } }',
])
async def test_odd_ids_dates_and_cursors_are_clean_answers(gql: Any, query: str) -> None:
    body = await gql(query)
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in ("BAD_USER_INPUT", "NOT_FOUND"), error


async def test_an_unknown_time_zone_is_named(gql: Any) -> None:
    error = await gql.error(AUDIENCE, {"filter": {"expression": 'did "Placed Order" today in time zone "Europe/Pariss"'}})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'Europe/Pariss'" in error["message"] and "unknown time zone" in error["message"]
