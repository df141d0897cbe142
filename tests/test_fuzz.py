"""Fuzzing: queries generated from the schema (schemathesis), random text for the filter language, random JSON
for trackEvents. Every answer must be a clean result or a clean error: GraphQL-shaped, each error with a
code, never a 5xx and never INTERNAL_SERVER_ERROR. Bounded and derandomized (a fixed seed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.errors import UserInputError
from resolvers.language.text import KEYWORDS, parse_filter
from schema import schema
from server.app import create_app
from server.config import Settings
from tests.helpers import AS_OF, RECOMMENDED_NAME, STARTED_NAME, TRACK, before, event, iso
from tests.stores import StoreFactory, store_params

SCHEMA_EXAMPLES = 300  # generated queries per store
FUZZ = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
RESPONSE_KEYS = {"data", "errors", "extensions"}


class Live:
    """The real app over one store, driven from synchronous Hypothesis tests through one event loop."""

    def __init__(self, runner: asyncio.Runner, http: httpx.AsyncClient) -> None:
        self.runner = runner
        self.http = http

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return self.runner.run(self.http.post("/graphql", json=body))


@pytest.fixture(params=store_params())
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    with asyncio.Runner() as runner:
        factory = StoreFactory(str(request.param), tmp_path)
        store = runner.run(factory.create())
        app = create_app(Settings(database_url=store.url), store=store)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        live = Live(runner, http)
        seeded = live.post({"query": TRACK, "variables": {"events": [
            event("a@x", STARTED_NAME, before(hours=2), conversation_id="c1", channel="SMS"),
            event("a@x", RECOMMENDED_NAME, before(hours=1), conversation_id="c1", products=["SKU-1"]),
            event("b@x", "Placed Order", before(hours=1), total=12.5),
        ]}})
        assert "errors" not in seeded.json()
        live.post({"query": 'mutation { createSegment(input: {name: "s", filter: {expression: "did \\"Placed Order\\""}}) '
                            "{ id } }"})
        try:
            yield live
        finally:
            runner.run(http.aclose())
            runner.run(store.dispose())
            runner.run(factory.drop_all())


def assert_clean(response: httpx.Response, sent: Any = None) -> dict[str, Any]:
    """A GraphQL-over-HTTP answer: JSON, `data` and/or `errors`, every error with a message and a client code."""
    try:
        return _check_clean(response)
    except AssertionError as error:
        raise AssertionError(f"sent: {sent!r}\n{error}") from None


def _check_clean(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body, dict) and body.keys() <= RESPONSE_KEYS and ("data" in body or "errors" in body), body
    for error in body.get("errors", []):
        assert isinstance(error["message"], str) and error["message"], body
        code = error["extensions"]["code"]
        assert isinstance(code, str) and code != "INTERNAL_SERVER_ERROR", body
    if response.status_code != 200:
        assert body.get("errors"), body
    return body


# ---------------------------------------------------------------- schemathesis


def _operations_strategy() -> st.SearchStrategy[Any]:
    introspection = schema.execute_sync(graphql.get_introspection_query())
    assert introspection.errors is None and introspection.data is not None
    loaded = schemathesis.graphql.from_dict(introspection.data)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == 19
    return st.one_of(*(operation.as_strategy() for operation in operations))


@settings(FUZZ, max_examples=SCHEMA_EXAMPLES)
@given(case=_operations_strategy())
def test_queries_generated_from_the_schema_get_clean_answers(live: Live, case: Any) -> None:
    assert_clean(live.post({"query": case.body}), case.body)


# ---------------------------------------------------------------- the filter language

TOKENS = st.sampled_from([
    *sorted(KEYWORDS), "did", "didn't", "not", "and", "or", "(", ")", "[", "]", ",", "=", "!=", ">", ">=", "<", "<=",
    '"Placed Order"', f'"{STARTED_NAME}"', '""', '"', "`a b`", "`", "channel", "1", "-1", "1.5", "1e400",
    "99999999999999999999999999", "true", "null", "{}", "[1, 2]", "2026-11-01T00:00:00Z", "2026-02-30", "times",
    "zero", "in the last", "days", "hours", "within", "followed by", "with the same", "in segment", '"1"', "\n", "\\",
])
filter_texts = st.one_of(
    st.text(max_size=60),
    st.lists(TOKENS, max_size=25).map(" ".join),
    st.lists(st.one_of(TOKENS, st.text(max_size=3)), max_size=25).map("".join),
)


@settings(FUZZ, max_examples=400)
@given(text=filter_texts)
def test_parse_filter_returns_a_filter_or_a_located_error(text: str) -> None:
    try:
        parse_filter(text)
    except UserInputError as error:
        assert error.code == "BAD_USER_INPUT" and error.message.startswith("line "), error.message


AUDIENCE = """query($e: String!, $a: DateTime) {
  profiles(filter: {expression: $e}, asOf: $a, first: 5) { totalCount nodes { id } }
}"""


@settings(FUZZ, max_examples=100)
@given(text=filter_texts)
def test_expressions_through_graphql_get_clean_answers(live: Live, text: str) -> None:
    body = assert_clean(live.post({"query": AUDIENCE, "variables": {"e": text, "a": iso(AS_OF)}}), text)
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in ("BAD_USER_INPUT", "NOT_FOUND"), error


# ---------------------------------------------------------------- trackEvents with random JSON

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
metric_names = st.sampled_from([STARTED_NAME, RECOMMENDED_NAME, "CONVERSATION_RESOLVED", "Placed Order", "", " "]) | st.text(
    max_size=10)
property_keys = st.sampled_from(["conversation_id", "Conversation ID", "conversationId", "products", "Products", "tags",
                                 "channel", "initial_skill"]) | st.text(max_size=6)
events = st.fixed_dictionaries(
    {"metric": metric_names},
    optional={
        "profile": st.fixed_dictionaries({}, optional={k: st.none() | st.text(max_size=6) | json_values
                                                       for k in ("email", "phoneNumber", "externalId")}) | json_values,
        "properties": st.dictionaries(property_keys, json_values, max_size=4) | json_values,
        "occurredAt": st.none() | st.sampled_from(["2026-11-20T12:00:00Z", "2026-11-20", "yesterday", "", "9999-12-31T23:59:59"])
        | st.text(max_size=12),
        "uniqueId": st.none() | st.sampled_from(["u1", "u2", "", " "]) | st.text(max_size=4),
        "extra": json_values,
    },
)


@settings(FUZZ, max_examples=150)
@given(batch=st.lists(events, max_size=6) | json_values)
def test_track_events_with_random_json_gets_clean_answers(live: Live, batch: Any) -> None:
    body = assert_clean(live.post({"query": TRACK, "variables": {"events": batch}}), batch)
    if "errors" not in body:
        assert body["data"]["trackEvents"]["accepted"] + body["data"]["trackEvents"]["duplicates"] == len(batch)


# ---------------------------------------------------------------- property conditions with random JSON values

OPS = ["EQ", "NEQ", "IN", "NOT_IN", "CONTAINS", "NOT_CONTAINS", "GT", "GTE", "LT", "LTE", "EXISTS", "NOT_EXISTS",
       "STARTS_WITH"]
conditions = st.fixed_dictionaries({
    "property": st.sampled_from(["n", "channel", "email", "createdAt", "tags", "a.b"]) | st.text(max_size=5),
    "op": st.sampled_from(OPS),
}, optional={"value": json_values | st.integers() | st.lists(st.integers() | st.text(max_size=3), max_size=3)})


@settings(FUZZ, max_examples=100)
@given(condition=conditions, on_profile=st.booleans())
def test_random_property_conditions_get_clean_answers(live: Live, condition: dict[str, Any], on_profile: bool) -> None:
    query = "query($f: SegmentFilter) { profiles(filter: $f, first: 5) { totalCount nodes { id } } }"
    where = {"profile": condition} if on_profile else {"did": {"metric": "Placed Order", "where": [condition]}}
    body = assert_clean(live.post({"query": query, "variables": {"f": where}}), where)
    for error in body.get("errors", []):
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
