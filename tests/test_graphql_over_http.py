"""GraphQL over HTTP's two media types: application/graphql-response+json for clients that accept it, where a
request that fails before execution (parse, validation, variables) is a 400 without `data`; and
application/json, kept as it was (200 with `"data": null`), for clients that ask for it or say nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# (query, variables): each fails before execution, with the code it gets.
REQUEST_ERRORS = [
    ("{ metrics { name ", None, "GRAPHQL_PARSE_FAILED"),
    ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
    ("query($n: Int) { events(first: $n) { nodes { id } } }", {"n": "x"}, "BAD_USER_INPUT"),
    ("query($f: SegmentFilter) { profiles(filter: $f) { totalCount } }", {"f": {"did": {}}}, "BAD_USER_INPUT"),
    ('{ a: profiles(filter: {did: {metric: "x"}, inSegment: "1"}) { totalCount } }', None, "BAD_USER_INPUT"),
]


async def post(client: httpx.AsyncClient, accept: str | None, query: str, variables: Any = None) -> httpx.Response:
    headers = {"accept": accept} if accept is not None else {}
    return await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_a_request_error_is_a_400_without_data_for_graphql_response_json(
    client: httpx.AsyncClient, query: str, variables: Any, code: str
) -> None:
    response = await post(client, GRAPHQL_RESPONSE, query, variables)
    assert (response.status_code, response.headers["content-type"]) == (400, GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == code

    legacy = await post(client, JSON, query, variables)
    assert (legacy.status_code, legacy.headers["content-type"]) == (200, JSON)
    assert legacy.json()["data"] is None and legacy.json()["errors"] == body["errors"]


async def test_results_and_field_errors_are_200_in_either_media_type(client: httpx.AsyncClient) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        ok = await post(client, accept, "{ metrics { name } }")
        assert (ok.status_code, ok.headers["content-type"]) == (200, accept)
        assert len(ok.json()["data"]["metrics"]) == 4
        # Execution began: a field's error leaves `data` (null up to the nullable parent) and a 200.
        failed = await post(client, accept, "{ events(first: 5000) { nodes { id } } }")
        assert failed.status_code == 200
        assert failed.json()["data"] is None and failed.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(("accept", "media_type"), [
    (None, JSON), ("*/*", JSON), (JSON, JSON), (f"{GRAPHQL_RESPONSE}, {JSON}", GRAPHQL_RESPONSE),
    (f"{JSON}, {GRAPHQL_RESPONSE};q=0.9", JSON), (f"{GRAPHQL_RESPONSE};q=0.5, {JSON};q=0.5", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE};q=0, {JSON}", JSON), (f"{GRAPHQL_RESPONSE}; charset=utf-8", GRAPHQL_RESPONSE),
])
async def test_the_media_type_follows_the_accept_header(client: httpx.AsyncClient, accept: str | None, media_type: str) -> None:
    response = await post(client, accept, "{ nope }")
    assert response.headers["content-type"] == media_type
    assert response.status_code == (400 if media_type == GRAPHQL_RESPONSE else 200)


async def test_get_negotiates_as_post_does(client: httpx.AsyncClient) -> None:
    params = {"query": "query($n: Int) { events(first: $n) { nodes { id } } }", "variables": json.dumps({"n": "x"})}
    response = await client.get("/graphql", params=params, headers={"accept": GRAPHQL_RESPONSE})
    assert (response.status_code, response.headers["content-type"]) == (400, GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    ok = await client.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": GRAPHQL_RESPONSE})
    assert (ok.status_code, ok.json()) == (200, {"data": {"__typename": "Query"}})
