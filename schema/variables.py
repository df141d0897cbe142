"""Variable coercion compiled once per input type, with graphql-core's own coercion as the fallback.

graphql-core coerces a variable by walking its type at every value (is it non-null? a list? an input
object?) and first walks the whole value once more to check its depth, a sizeable part of a
trackEvents request (docs/performance.md). Here each input type becomes a tree of small functions
that follows the value only, checking the depth on the way. They accept exactly what graphql-core
accepts and build the same values; anything else (a missing or invalid variable, a default to apply,
a value nested too deeply) is handed to graphql-core unchanged, so every error is graphql-core's
own. The schema's executor (schema/execution.py, SchemaExecutionContext.build) coerces an
operation's variables with `get_variable_values` below.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    Undefined,
    VariableDefinitionNode,
)
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.execution.values import VariableValues, VariableValuesOrErrors, VariableValueSource
from graphql.execution.values import get_variable_values as graphql_get_variable_values
from graphql.language.parser import MAX_NESTING_DEPTH
from graphql.pyutils import is_iterable
from graphql.type import is_required_input_field
from graphql.utilities.coerce_input_value import coerce_default_value

# A coercer takes a value and its depth (graphql-core's: one more per list item and input field)
# and returns the coerced value, or Undefined when graphql-core must judge it.
Coercer = Callable[[Any, int], Any]


class _TooDeep(Exception):
    """A value lies deeper than graphql-core accepts: it reports that itself."""


def get_variable_values(
    schema: GraphQLSchema,
    var_def_nodes: Collection[VariableDefinitionNode],
    inputs: dict[str, Any],
    max_errors: int | None = None,
    hide_suggestions: bool = False,
) -> VariableValuesOrErrors:
    """graphql-core's `get_variable_values`, with every provided valid variable coerced by compiled functions."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for node in var_def_nodes:
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            break
        value = inputs.get(signature.name, Undefined)
        if value is Undefined:  # left out: fine for a nullable variable without a default
            if node.default_value is not None or isinstance(signature.type, GraphQLNonNull):
                break
            sources[signature.name] = VariableValueSource(signature)
            continue
        try:
            result = coercer(signature.type)(value, 0)
        except (_TooDeep, RecursionError, GraphQLError):  # a GraphQLError: an input type's own refusal (out_type)
            break
        if result is Undefined:
            break
        sources[signature.name] = VariableValueSource(signature, value)
        coerced[signature.name] = result
    else:
        return VariableValues(sources, coerced)
    return graphql_get_variable_values(schema, var_def_nodes, inputs, max_errors, hide_suggestions)


_COERCERS: dict[Any, Coercer] = {}


def coercer(type_: GraphQLInputType) -> Coercer:
    """The compiled coercer of an input type (built once; input objects may refer to themselves)."""
    key = _type_key(type_)
    found = _COERCERS.get(key)
    if found is None:
        found = _COERCERS[key] = _compile(type_)
    return found


def _type_key(type_: GraphQLInputType) -> Any:
    # Wrapping types are built anew for each variable definition: they are known by what they wrap.
    if isinstance(type_, GraphQLNonNull):
        return ("!", _type_key(type_.of_type))
    if isinstance(type_, GraphQLList):
        return ("[]", _type_key(type_.of_type))
    return type_


def _compile(type_: GraphQLInputType) -> Coercer:
    # Null is decided inside each coercer (one call per value, not one per wrapping type).
    nullable = not isinstance(type_, GraphQLNonNull)
    named_or_list = type_ if nullable else type_.of_type  # type: ignore[union-attr]
    if isinstance(named_or_list, GraphQLList):
        return _list(coercer(named_or_list.of_type), nullable)
    if isinstance(named_or_list, GraphQLInputObjectType):
        return _input_object(named_or_list, nullable)
    return _leaf(named_or_list.coerce_input_value, nullable)  # type: ignore[union-attr]


def _list(item: Coercer, nullable: bool) -> Coercer:
    def coerce(value: Any, depth: int) -> Any:
        # Before null: graphql-core's depth walk takes a null, like any single value, as a list of one.
        depth += 1
        if depth > MAX_NESTING_DEPTH:
            raise _TooDeep
        if value is None or value is Undefined:
            return None if nullable else Undefined
        if not is_iterable(value):  # a single value stands for a list of one
            single = item(value, depth)
            return Undefined if single is Undefined else [single]
        items = []
        for each in value:
            coerced = item(each, depth)
            if coerced is Undefined:
                return Undefined
            items.append(coerced)
        return items
    return coerce


def _input_object(type_: GraphQLInputObjectType, nullable: bool) -> Coercer:
    # Built on first use: the fields of a recursive input type refer back to it.
    plan: list[tuple[str, str, bool, Any, Coercer]] = []

    def build() -> None:
        for name, field in type_.fields.items():
            required = is_required_input_field(field)
            default = Undefined if required else coerce_default_value(field)  # graphql-core memoizes it too
            plan.append((name, field.out_name or name, required, default, coercer(field.type)))

    def coerce(value: Any, depth: int) -> Any:
        if value is None or value is Undefined:
            return None if nullable else Undefined
        if not isinstance(value, dict):
            return Undefined
        if not plan:
            build()
        # A field the type lacks (graphql-core names it); compared as key sets first, in C.
        if not value.keys() <= type_.fields.keys() and any(
            given is not Undefined for name, given in value.items() if name not in type_.fields
        ):
            return Undefined
        depth += 1
        if depth > MAX_NESTING_DEPTH and any(given is not Undefined for given in value.values()):
            raise _TooDeep
        result: dict[str, Any] = {}
        given_fields = 0
        for name, out_name, required, default, coerce_field in plan:
            given = value.get(name, Undefined)
            if given is Undefined:
                if required:
                    return Undefined
                if default is not Undefined:
                    result[out_name] = default
                continue
            given_fields += 1
            coerced = coerce_field(given, depth)
            if coerced is Undefined:
                return Undefined
            result[out_name] = coerced
        if type_.is_one_of and (given_fields != 1 or len(result) != 1 or next(iter(result.values())) is None):
            return Undefined
        return type_.out_type(result)

    return coerce


def _leaf(coerce_input_value: Callable[[Any], Any], nullable: bool) -> Coercer:
    def coerce(value: Any, _depth: int) -> Any:
        if value is None or value is Undefined:
            return None if nullable else Undefined
        try:
            return coerce_input_value(value)
        except Exception:  # graphql-core's rule: a refused value is no value
            return Undefined
    return coerce
