"""The schema explains itself: every type, field, argument, input field and enum value the server serves has a
description (GraphiQL's docs explorer shows them), read through introspection over HTTP."""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient

DESCRIBED = """{ __schema { types {
  name description
  fields(includeDeprecated: true) { name description args { name description } }
  inputFields { name description }
  enumValues(includeDeprecated: true) { name description }
} } }"""
# GraphQL's own scalars, described by the spec rather than by this schema.
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def undescribed(types: list[dict[str, Any]]) -> list[str]:
    """Where a description is missing or blank, as Type, Type.field, Type.field(argument) or Type.VALUE."""
    missing: list[str] = []

    def check(where: str, item: dict[str, Any]) -> None:
        if not (item["description"] or "").strip():
            missing.append(where)

    for kind in types:
        name = kind["name"]
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        check(name, kind)
        for field in kind["fields"] or ():
            check(f"{name}.{field['name']}", field)
            for argument in field["args"]:
                check(f"{name}.{field['name']}({argument['name']})", argument)
        for field in kind["inputFields"] or ():
            check(f"{name}.{field['name']}", field)
        for value in kind["enumValues"] or ():
            check(f"{name}.{value['name']}", value)
    return missing


async def test_every_part_of_the_schema_is_described(gql: GraphQLClient) -> None:
    types = (await gql.data(DESCRIBED))["__schema"]["types"]
    assert len(types) > 30
    assert undescribed(types) == []


async def test_the_filter_input_teaches_the_language(gql: GraphQLClient) -> None:
    """SegmentFilter states the @oneOf rule and shows the text language; windows state which ends they include."""
    types = {kind["name"]: kind for kind in (await gql.data(DESCRIBED))["__schema"]["types"]}
    segment_filter = types["SegmentFilter"]["description"]
    assert "exactly one key" in segment_filter and "and: [...]" in segment_filter
    assert 'did \\"Placed Order\\" at least 2 times in the last 30 days' in segment_filter
    windows = {field["name"]: field["description"] for field in types["TimeWindow"]["inputFields"]}
    assert "both ends included" in windows["lastDays"] and "excluded" in windows["before"]
    assert "to excluded" in types["DateRange"]["description"]
