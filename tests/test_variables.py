"""Compiled variable coercion (schema/variables.py) against graphql-core's own, on every input type of the schema."""

from __future__ import annotations

import re
from typing import Any

import graphql.execution.executor as graphql_executor
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    parse,
)
from graphql.execution.values import input_is_nested_too_deeply
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.type import is_required_input_field
from graphql.utilities import coerce_input_value
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schema import schema, variables

GRAPHQL_SCHEMA = schema._schema
INPUT_OBJECTS = sorted(
    (t for name, t in GRAPHQL_SCHEMA.type_map.items() if isinstance(t, GraphQLInputObjectType) and not name.startswith("__")),
    key=lambda t: t.name,
)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
DATETIMES = st.sampled_from(["2026-11-20T14:30:00+02:00", "2026-01-01T00:00:00Z", "2026-01-01", "yesterday", ""])


def leaf_values(type_: GraphQLScalarType | GraphQLEnumType) -> st.SearchStrategy[Any]:
    """Values of a leaf type, three times in four of its own kind."""
    if isinstance(type_, GraphQLEnumType):
        own: st.SearchStrategy[Any] = st.sampled_from(sorted(type_.values)) | st.text(max_size=4)
    else:
        own = {
            "DateTime": DATETIMES, "JSON": JSON_VALUE, "Int": st.integers(-2**40, 2**40),
            "Float": st.floats(allow_nan=False), "Boolean": st.booleans(),
        }.get(type_.name, st.text(max_size=8))
    return st.one_of(own, own, own, JSON_LEAF)


def values_of(type_: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like `type_` (mostly valid), with nulls, wrong kinds and unknown fields mixed in."""
    if isinstance(type_, GraphQLNonNull):
        return values_of(type_.of_type, depth)
    if depth > 4:
        return st.none()
    if isinstance(type_, GraphQLList):
        item = values_of(type_.of_type, depth + 1)
        return st.none() | st.lists(item, max_size=3) | item
    if isinstance(type_, GraphQLInputObjectType):
        fields = {name: values_of(field.type, depth + 1) for name, field in type_.fields.items()}
        if is_one_of(type_):
            shaped = st.one_of([st.fixed_dictionaries({name: values}) for name, values in fields.items()])
        else:
            required = {name for name, field in type_.fields.items() if is_required_input_field(field)}
            shaped = st.fixed_dictionaries({name: fields[name] for name in required},
                                           optional={name: v for name, v in fields.items() if name not in required})
        loose = st.fixed_dictionaries({}, optional=fields)  # missing required fields, several oneOf fields
        unknown = st.dictionaries(st.text(max_size=3), JSON_LEAF, max_size=1)
        with_unknown = st.builds(lambda known, extra: {**known, **extra}, shaped, unknown)
        return st.one_of(shaped, shaped, shaped, shaped, loose, st.none(), with_unknown, JSON_LEAF)
    assert isinstance(type_, GraphQLScalarType | GraphQLEnumType)
    return leaf_values(type_)


def is_one_of(type_: GraphQLInputObjectType) -> bool:
    # Strawberry enforces @oneOf itself and records it on its own type definition.
    return bool(type_.is_one_of or getattr(type_.extensions.get("strawberry-definition"), "is_one_of", False))


def wrappings(named: GraphQLInputObjectType) -> list[GraphQLInputType]:
    return [named, GraphQLNonNull(named), GraphQLList(GraphQLNonNull(named)),
            GraphQLNonNull(GraphQLList(GraphQLNonNull(named)))]


def typed_values() -> st.SearchStrategy[tuple[GraphQLInputType, Any]]:
    types = [wrapped for named in INPUT_OBJECTS for wrapped in wrappings(named)]
    return st.sampled_from(types).flatmap(lambda t: st.tuples(st.just(t), values_of(t)))


@settings(max_examples=300)
@given(typed_values())
def test_compiled_coercion_accepts_what_graphql_core_accepts_and_builds_the_same_value(typed: tuple[Any, Any]) -> None:
    type_, value = typed
    try:
        expected = coerce_input_value(value, type_)
    except GraphQLError as refused:  # an input type's own check (Strawberry's @oneOf): raised alike
        with pytest.raises(GraphQLError, match=re.escape(refused.message)):
            variables.coercer(type_)(value, 0)
        return
    got = variables.coercer(type_)(value, 0)
    if expected is Undefined:
        assert got is Undefined
    else:
        assert got == expected
        assert type(got) is type(expected)


def test_the_executor_coerces_variables_with_the_compiled_coercers() -> None:
    assert graphql_executor.get_variable_values is variables.get_variable_values


TRACK = "mutation($events: [TrackEventInput!]!, $note: String) { trackEvents(events: $events) { accepted } }"
EVENT = {"metric": "Placed Order", "profile": {"email": "a@x"}, "occurredAt": "2026-01-01T00:00:00Z",
         "properties": {"total": 3}}


def nested_filter(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"profile": {"property": "email", "op": "EXISTS"}}
    for _ in range(levels):
        node = {"not": node}
    return node


@pytest.mark.parametrize("query,inputs", [
    (TRACK, {"events": [EVENT, EVENT]}),
    (TRACK, {"events": [EVENT], "note": None}),
    (TRACK, {"events": EVENT}),  # a single value for a list
    (TRACK, {}),  # missing
    (TRACK, {"events": [EVENT, {**EVENT, "metric": None}]}),
    (TRACK, {"events": [{**EVENT, "occurredAt": "soon"}]}),
    (TRACK, {"events": [{**EVENT, "colour": "red"}]}),
    ("query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }", {"f": nested_filter(3)}),
    ("query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }", {"f": nested_filter(MAX_NESTING_DEPTH)}),
    ("query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }", {"f": nested_filter(MAX_NESTING_DEPTH + 5)}),
    ("query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }", {"f": {**nested_filter(1), "inSegment": "1"}}),
    ("query($n: Int = 5) { profiles(first: $n) { totalCount } }", {}),  # a default
    ("query($n: Int = 5) { profiles(first: $n) { totalCount } }", {"n": 2**40}),
])
def test_variable_values_are_those_of_graphql_core(query: str, inputs: dict[str, Any]) -> None:
    definitions = parse(query).definitions[0].variable_definitions  # type: ignore[attr-defined]
    ours = variables.get_variable_values(GRAPHQL_SCHEMA, definitions, inputs)
    theirs = variables.graphql_get_variable_values(GRAPHQL_SCHEMA, definitions, inputs)
    if isinstance(theirs, list):
        assert isinstance(ours, list)
        assert [e.message for e in ours] == [e.message for e in theirs]
    else:
        assert not isinstance(ours, list)
        assert ours.coerced == theirs.coerced
        assert {k: s.value for k, s in ours.sources.items()} == {k: s.value for k, s in theirs.sources.items()}


@example(levels=MAX_NESTING_DEPTH - 2)
@example(levels=MAX_NESTING_DEPTH - 1)
@given(st.integers(0, MAX_NESTING_DEPTH + 20))
def test_depth_is_judged_as_graphql_core_judges_it(levels: int) -> None:
    type_ = GraphQLNonNull(GRAPHQL_SCHEMA.type_map["SegmentFilter"])
    value = nested_filter(levels)
    try:
        got = variables.coercer(type_)(value, 0)
    except variables._TooDeep:
        got = Undefined
    too_deep = input_is_nested_too_deeply(value, type_)
    assert (got is Undefined) == too_deep
    if not too_deep:
        assert got == coerce_input_value(value, type_)
