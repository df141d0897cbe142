"""Compiled variable coercion (schema/variables.py) against graphql-core's own, on every input type of the schema."""

from __future__ import annotations

import re
from typing import Any

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


async def test_the_executor_coerces_variables_with_the_compiled_coercers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema's executor (SchemaExecutionContext) coerces through `variables.get_variable_values`: valid
    values never reach graphql-core's walk, invalid ones get graphql-core's own errors."""
    graphql_core = variables.graphql_get_variable_values
    fallbacks: list[bool] = []

    def fallback(*args: Any) -> Any:
        fallbacks.append(True)
        return graphql_core(*args)

    monkeypatch.setattr(variables, "graphql_get_variable_values", fallback)
    query = "query($f: SegmentFilter!) { explain(filter: $f) }"
    await schema.execute(query, {"f": nested_filter(3)})  # the resolver fails without a store, after coercion
    assert fallbacks == []
    refused = await schema.execute(query, {"f": {"colour": "red"}})
    assert fallbacks == [True]
    assert refused.errors is not None
    assert refused.errors[0].message.startswith("Variable '$f' has invalid value")


TRACK = "mutation($events: [TrackEventInput!]!, $note: String) { trackEvents(events: $events) { accepted } }"
EVENT = {"metric": "Placed Order", "profile": {"email": "a@x"}, "occurredAt": "2026-01-01T00:00:00Z",
         "properties": {"total": 3}}


def nested_filter(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"profile": {"property": "email", "op": "EXISTS"}}
    for _ in range(levels):
        node = {"not": node}
    return node


def nested_and(levels: int) -> dict[str, Any]:
    """`and` lists nested `levels` deep, the innermost null (two levels of depth each)."""
    node: dict[str, Any] = {"and": None}
    for _ in range(levels):
        node = {"and": [node]}
    return node


def not_nested_and(levels: int) -> dict[str, Any]:
    """nested_and one level deeper: its null list at an even depth, where the limit (200) falls."""
    return {"not": nested_and(levels)}


FILTER_QUERY = "query($f: SegmentFilter!) { profiles(filter: $f) { totalCount } }"


@pytest.mark.parametrize("query,inputs,compiled", [
    (TRACK, {"events": [EVENT, EVENT]}, True),
    (TRACK, {"events": [EVENT], "note": None}, True),
    (TRACK, {"events": EVENT}, True),  # a single value for a list
    (TRACK, {}, False),  # missing
    ("query($n: Int) { profiles(first: $n) { totalCount } }", {}, True),  # a nullable one left out
    (TRACK, {"events": [EVENT, {**EVENT, "metric": None}]}, False),
    (TRACK, {"events": [{**EVENT, "occurredAt": "soon"}]}, False),
    (TRACK, {"events": [{**EVENT, "colour": "red"}]}, False),
    (FILTER_QUERY, {"f": nested_filter(3)}, True),
    (FILTER_QUERY, {"f": nested_filter(MAX_NESTING_DEPTH)}, False),
    (FILTER_QUERY, {"f": nested_filter(MAX_NESTING_DEPTH + 5)}, False),
    (FILTER_QUERY, {"f": nested_and(MAX_NESTING_DEPTH // 2)}, False),
    (FILTER_QUERY, {"f": {**nested_filter(1), "inSegment": "1"}}, False),
    ("query($n: Int = 5) { profiles(first: $n) { totalCount } }", {}, False),  # a default
    ("query($n: Int = 5) { profiles(first: $n) { totalCount } }", {"n": 2**40}, False),
])
def test_variable_values_are_those_of_graphql_core(
    query: str, inputs: dict[str, Any], compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    definitions = parse(query).definitions[0].variable_definitions  # type: ignore[attr-defined]
    graphql_core = variables.graphql_get_variable_values
    theirs = graphql_core(GRAPHQL_SCHEMA, definitions, inputs)
    fallbacks: list[bool] = []

    def fallback(*args: Any) -> Any:
        fallbacks.append(True)
        return graphql_core(*args)

    monkeypatch.setattr(variables, "graphql_get_variable_values", fallback)
    ours = variables.get_variable_values(GRAPHQL_SCHEMA, definitions, inputs)
    assert fallbacks == ([] if compiled else [True])  # valid values never take graphql-core's path
    if isinstance(theirs, list):
        assert isinstance(ours, list)
        assert [e.message for e in ours] == [e.message for e in theirs]
    else:
        assert not isinstance(ours, list)
        assert ours.coerced == theirs.coerced
        assert {k: s.value for k, s in ours.sources.items()} == {k: s.value for k, s in theirs.sources.items()}


@example(levels=MAX_NESTING_DEPTH - 2, nest=nested_filter)
@example(levels=MAX_NESTING_DEPTH - 1, nest=nested_filter)
@example(levels=MAX_NESTING_DEPTH // 2 - 1, nest=nested_and)
@example(levels=MAX_NESTING_DEPTH // 2, nest=nested_and)
@example(levels=MAX_NESTING_DEPTH // 2 - 1, nest=not_nested_and)  # the null list exactly at the limit
@given(st.integers(0, MAX_NESTING_DEPTH + 20), st.sampled_from([nested_filter, nested_and, not_nested_and]))
def test_depth_is_judged_as_graphql_core_judges_it(levels: int, nest: Any) -> None:
    type_ = GraphQLNonNull(GRAPHQL_SCHEMA.type_map["SegmentFilter"])
    value = nest(levels)
    if input_is_nested_too_deeply(value, type_):
        with pytest.raises(variables._TooDeep):
            variables.coercer(type_)(value, 0)
    else:
        assert outcome(variables.coercer(type_), value, 0) == outcome(coerce_input_value, value, type_)


def outcome(coerce: Any, *args: Any) -> Any:
    """A coercion's value, or the message of the GraphQLError it raised (Strawberry's @oneOf check raises)."""
    try:
        return coerce(*args)
    except GraphQLError as error:
        return ("raised", error.message)
