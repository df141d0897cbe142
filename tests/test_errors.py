"""The error policy (schema/extensions/errors.py): codes come from where errors are raised, not from their wording."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import GraphQLError, ValidationRule, parse, validate
from strawberry.extensions import SchemaExtension

from schema import limits, schema
from schema.extensions.errors import BAD_USER_INPUT, GRAPHQL_VALIDATION_FAILED, ErrorPolicy, coded_rules
from schema.query import Query

PROFILES = "query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }"


async def errors(query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None) -> list[Any]:
    """The formatted errors of a request that fails before any resolver runs, and its request id."""
    result = await schema.execute(query, variables, operation_name=operation_name)
    assert result.errors
    assert result.extensions == {"requestId": result.extensions["requestId"]}  # type: ignore[index]
    return [error.formatted for error in result.errors]


class WordyRule(ValidationRule):
    """Reports errors worded like the ones of other rules: its code is its own all the same."""

    def enter_field(self, node: Any, *_args: Any) -> None:
        if node.name.value == "totalCount":
            self.report_error(GraphQLError("Expected value of type 'Int', found 7; exceeds maximum operation depth", node))


def test_a_validation_error_has_the_code_of_its_rule_whatever_its_wording() -> None:
    document = parse("{ profiles(first: 7) { totalCount } }")
    for code in (BAD_USER_INPUT, GRAPHQL_VALIDATION_FAILED, "QUERY_TOO_COMPLEX"):
        (error,) = validate(schema._schema, document, coded_rules([WordyRule], {WordyRule: code}))
        assert error.extensions == {"code": code}
        # Bad input is placed at the root field it lies in.
        assert error.path == (["profiles"] if code == BAD_USER_INPUT else None)


async def test_the_limits_rules_are_too_complex_and_other_rules_validation_failures() -> None:
    deep = "{ events(first: 1) { nodes { profile { events(first: 1) { nodes { profile { events(first: 1) { nodes { " \
           "profile { events(first: 1) { nodes { id } } } } } } } } } } } }"
    assert [e["extensions"]["code"] for e in await errors(deep)] == ["QUERY_TOO_COMPLEX"]
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(limits.MAX_ALIASES + 1)) + " }"
    assert [e["extensions"]["code"] for e in await errors(aliases)] == ["QUERY_TOO_COMPLEX"]
    (unknown,) = await errors("{ metrics { nope } }")
    assert unknown["extensions"] == {"code": GRAPHQL_VALIDATION_FAILED} and "path" not in unknown


async def test_bad_argument_values_are_bad_input_at_their_root_field() -> None:
    # graphql-core's ValuesOfCorrectTypeRule, whatever it says: a wrong kind, a null where a value is
    # needed, a value the enum does not have; Strawberry's @oneOf rule.
    for query in ('{ a: profiles(first: "x") { totalCount } }', "{ a: profile(id: null) { id } }",
                  "{ a: conversations(status: NOPE) { totalCount } }", "{ a: profiles(filter: {did: null}) { totalCount } }",
                  '{ a: profiles(filter: {did: {metric: "x"}, inSegment: "1"}) { totalCount } }',
                  "{ a: profiles { nodes { events(first: 1.5) { nodes { id } } } } }"):
        (error,) = await errors(query)
        assert error["extensions"] == {"code": BAD_USER_INPUT} and error["path"] == ["a"], query


async def test_bad_variables_are_bad_input_at_their_argument() -> None:
    (error,) = await errors(PROFILES, {"f": {"and": [{"did": {"metric": "x"}}, {"not": {"did": {"metric": 7}}}]}})
    assert error["path"] == ["profiles"]
    assert error["extensions"] == {"code": BAD_USER_INPUT, "inputPath": ["filter", "and", 1, "not", "did", "metric"]}
    # Strawberry's refusal of a @oneOf object names no place: it is found in the variables.
    for one_of in ({"did": {"metric": "x"}, "inSegment": "1"}, {"didNot": None}):
        (error,) = await errors(PROFILES, {"f": {"and": [{"did": {"metric": "x"}}, {"not": one_of}]}})
        assert error["path"] == ["profiles"]
        assert error["extensions"] == {"code": BAD_USER_INPUT, "inputPath": ["filter", "and", 1, "not"]}
    # A variable that is no root field's argument has no place to name.
    (error,) = await errors('query($m: String!) { profiles(filter: {did: {metric: $m}}) { totalCount } }', {"m": 7})
    assert error["extensions"] == {"code": BAD_USER_INPUT} and "path" not in error


async def test_the_token_limit_is_told_from_a_syntax_error_at_the_same_place() -> None:
    fields = " ".join("a" for _ in range(limits.MAX_TOKENS - 1))
    (error,) = await errors("{ " + fields + " }")  # one token past the limit: the closing brace
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    # A mistake at the token past the limit: the parser stops at the limit first, and says so.
    (error,) = await errors("{ " + " ".join("a" for _ in range(limits.MAX_TOKENS - 2)) + " ( }")
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"} and "tokens" in error["message"]
    # The same mistake one token earlier, the last token allowed: a syntax error.
    (error,) = await errors("{ " + " ".join("a" for _ in range(limits.MAX_TOKENS - 3)) + " ( }")
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"} and "Expected Name" in error["message"]


class Failing(SchemaExtension):
    def on_validate(self) -> Any:
        raise RuntimeError("secret detail")


async def test_an_extension_that_fails_is_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import strawberry

    failing = strawberry.Schema(query=Query, extensions=[ErrorPolicy, Failing])
    with caplog.at_level(logging.ERROR, logger="segmentql"):
        result = await failing.execute("{ __typename }")
    request_id = result.extensions["requestId"]  # type: ignore[index]
    assert [error.formatted for error in result.errors or []] == [
        {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]
    logged = [record for record in caplog.records if request_id in record.getMessage()]
    assert logged and logged[0].exc_info is not None and "secret detail" in str(logged[0].exc_info[1])


async def test_a_response_without_errors_has_no_request_id() -> None:
    result = await schema.execute("{ __typename }")
    assert result.errors is None and not result.extensions
