"""What a @oneOf input given several keys (or none) says: the keys it was given and, for SegmentFilter, `and`.

The filter language (resolvers/language/structured.py) words it for every structured filter it reads;
over HTTP, where Strawberry refuses such an input before any resolver sees it, schema/ words its
refusals of literals (schema/limits.OneOfNamingKeys) and of variables (schema/extensions/errors.py)
with the same `one_of_message`.
"""

from __future__ import annotations

from typing import Any

import pytest

from resolvers.errors import UserInputError
from resolvers.language.structured import FILTER_KEYS, filter_from_input, one_of_message

TAKES = "SegmentFilter takes exactly one of and, or, not, did, didNot, profile, inSegment, expression"
DID = {"metric": "Placed Order"}
PROFILE = {"property": "email", "op": "EQ", "value": "a@x"}


def refusal(value: Any) -> UserInputError:
    with pytest.raises(UserInputError) as raised:
        filter_from_input(value)
    return raised.value


def test_two_keys_are_named_with_the_and_that_combines_them() -> None:
    error = refusal({"did": DID, "profile": PROFILE})
    assert error.message == f"{TAKES}; got did, profile: to require both, write and: [{{did: …}}, {{profile: …}}]"
    assert error.input_path == ()


def test_three_keys_deep_inside_a_filter() -> None:
    error = refusal({"or": [{"did": DID}, {"not": {"did": DID, "profile": PROFILE, "inSegment": "1"}}]})
    assert error.message == (f"{TAKES}; got did, profile, inSegment: to require all of them, write "
                             "and: [{did: …}, {profile: …}, {inSegment: …}]")
    assert error.input_path == ("or", 1, "not")


def test_no_key_and_null_keys() -> None:
    assert refusal({}).message == f"{TAKES}; got none"
    assert refusal({"did": None, "profile": None}).message == f"{TAKES}; got none"
    # A null beside a value is no key: the value alone is the filter.
    assert filter_from_input({"did": DID, "profile": None}) == filter_from_input({"did": DID})


def test_types_without_and_name_the_keys_only() -> None:
    error = refusal({"did": {**DID, "within": {"lastDays": 7, "since": "2026-11-01T00:00:00Z"}}})
    assert error.message == ("TimeWindow takes exactly one of lastDays, lastHours, since, before, between, calendar; "
                             "got lastDays, since")
    assert error.input_path == ("did", "within")
    error = refusal({"did": {**DID, "count": {"atLeast": 1, "atMost": 3}}})
    assert error.message == "CountCondition takes exactly one of atLeast, atMost, exactly; got atLeast, atMost"
    assert error.input_path == ("did", "count")


def test_the_message_in_its_own_words() -> None:
    assert one_of_message("SegmentFilter", FILTER_KEYS, ["expression", "did"]).endswith(
        "; got expression, did: to require both, write and: [{expression: …}, {did: …}]")


# ---------------------------------------------------------------- over HTTP

QUERY = """query($filter: SegmentFilter) { profiles(filter: $filter) { totalCount } }"""
WANTED = f"{TAKES}; got did, profile: to require both, write and: [{{did: …}}, {{profile: …}}]"


async def test_http_names_the_keys_of_a_literal(gql: Any) -> None:
    error = await gql.error('{ profiles(filter: {did: {metric: "Placed Order"}, '
                            'profile: {property: "email", op: EQ, value: "a@x"}}) { totalCount } }')
    assert (error["extensions"]["code"], error["path"]) == ("BAD_USER_INPUT", ["profiles"])
    assert error["message"] == WANTED


async def test_http_names_the_keys_of_a_variable(gql: Any) -> None:
    error = await gql.error(QUERY, {"filter": {"did": DID, "profile": PROFILE}})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "inputPath": ["filter"]}
    assert error["message"] == WANTED


async def test_http_refuses_both_with_bad_user_input(gql: Any) -> None:
    """The code, the place, and the type named, for a literal and a variable."""
    literal = await gql.error('{ profiles(filter: {did: {metric: "Placed Order"}, inSegment: "1"}) { totalCount } }')
    variable = await gql.error(QUERY, {"filter": {"did": DID, "profile": PROFILE}})
    for error in (literal, variable):
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["path"] == ["profiles"]
        assert "SegmentFilter" in error["message"]
    assert variable["extensions"]["inputPath"] == ["filter"]
