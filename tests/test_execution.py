"""The fast path for plain objects (schema/execution.py) answers exactly as graphql-core's own execution."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import COERCED_ARGUMENTS, PlainFieldsExecutionContext, SchemaExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    note: str | None
    colour: Colour
    size: int

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def _item(index: int, **overrides: Any) -> Item:
    values: dict[str, Any] = {"id": strawberry.ID(str(index)), "name": f"item {index}", "note": None,
                              "colour": Colour.RED, "size": index}
    values.update(overrides)
    return Item(**values)


GOOD = [_item(i, note="n" if i % 2 else None) for i in range(5)]
# A null where the schema promises a value, a value its scalar cannot serialise, a wrong enum value;
# and values that are not yet what their scalar sends (an int in a String, an int ID).
BROKEN: dict[str, list[Item]] = {
    "null in a non-null field": [_item(0), _item(1, name=None), _item(2)],
    "ints in String and ID fields": [_item(0, name=7, id=3), _item(1, note=2.5)],
    "unserialisable int": [_item(0), _item(1, size="many")],
    "unknown enum value": [_item(0, colour="green")],
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, case: str | None = None) -> list[Item]:
        return BROKEN[case] if case else GOOD

    @strawberry.field
    def maybe_items(self, case: str | None = None) -> list[Item | None]:
        return [None, *(BROKEN[case] if case else GOOD)]

    @strawberry.field
    def one(self) -> Item:
        return GOOD[1]


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    fast = strawberry.Schema(query=Query, execution_context_class=PlainFieldsExecutionContext)
    plain = strawberry.Schema(query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    return fast, plain


QUERIES = [
    "{ items { id name note colour size } }",
    "{ items { __typename id n: name name again: name } }",
    "{ items { id shout } }",  # a resolver field: the whole object takes graphql-core's path
    "{ items { ...Bits } } fragment Bits on Item { id note }",
    "query($no: Boolean!) { items { id name @skip(if: $no) size @include(if: $no) } }",
    "{ maybeItems { id name } }",
    "{ one { id colour } items { id } }",
    *(f'{{ items(case: "{case}") {{ id name size colour }} }}' for case in BROKEN),
    *(f'{{ maybeItems(case: "{case}") {{ id name size colour }} }}' for case in BROKEN),
]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_fast_path_answers_like_graphql_core(query: str) -> None:
    fast, plain = _schemas()
    fast_result = await fast.execute(query, variable_values={"no": True})
    plain_result = await plain.execute(query, variable_values={"no": True})
    assert fast_result.data == plain_result.data
    assert [error.formatted for error in fast_result.errors or []] == \
        [error.formatted for error in plain_result.errors or []]


async def test_a_broken_item_reports_its_own_path() -> None:
    fast, _ = _schemas()
    result = await fast.execute('{ maybeItems(case: "null in a non-null field") { id name } }')
    assert result.errors is not None and result.errors[0].path == ["maybeItems", 2, "name"]
    assert result.data == {"maybeItems": [None, {"id": "0", "name": "item 0"}, None, {"id": "2", "name": "item 2"}]}


def test_plain_objects_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the point of the module: a list of plain objects is not executed field by field."""
    calls: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_field

    def counting(self: Any, parent_type: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(parent_type.name)
        return original(self, parent_type, *args, **kwargs)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_field", counting)
    fast, _ = _schemas()
    result = fast.execute_sync("{ items { id name note colour size } }")
    assert result.errors is None and len(result.data["items"]) == len(GOOD)  # type: ignore[index]
    assert calls == ["Query"]


@strawberry.input
class Part:
    name: str
    size: int = 1


@strawberry.type
class Mutation:
    @strawberry.mutation(metadata={COERCED_ARGUMENTS: True})
    def take_coerced(
        self, info: strawberry.Info, parts: Annotated[list[dict[str, Any]], strawberry.argument(graphql_type=list[Part])],
        label: str | None = None,
    ) -> str:
        assert self is None and info.field_name == "takeCoerced"
        return repr((parts, label))

    @strawberry.mutation
    def take_converted(self, parts: list[Part]) -> str:
        return repr(parts)


async def test_a_field_marked_coerced_arguments_gets_graphql_cores_values_in_its_own_resolver() -> None:
    schema = strawberry.Schema(query=Query, mutation=Mutation, execution_context_class=SchemaExecutionContext)
    assert "takeCoerced(parts: [Part!]!, label: String = null): String!" in schema.as_str()
    result = await schema.execute('mutation($p: [Part!]!) { takeCoerced(parts: $p, label: "x") '
                                  'takeConverted(parts: [{name: "b"}]) }', {"p": [{"name": "a", "size": 2}, {"name": "c"}]})
    assert result.errors is None
    assert result.data == {"takeCoerced": repr(([{"name": "a", "size": 2}, {"name": "c", "size": 1}], "x")),
                           "takeConverted": repr([Part(name="b", size=1)])}
    refused = await schema.execute('mutation { takeCoerced(parts: [{size: 2}]) }')
    assert refused.errors is not None and "name" in refused.errors[0].message  # graphql-core's own checks
