"""Execution with a fast path for objects whose selected fields are all plain attributes.

A page of a thousand profiles asks for a few thousand leaf fields; graphql-core executes each one
with its own resolve info, path and completion, which bounded paging (docs/performance.md). When
every field selected on an object is a leaf read straight from an attribute (Strawberry's basic
fields) or `__typename`, the object is built in one loop with the same resolver and the same scalar
serialisation. Anything unusual (a null in a non-null field, a value that does not serialise,
resolver middleware) takes graphql-core's own path, which reports it exactly as before.

`SchemaExecutionContext` (the schema's `execution_context_class`) adds, through graphql-core's
own extension points (its executor's `build`, and the middleware manager that hands it each
field's resolver): variables coerced by compiled functions (schema/variables.py), and fields
whose resolvers take their arguments as graphql-core coerced them (`COERCED_ARGUMENTS`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    MiddlewareManager,
    OperationDefinitionNode,
    Undefined,
    assert_valid_schema,
    default_field_resolver,
    default_type_resolver,
    is_leaf_type,
)
from graphql.execution.collect_fields import FragmentDetails, GroupedFieldSet
from graphql.execution.get_variable_signature import get_variable_signature
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.context import Context
from schema.extensions.errors import GRAPHQL_VALIDATION_FAILED, variable_errors
from schema.variables import get_variable_values

# (response name, read the value from the source, serialise it, may it be null, is a str already its
# own serialisation (String and ID)); a read of None stands for `__typename`, the parent type's name.
PlainField = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any], bool, bool]
TEXT_SERIALIZERS = (GraphQLString.serialize, GraphQLID.serialize)
# A field's Strawberry metadata: its resolver takes the arguments as graphql-core coerced them (input
# objects as dicts keyed by GraphQL names, as `plain` gives them), not converted into Strawberry's input
# classes; SchemaExecutionContext calls it directly. `strawberry.argument(graphql_type=...)` keeps each
# argument's schema type while its annotation says what the resolver receives.
COERCED_ARGUMENTS = "segmentql.coerced_arguments"


class SerializedList(list[Any]):
    """A list field's value already written as JSON text, e.g. by the database: its items are in `json`,
    not in the list, and the response carries the text as it is."""

    def __init__(self, json: str) -> None:
        super().__init__()
        self.json = json


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with objects of plain leaf fields completed in one loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed by the identity of the grouped field set, which graphql-core memoises per selection;
        # the set is kept in the value so that its id cannot be reused while this request runs.
        self._plain_plans: dict[tuple[str, int], tuple[GroupedFieldSet, list[PlainField] | None]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plain_plan(parent_type, grouped_field_set)
        if plan is not None:
            completed = _complete_plain(plan, parent_type, source_value)
            if completed is not None:
                return completed
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        if isinstance(items, SerializedList):
            return orjson.Fragment(items.json)  # written into the response by orjson (GraphQLView.encode_json)
        completed = self._complete_plain_list(item_type, field_details_list, path, items, position_context)
        if completed is not None:
            return completed
        return super().complete_iterable_value(item_type, field_details_list, info, path, items, position_context)

    def _complete_plain_list(
        self, item_type: GraphQLOutputType, field_details_list: Any, path: Path, items: Iterable[Any], position_context: Any
    ) -> list[Any] | None:
        """A list of plain objects completed in one loop, or None when graphql-core must do it."""
        nullable = not isinstance(item_type, GraphQLNonNull)
        object_type = item_type if nullable else item_type.of_type  # type: ignore[union-attr]
        if (not isinstance(items, list) or not isinstance(object_type, GraphQLObjectType) or object_type.is_type_of
                or position_context is not None or self.get_stream_usage(field_details_list, path)):
            return None
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        plan = None if new_defer_usages else self._plain_plan(object_type, grouped_field_set)
        if plan is None:
            return None
        completed: list[Any] = []
        for item in items:
            value = None if item is None else _complete_plain(plan, object_type, item)
            if value is None and (item is not None or not nullable):
                return None
            completed.append(value)
        return completed

    def _plain_plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[PlainField] | None:
        key = (parent_type.name, id(grouped_field_set))
        cached = self._plain_plans.get(key)
        if cached is None:
            cached = (grouped_field_set, self._build_plan(parent_type, grouped_field_set))
            self._plain_plans[key] = cached
        return cached[1]

    def _build_plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[PlainField] | None:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return None
        plan: list[PlainField] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            name = node.name.value
            if name == "__typename":
                plan.append((response_name, None, str, False, False))
                continue
            field = parent_type.fields.get(name)
            if field is None or field.args or node.arguments or not getattr(field.resolve, "_is_default", False):
                return None
            field_type = field.type
            nullable = not isinstance(field_type, GraphQLNonNull)
            leaf = field_type if nullable else field_type.of_type
            if not is_leaf_type(leaf):
                return None
            assert isinstance(leaf, GraphQLLeafType)
            plan.append((response_name, _attribute_reader(field), leaf.serialize, nullable,
                         leaf.serialize in TEXT_SERIALIZERS))
        return plan


def _attribute_reader(field: GraphQLField) -> Callable[[Any], Any]:
    """What Strawberry's basic-field resolver does, without its call layers, when it only reads an attribute."""
    definition = field.extensions.get("strawberry-definition")
    if definition is not None and definition.default_resolver is getattr and not definition.extensions:
        return operator.attrgetter(definition.python_name)
    resolve = field.resolve
    assert resolve is not None
    return lambda source: resolve(source, None)


def _complete_plain(plan: list[PlainField], parent_type: GraphQLObjectType, source: Any) -> dict[str, Any] | None:
    """The object's response, or None when a value needs graphql-core's error handling."""
    result: dict[str, Any] = {}
    for response_name, read, serialize, nullable, text in plan:
        if read is None:
            result[response_name] = parent_type.name
            continue
        try:
            value = read(source)
            if value is None:
                if not nullable:
                    return None
                result[response_name] = None
                continue
            if text and type(value) is str:
                result[response_name] = value
                continue
            serialized = serialize(value)
        except Exception:
            return None
        if serialized is None or serialized is Undefined:
            return None
        result[response_name] = serialized
    return result


class SchemaExecutionContext(PlainFieldsExecutionContext):
    """The schema's execution: plain objects in one loop (above), compiled variable coercion, and the
    resolvers of fields marked COERCED_ARGUMENTS called with graphql-core's arguments."""

    @classmethod
    def build(  # type: ignore[override]
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        field_resolver: Any = None,
        type_resolver: Any = None,
        subscribe_field_resolver: Any = None,
        max_coercion_errors: int = 50,
        enable_early_execution: bool = False,
        middleware: Any = None,
        is_awaitable: Any = None,
        is_async_iterable: Any = None,
        hide_suggestions: bool = False,
        abort_signal: Any = None,
        hooks: Any = None,
        **custom_args: Any,
    ) -> list[GraphQLError] | Any:
        """graphql-core's `Executor.build`, coercing variables with schema/variables.py (which hands
        graphql-core every variable it does not accept as is) and resolving fields through `_Resolvers`."""
        assert_valid_schema(schema)
        if isinstance(middleware, list | tuple):
            middlewares: tuple[Any, ...] = tuple(middleware)
        elif isinstance(middleware, MiddlewareManager):
            middlewares = middleware.middlewares
        elif middleware is None:
            middlewares = ()
        else:
            raise TypeError(f"middleware must be a list or tuple of middleware, or a MiddlewareManager: {middleware!r}")

        operation: OperationDefinitionNode | None = None
        fragment_definitions: dict[str, FragmentDefinitionNode] = {}
        fragments: dict[str, FragmentDetails] = {}
        signature_errors: list[GraphQLError] = []
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                if operation_name is None:
                    if operation:
                        return [_refused("Must provide operation name if query contains multiple operations.")]
                    operation = definition
                elif definition.name and definition.name.value == operation_name:
                    operation = definition
            elif isinstance(definition, FragmentDefinitionNode):
                fragment_definitions[definition.name.value] = definition
                signatures = None
                if definition.variable_definitions:
                    signatures = {}
                    for variable in definition.variable_definitions:
                        signature = get_variable_signature(schema, variable)
                        if isinstance(signature, GraphQLError):
                            signature_errors.append(signature)
                            continue
                        signatures[signature.name] = signature
                fragments[definition.name.value] = FragmentDetails(definition, signatures)
        if not operation:
            if operation_name is not None:
                return [_refused(f"Unknown operation named '{operation_name}'.")]
            return [_refused("Must provide an operation.")]
        if signature_errors:
            return signature_errors

        variable_values = get_variable_values(schema, operation.variable_definitions or (), raw_variable_values or {},
                                              max_coercion_errors, hide_suggestions)
        if isinstance(variable_values, list):  # errors: placed in the arguments, with their code
            return variable_errors(schema, document, raw_variable_values or {}, variable_values)
        if isinstance(context_value, Context):
            context_value.executed = True
        return cls(
            schema, fragment_definitions, fragments, root_value, context_value, operation, variable_values,
            field_resolver or default_field_resolver, type_resolver or default_type_resolver,
            subscribe_field_resolver or default_field_resolver, enable_early_execution,
            _Resolvers(_coerced_argument_resolvers(schema), *middlewares), is_awaitable, is_async_iterable,
            hide_suggestions=hide_suggestions, abort_signal=abort_signal, hooks=hooks, **custom_args,
        )


def _refused(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": GRAPHQL_VALIDATION_FAILED})


class _Resolvers(MiddlewareManager):
    """graphql-core's middleware manager (the middleware is Strawberry's: extensions with a `resolve`
    hook), handing out for a field marked COERCED_ARGUMENTS its own resolver in place of Strawberry's."""

    def __init__(self, direct: Mapping[Any, Callable[..., Any]], *middlewares: Any) -> None:
        super().__init__(*middlewares)
        self.direct = direct

    def get_field_resolver(self, field_resolver: Any) -> Any:
        return super().get_field_resolver(self.direct.get(field_resolver, field_resolver))


@functools.lru_cache(maxsize=16)
def _coerced_argument_resolvers(schema: GraphQLSchema) -> dict[Any, Callable[..., Any]]:
    """For each field marked COERCED_ARGUMENTS: Strawberry's resolver of it → its resolver called directly."""
    strawberry_schema = schema.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    found: dict[Any, Callable[..., Any]] = {}
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for field in type_.fields.values():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if isinstance(definition, StrawberryField) and definition.metadata.get(COERCED_ARGUMENTS):
                found[field.resolve] = _direct_resolver(strawberry_schema, definition)
    return found


def _direct_resolver(strawberry_schema: Any, field: StrawberryField) -> Callable[..., Any]:
    """The field's resolver as graphql-core calls a resolver: (source, info, **arguments by GraphQL name)."""
    resolver = field.base_resolver
    if resolver is None or field.extensions or resolver.root_parameter or resolver.parent_parameter:
        raise TypeError(f"{field.python_name}: {COERCED_ARGUMENTS} needs a resolver taking self, info and "
                        "arguments, and no field extensions")
    config = strawberry_schema.config
    python_names = {config.name_converter.from_argument(argument): argument.python_name for argument in field.arguments}
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    takes_self = resolver.self_parameter is not None

    def resolve(source: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        kwargs = {python_names[name]: value for name, value in arguments.items()}
        if info_name is not None:
            kwargs[info_name] = config.info_class(_raw_info=info, _field=field)
        return resolver(source, **kwargs) if takes_self else resolver(**kwargs)

    return resolve
