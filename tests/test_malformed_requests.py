"""Malformed requests over HTTP: each gets a 4xx (or a coded GraphQL error), shaped like a GraphQL response,
never a 5xx; and what GraphQL over HTTP refuses before execution is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.app import create_app
from server.config import Settings
from store.engine import Store

JSON = {"content-type": "application/json"}


def deep_list(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def with_variable(value: bytes) -> bytes:
    """A request whose variables hold `value` (undeclared variables are ignored, once they are decoded)."""
    return b'{"query": "{ __typename }", "variables": {"f": ' + value + b"}}"


@pytest.mark.parametrize(("body", "status", "code", "says"), [
    (b"42", 400, "BAD_REQUEST", "The request body must be a JSON object"),
    (b'"query"', 400, "BAD_REQUEST", "The request body must be a JSON object"),
    (b"null", 400, "BAD_REQUEST", "The request body must be a JSON object"),
    (b"true", 400, "BAD_REQUEST", "The request body must be a JSON object"),
    (b"[]", 400, "BAD_REQUEST", "Batching is not enabled"),
    (b"{", 400, "BAD_REQUEST", "Unable to parse request body as JSON"),
    (b'{"query": "{ __typename }", "variables": "x"}', 400, "BAD_REQUEST", "`variables` must be an object"),
    (b'{"query": "{ __typename }", "variables": [1]}', 400, "BAD_REQUEST", "`variables` must be an object"),
    (b'{"query": "{ __typename }", "extensions": 3}', 400, "BAD_REQUEST", "`extensions` must be an object"),
    (b'{"query": 7}', 400, "BAD_REQUEST", "`query` must be a string"),
    # Variables: within the limit they run; past it they are refused; past JSON's own depth, a bad body.
    (with_variable(deep_list(101)), 200, "BAD_USER_INPUT", "variables may nest at most 100 levels deep"),
    (with_variable(deep_list(975)), 200, "BAD_USER_INPUT", "variables may nest at most 100 levels deep"),
    (with_variable(deep_list(1022)), 200, "BAD_USER_INPUT", "variables may nest at most 100 levels deep"),
    (with_variable(deep_list(1030)), 400, "BAD_REQUEST", "Unable to parse request body as JSON"),
    (with_variable(deep_list(100_000)), 400, "BAD_REQUEST", "Unable to parse request body as JSON"),
])
async def test_each_malformed_body_gets_a_coded_error_and_no_5xx(
    client: httpx.AsyncClient, body: bytes, status: int, code: str, says: str
) -> None:
    response = await client.post("/graphql", content=body, headers=JSON)
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == code
    assert says in error["message"]


async def test_variables_at_the_depth_limit_run(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", content=with_variable(deep_list(99)), headers=JSON)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_mutation_sent_with_get_is_405_naming_post(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": 'mutation { deleteSegment(id: "1") }'},
                                headers={"accept": "application/json"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_query_sent_with_get_still_runs(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "query A { __typename } mutation B { deleteSegment(id: \"1\") }",
                                                    "operationName": "A"}, headers={"accept": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_several_operations_need_an_operation_name(client: httpx.AsyncClient) -> None:
    document = "query A { __typename } query B { segments { id } }"
    refused = await client.post("/graphql", json={"query": document})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == "Must provide operation name if query contains multiple operations."
    chosen = await client.post("/graphql", json={"query": document, "operationName": "B"})
    assert chosen.json() == {"data": {"segments": []}}


@pytest.mark.parametrize(("introspection", "suggests"), [(True, True), (False, False)])
async def test_validation_suggests_names_only_where_introspection_is_on(
    store: Store, introspection: bool, suggests: bool
) -> None:
    app = create_app(Settings(database_url=store.url, introspection=introspection), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        body: dict[str, Any] = (await http.post("/graphql", json={"query": "{ profil { id } }"})).json()
    (error,) = body["errors"]
    assert error["message"].startswith("Cannot query field 'profil' on type 'Query'.")
    assert ("Did you mean 'profile' or 'profiles'?" in error["message"]) is suggests
