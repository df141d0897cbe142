"""Abuse limits and error hygiene: query size and cost, body size, batch size, statement timeouts, masking,
and the production switches for introspection and GraphiQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import sqlalchemy as sa

from resolvers.ingest import MAX_BATCH
from schema import limits, schema
from server.app import create_app
from server.config import Settings
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, ESCALATED_NAME, STARTED_NAME, TRACK, before, iso
from tests.stores import StoreFactory

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return limits.query_cost(schema._schema, graphql.parse(query), variables or {})[0]


async def test_a_repeated_query_is_validated_once() -> None:
    """The depth and alias rules are the same objects for every request, so the validation cache hits."""
    query = "query Repeated { __typename alias: __typename }"
    await schema.execute(query)
    before_hits = limits._validate.cache_info().hits
    result = await schema.execute(query)
    assert result.errors is None and result.data == {"__typename": "Query", "alias": "Query"}
    assert limits._validate.cache_info().hits == before_hits + 1


def test_cost_multiplies_children_by_first() -> None:
    assert cost("{ metrics { name } }") == 2
    assert cost("{ profiles(first: 10) { nodes { id email } } }") == 1 + 10 * 3
    assert cost("{ profiles { nodes { id } } }") == 1 + 100 * 2  # the schema's default first
    nested = "{ profiles(first: 1000) { nodes { id events(first: 1000) { nodes { id } } } } }"
    assert cost(nested) == 1 + 1000 * (1 + 1 + (1 + 1000 * 2))
    assert cost("query($n: Int) { events(first: $n) { nodes { id } } }", {"n": 7}) == 1 + 7 * 2
    assert cost("query($n: Int = 3) { events(first: $n) { nodes { id } } }") == 1 + 3 * 2
    # null, written or in a variable, is the field's default (50 events), not the variable's default
    assert cost("{ events(first: null) { nodes { id } } }") == 1 + 50 * 2
    assert cost("query($n: Int = 3) { events(first: $n) { nodes { id } } }", {"n": None}) == 1 + 50 * 2
    assert cost("query($n: Int) { events(first: $n) { nodes { id } } }", {"n": "x"}) == 1 + 1000 * 2
    assert cost("{ events(first: 5000) { nodes { id } } }") == 1 + 1000 * 2  # refused by the field, not the cost
    fragments = """{ segments { members(first: 20) { nodes { ...P } } } conversations(first: 5) { nodes { events { ...E } } } }
      fragment P on Profile { id events(first: 10) { nodes { ...E } } }
      fragment E on Event { id ... on StartedConversationEvent { conversationId } }"""
    assert cost(fragments) == (1 + 1 + 20 * (1 + 1 + 1 + 10 * (1 + 2))) + (1 + 5 * (1 + 1 + 2))


async def test_a_thousand_profiles_with_a_thousand_events_each_is_refused(gql: GraphQLClient) -> None:
    body = await gql("{ profiles(first: 1000) { nodes { id events(first: 1000) { nodes { id metric } } } } }")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == TOO_COMPLEX and error["extensions"]["maxCost"] == limits.MAX_COST
    assert error["extensions"]["cost"] > 1_000_000 and body["data"] is None
    by_variables = await gql("query($n: Int!) { profiles(first: $n) { nodes { events(first: $n) { nodes { id } } } } }",
                             {"n": 1000})
    assert by_variables["errors"][0]["extensions"]["code"] == TOO_COMPLEX
    # What a frontend asks stays well inside: a page of profiles with their recent events.
    fine = await gql.data("{ profiles(first: 100) { totalCount nodes { id email events(first: 50) "
                          "{ nodes { id metric occurredAt } } } } }")
    assert fine["profiles"]["totalCount"] == 0
    # `first` out of range is still the field's BAD_USER_INPUT, with its path.
    error = await gql.error("{ events(first: 5000) { nodes { id } } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["path"] == ["events"]


async def test_depth_aliases_and_tokens_are_limited(gql: GraphQLClient) -> None:
    deep = "{ events(first: 1) { nodes { profile { events(first: 1) { nodes { profile { events(first: 1) { nodes { profile { events(first: 1) { nodes { profile { id } } } } } } } } } } } } }"  # noqa: E501
    error = await gql.error(deep)
    assert error["extensions"]["code"] == TOO_COMPLEX and "depth" in error["message"]
    aliases = "{ " + " ".join(f"m{i}: metrics {{ name }}" for i in range(limits.MAX_ALIASES + 1)) + " }"
    error = await gql.error(aliases)
    assert error["extensions"]["code"] == TOO_COMPLEX and "aliases" in error["message"]
    assert "errors" not in await gql(aliases.replace(f" m{limits.MAX_ALIASES}: metrics {{ name }}", ""))
    tokens = "{ metrics { " + " ".join(["name"] * limits.MAX_TOKENS) + " } }"
    error = await gql.error(tokens)
    assert error["extensions"]["code"] == TOO_COMPLEX and "tokens" in error["message"]
    # A syntax error is still just that.
    assert (await gql.error("{ metrics { name }"))["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_fragments_spread_twice_at_every_level_are_refused_at_once(gql: GraphQLClient) -> None:
    """Strawberry's depth and alias rules walk a fragment at every spread: 2^40 walks here, were they to run."""
    levels = 40
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    query = "{ ...F0 } " + fragments + f" fragment F{levels} on Query {{ metrics {{ name }} }}"
    error = await gql.error(query)
    assert error["extensions"]["code"] == TOO_COMPLEX and "fragments are expanded" in error["message"]


async def test_graphiql_introspection_query_is_within_every_limit(gql: GraphQLClient) -> None:
    data = await gql.data(graphql.get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_bodies_over_the_cap_are_refused_unread(store: Store) -> None:
    app = create_app(Settings(database_url=store.url, max_body_bytes=1000), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        small = await http.post("/graphql", json={"query": "{ metrics { name } }"})
        assert small.status_code == 200
        padded = {"query": "{ metrics { name } }", "variables": {"pad": "x" * 2000}}
        declared = await http.post("/graphql", json=padded)
        assert declared.status_code == 413
        assert declared.json() == {"errors": [{"message": "the request body is larger than the limit of 1000 bytes",
                                               "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}
        sent: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap counts what is read
            for _ in range(50):
                sent.append(100)
                yield b" " * 100

        streamed = await http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert sum(sent) <= 1100  # nothing was read past the chunk that crossed the cap
        assert (await http.get("/healthz")).status_code == 200


async def test_default_body_cap_holds_a_full_batch(gql: GraphQLClient) -> None:
    assert Settings().max_body_bytes == 10 * 1024 * 1024
    batch = [{"metric": STARTED_NAME, "profile": {"email": f"p{i % 500}@example.com"}, "occurredAt": before(minutes=i),
              "uniqueId": f"batch-0001-event-{i:05d}",
              "properties": {"conversation_id": f"conversation-{i:06d}", "channel": "SMS",
                             "initial_skill": "Order tracking", "note": "x" * 200}} for i in range(MAX_BATCH)]
    assert (await gql.data(TRACK, {"events": batch}))["trackEvents"] == {"accepted": MAX_BATCH, "duplicates": 0}


async def test_a_batch_over_ten_thousand_is_refused_whole(gql: GraphQLClient, store: Store) -> None:
    batch = [{"metric": "Placed Order", "profile": {"email": f"p{i}@x"}} for i in range(MAX_BATCH + 1)]
    error = await gql.error(TRACK, {"events": batch})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["trackEvents"] and error["extensions"]["inputPath"] == ["events"]
    assert "10000" in error["message"]
    async with store.connect() as connection:
        assert await connection.scalar(sa.text("SELECT count(*) FROM events")) == 0


SLOW_FILTER = {"or": [{"did": {"metric": STARTED_NAME, "where": [{"property": "n", "op": "GT", "value": k}],
                               "count": {"atLeast": 2},
                               "followedBy": {"metric": ESCALATED_NAME, "withinHours": 500,
                                              "sameProperties": ["channel"]}}} for k in range(6)]}
AUDIENCE = "query($f: SegmentFilter, $a: DateTime) { profiles(filter: $f, asOf: $a, first: 10) { totalCount nodes { id } } }"


# A condition that takes a minute or more to evaluate on any machine: counting to 10^9 (SQLite), or sleeping.
TAKES_A_MINUTE = {
    "sqlite": "(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000) "
              "SELECT count(*) FROM n) > 0",
    "postgresql": "(SELECT count(*) FROM pg_sleep(120)) > 0",
}


@contextlib.asynccontextmanager
async def metrics_read_slowly(store: Store) -> AsyncIterator[None]:
    """While inside, every read of `metrics` (each audience statement looks its metrics up by name) takes a
    minute or more: the table is renamed and a view of it, slow by construction, takes its name."""
    async with store.begin() as connection:
        await connection.execute(sa.text("ALTER TABLE metrics RENAME TO metrics_kept"))
        await connection.execute(sa.text(
            f"CREATE VIEW metrics AS SELECT * FROM metrics_kept WHERE {TAKES_A_MINUTE[store.dialect]}"))
    try:
        yield
    finally:
        async with store.begin() as connection:
            await connection.execute(sa.text("DROP VIEW metrics"))
            await connection.execute(sa.text("ALTER TABLE metrics_kept RENAME TO metrics"))


async def test_a_slow_audience_query_times_out_and_the_next_request_succeeds(store_kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    # 1 s: far longer than any statement here takes, far shorter than the minute the slow view takes.
    store = await factory.create(statement_timeout=1, pool_size=2, max_overflow=0)
    try:
        app = create_app(Settings(database_url=store.url, statement_timeout=1), store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            metrics = [STARTED_NAME, ESCALATED_NAME, "Placed Order", "Viewed Product"]
            events = [{"metric": metrics[i % 4], "profile": {"email": f"p{i % 600}@x"}, "occurredAt": before(minutes=i),
                       "properties": {"conversation_id": f"c{i // 4}", "channel": ["SMS", "Web", "Chat"][i % 3],
                                      "n": i % 17}} for i in range(6000)]
            assert (await gql.data(TRACK, {"events": events}))["trackEvents"]["accepted"] == 6000
            async with metrics_read_slowly(store):
                for _ in range(2):
                    error = await gql.error(AUDIENCE, {"f": SLOW_FILTER, "a": iso(AS_OF)})
                    # The page or its totalCount, whichever statement runs first: it runs out of time.
                    assert error["extensions"]["code"] == "QUERY_TIMEOUT" and error["path"][0] == "profiles"
                    assert "cancelled" in error["message"] and "longer than 1 s" in error["message"]
            store.statement_timeout = 30  # the same connections, the view gone and more room: they answer
            for _ in range(3):
                simple = await gql.data(AUDIENCE, {"f": {"did": {"metric": "Placed Order"}}, "a": iso(AS_OF)})
                assert simple["profiles"]["totalCount"] == 150
    finally:
        await store.dispose()
        await factory.drop_all()


async def test_store_failures_are_masked_and_logged_with_the_request_id(
        gql: GraphQLClient, store: Store, caplog: pytest.LogCaptureFixture) -> None:
    await gql.data(TRACK, {"events": [{"metric": "Placed Order", "profile": {"email": "a@x"}}]})
    async with store.begin() as connection:
        await connection.execute(sa.text("DROP TABLE events"))
    with caplog.at_level(logging.ERROR, logger="segmentql"):
        body = await gql("{ events(first: 5) { nodes { id metric } } profiles(first: 1) { totalCount } }")
    errors = body["errors"]
    assert errors and all(e["extensions"]["code"] == "INTERNAL_SERVER_ERROR" for e in errors)
    assert all(e["message"] == "Internal server error" for e in errors)
    request_id = body["extensions"]["requestId"]
    assert all(e["extensions"]["requestId"] == request_id for e in errors)
    text = str(body).lower()
    for leak in ("select", "events", "sqlite", "asyncpg", "relation", "traceback", ".py", "/", "table"):
        assert leak not in text.replace('"events"', "").replace("'events'", ""), leak
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the server log has the id and the whole failure


async def test_a_store_that_cannot_be_reached_is_masked_and_never_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    app = create_app(Settings(database_url=url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        for path, request in (("/graphql", http.post("/graphql", json={"query": "{ metrics { name } }"})),
                              ("/segments/1/members.csv", http.get("/segments/1/members.csv"))):
            with caplog.at_level(logging.ERROR, logger="segmentql"):
                response = await request
            # The key check itself needs the store: it fails closed, masked, with a request id in the log.
            assert response.status_code == 500, path
            (error,) = response.json()["errors"]
            assert error == {"message": "Internal server error",
                             "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": error["extensions"]["requestId"]}}
            assert "dir.db" not in response.text and "unable to open" not in response.text
            assert any(error["extensions"]["requestId"] in r.getMessage() for r in caplog.records)
        assert (await http.get("/healthz")).status_code == 503
    await app.state.store.dispose()
    await asyncio.sleep(0.2)  # aiosqlite's thread of a failed connect settles its last future on this loop


async def test_introspection_and_graphiql_can_be_turned_off(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTQL_INTROSPECTION", "0")
    monkeypatch.setenv("SEGMENTQL_GRAPHIQL", "0")
    settings = Settings(database_url=store.url)
    assert not settings.introspection and not settings.graphiql
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        error = await gql.error("{ __schema { types { name } } }")
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "introspection" in error["message"]
        assert (await gql.error('{ __type(name: "Profile") { name } }'))["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert await gql.data("{ __typename metrics { name } }")
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert (await http.get("/graphiql/graphiql.min.js")).status_code == 404  # nor its files


async def test_http_level_errors_are_shaped_like_graphql(client: httpx.AsyncClient) -> None:
    cases = [
        (client.post("/graphql", content=b"{oops", headers={"content-type": "application/json"}), 400, "BAD_REQUEST"),
        (client.post("/graphql", content=b"query=x", headers={"content-type": "text/plain"}), 400, "BAD_REQUEST"),
        (client.post("/graphql", json={"query": 5}), 400, "BAD_REQUEST"),
        # GraphQL over HTTP: a mutation may not be sent with GET (405, Allow: POST).
        (client.get("/graphql", params={"query": 'mutation { deleteSegment(id: "1") }'}), 405, "METHOD_NOT_ALLOWED"),
        (client.put("/graphql", json={}), 405, "METHOD_NOT_ALLOWED"),
        (client.get("/nowhere"), 404, "NOT_FOUND"),
    ]
    for request, status, code in cases:
        response = await request
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == code


async def test_text_with_nul_is_refused_on_both_stores(gql: GraphQLClient) -> None:
    """PostgreSQL cannot store U+0000 (text or jsonb): it is refused everywhere, up front, on both stores."""
    cases = [
        ('query($k: ProfileKey!) { profileByKey(key: $k) { id } }', {"k": {"email": "a\x00b"}}),
        (TRACK, {"events": [{"metric": "Placed Order", "profile": {"email": "a@x"}, "properties": {"note\x00": 1}}]}),
        (TRACK, {"events": [{"metric": "Placed\x00Order", "profile": {"email": "a@x"}}]}),
        ('{ profileByKey(key: {email: "a\\u0000b"}) { id } }', None),
        ('{ metric(name: "x\\u{0}") { name } }', None),
    ]
    for query, variables in cases:
        error = await gql.error(query, variables)
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "NUL" in error["message"], query
    assert await gql.data('{ profileByKey(key: {email: "a\\\\u0000b"}) { id } }') == {"profileByKey": None}
    # A backslash followed by "u0000" is text, not a NUL, in variables too.
    by_key = 'query($k: ProfileKey!) { profileByKey(key: $k) { id } }'
    assert await gql.data(by_key, {"k": {"email": "a\\u0000b"}}) == {"profileByKey": None}


def test_variables_may_nest_exactly_max_levels() -> None:
    from server.graphql_view import MAX_VARIABLE_DEPTH, _variables_problem

    def nested(levels: int, leaf: Any = "x") -> Any:
        value = leaf
        for level in range(levels):
            value = {"a": value} if level % 2 else [value]
        return value

    assert _variables_problem(nested(MAX_VARIABLE_DEPTH)) is None
    assert _variables_problem(nested(MAX_VARIABLE_DEPTH - 1, leaf={})) is None
    assert "nest at most" in (_variables_problem(nested(MAX_VARIABLE_DEPTH + 1)) or "")
    assert "nest at most" in (_variables_problem(nested(MAX_VARIABLE_DEPTH, leaf={"b": 1})) or "")
    assert "NUL" in (_variables_problem({"k": [{"v": "a\x00b"}]}) or "")
    assert "NUL" in (_variables_problem({"k\x00": 1}) or "")
    assert _variables_problem({"k": "a\\u0000b"}) is None
    # From the JSON text the variables came from, when given: its \u0000 escapes, not a second encoding.
    assert "NUL" in (_variables_problem({"k": "a\x00b"}, b'{"k": "a\\u0000b"}') or "")
    assert _variables_problem({"k": "a\\u0000b"}, b'{"k": "a\\\\u0000b"}') is None


async def test_variables_nested_too_deeply_are_bad_input(gql: GraphQLClient) -> None:
    deep: Any = "bottom"
    for _ in range(150):
        deep = {"inner": deep}
    event = {"metric": "X", "profile": {"email": "a@x"}, "properties": {"deep": deep}}
    error = await gql.error(TRACK, {"events": [event]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "nest at most 100 levels" in error["message"]
    shallow = {"metric": "X", "profile": {"email": "a@x"}, "properties": {"deep": {"a": [{"b": [1, {"c": "d"}]}]}}}
    assert await gql.data(TRACK, {"events": [shallow]}) == {"trackEvents": {"accepted": 1, "duplicates": 0}}


async def test_filter_integers_beyond_64_bits_are_bad_input(gql: GraphQLClient) -> None:
    await gql.data(TRACK, {"events": [{"metric": "X", "profile": {"email": "a@x"}, "properties": {"n": 2**64 - 1}}]})
    query = "query($f: SegmentFilter) { profiles(filter: $f) { totalCount } }"
    for value, op in ((2**63, "EQ"), (2**64 - 1, "GT"), ([1, 2**64 - 1], "IN")):
        condition = {"property": "n", "op": op, "value": value}
        error = await gql.error(query, {"f": {"did": {"metric": "X", "where": [condition]}}})
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and "64 bits" in error["message"], error
        assert error["extensions"]["inputPath"][:4] == ["filter", "did", "where", 0]
    for inline in ('{ profiles(filter: {expression: "profile n = 99999999999999999999"}) { totalCount } }',
                   '{ profiles(filter: {profile: {property: "n", op: GT, value: -9223372036854775809}}) { totalCount } }'):
        assert (await gql.error(inline))["extensions"]["code"] == "BAD_USER_INPUT"
    # JSON bodies are read with orjson: integers below -2^63 or above 2^64-1 arrive as floats, and are fine.
    assert "errors" not in await gql(query, {"f": {"profile": {"property": "n", "op": "GT", "value": -(2**63) - 1}}})
    # 2^64 - 1 is stored, and compared with the largest 64-bit integer as a number: it is greater, not less.
    for op, members in (("GT", 1), ("GTE", 1), ("LT", 0), ("LTE", 0), ("NEQ", 1)):
        condition = {"property": "n", "op": op, "value": 2**63 - 1}
        data = await gql.data(query, {"f": {"did": {"metric": "X", "where": [condition]}}})
        assert data["profiles"]["totalCount"] == members, op
