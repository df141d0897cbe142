"""The error policy: every error leaves with `extensions.code`; unexpected ones are masked and logged.

Errors carry their code from where they are raised:

- the project's exceptions (resolvers/errors.py: UserInputError and its kinds) hold it as `code`, and
  graphql-core copies their `extensions` into the GraphQL error;
- a validation error holds the code of the rule that reported it (`coded_rule`): bad values of
  arguments (graphql-core's ValuesOfCorrectTypeRule, Strawberry's @oneOf and Maybe rules) are
  BAD_USER_INPUT, placed at the root field they belong to; the limits' rules are QUERY_TOO_COMPLEX
  (schema/limits.py); every other rule's errors are GRAPHQL_VALIDATION_FAILED;
- the parser's errors (schema/limits.py: GRAPHQL_PARSE_FAILED, or QUERY_TOO_COMPLEX at the token
  limit), the cost limit's, and the variables' (`variable_errors`, from the executor's build: BAD_USER_INPUT
  at the root field whose argument the variable is, with `inputPath` inside it) are made with theirs.

`ErrorPolicy`, the first of the schema's extensions, in the style of Strawberry's MaskErrors,
decides what is left: an exception that is not the client's fault (raised in a resolver, or
before execution in an extension) becomes "Internal server error" with a request id, logged with
the same id on the `segmentql` logger; a syntax error is GRAPHQL_PARSE_FAILED; graphql-core's own
refusal of an argument value at execution is BAD_USER_INPUT; anything else GRAPHQL_VALIDATION_FAILED.
A response with errors carries the request id in its top-level `extensions`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLSchema,
    GraphQLSyntaxError,
    Node,
    OperationDefinitionNode,
    Undefined,
    ValidationContext,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_nullable_type,
)
from graphql.utilities import type_from_ast, validate_input_value
from strawberry.exceptions import MissingQueryError, StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from resolvers.language.structured import one_of_message

log = logging.getLogger("segmentql")

BAD_USER_INPUT = "BAD_USER_INPUT"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"

# Strawberry's refusals of a request as a whole, which its views answer with an HTTP error.
_HTTP_REFUSALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def new_request_id() -> str:
    """The id a response with errors carries, and that the server log names its failures with."""
    return uuid.uuid4().hex[:16]


def with_code(error: GraphQLError, code: str, path: list[str] | None = None,
              input_path: list[str | int] | None = None) -> GraphQLError:
    """`error` with `extensions.code` (and `inputPath` when given), at `path` when given."""
    extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
    if input_path:
        extensions["inputPath"] = input_path
    return GraphQLError(error.message, error.nodes, error.source, error.positions, path or error.path,
                        error.original_error, extensions)


class ErrorPolicy(SchemaExtension):
    """Gives every error of an operation its code, masking and logging the unexpected ones."""

    def __init__(self) -> None:
        self.request_id = new_request_id()

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except _HTTP_REFUSALS:
            raise
        except GraphQLError as error:  # raised by an extension (e.g. the parser's): Strawberry reports it
            raise self.decide(error) from None
        except Exception as error:  # a failure before execution
            raise self.decide(GraphQLError(str(error), original_error=error)) from None
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [self.decide(error) for error in result.errors]

    def get_results(self) -> dict[str, Any]:
        # Strawberry keeps the errors of the result here too, for extensions, before it asks for these.
        return {"requestId": self.request_id} if self.execution_context.pre_execution_errors else {}

    def decide(self, error: GraphQLError) -> GraphQLError:
        if (error.extensions or {}).get("code"):
            return error
        original = error.original_error
        # A resolver's failure has a path; a failure outside resolvers (an extension, the context) has
        # neither path nor document nodes (an input value refused by a scalar keeps its nodes).
        if original is not None and not isinstance(original, GraphQLError) and (error.path is not None or not error.nodes):
            log.error("request %s failed at %s", self.request_id, error.path or "(before execution)", exc_info=original)
            return GraphQLError("Internal server error", error.nodes, path=error.path,
                                extensions={"code": INTERNAL_SERVER_ERROR, "requestId": self.request_id})
        if isinstance(error, GraphQLSyntaxError):
            return with_code(error, GRAPHQL_PARSE_FAILED)
        document = self.execution_context.graphql_document
        if error.nodes and isinstance(error.nodes[0], ValueNode) and document is not None:
            # graphql-core refusing an argument's value as it executes a field (e.g. a null variable where
            # the argument cannot be null): placed at the root field, as validation places bad values.
            return with_code(error, BAD_USER_INPUT, root_field(document, error.nodes))
        return with_code(error, GRAPHQL_VALIDATION_FAILED)


# ---------------------------------------------------------------------------------------------- validation


class _RuleContext:
    """The validation context as one rule sees it: what the rule reports is given the rule's code (and,
    for bad input, the root field it lies in as its path). Everything else is the context's own."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        path = root_field(self._context.document, error.nodes) if self._code == BAD_USER_INPUT else None
        self._context.report_error(with_code(error, self._code, path))


_CODED_RULES: dict[tuple[type[ASTValidationRule], str], type[ASTValidationRule]] = {}


def coded_rule(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """`rule`, its errors carrying `code` (one class per rule and code)."""
    coded = _CODED_RULES.get((rule, code))
    if coded is None:
        def __init__(self: ASTValidationRule, context: ValidationContext) -> None:
            rule.__init__(self, _RuleContext(context, code))  # type: ignore[arg-type]

        coded = _CODED_RULES[(rule, code)] = type(rule.__name__, (rule,), {"__init__": __init__, "__doc__": rule.__doc__})
    return coded


def coded_rules(rules: Iterable[type[ASTValidationRule]], codes: Mapping[type[ASTValidationRule], str]) -> list[
        type[ASTValidationRule]]:
    """The rules, each one's errors carrying its code in `codes` (GRAPHQL_VALIDATION_FAILED when it has none)."""
    return [coded_rule(rule, codes.get(rule, GRAPHQL_VALIDATION_FAILED)) for rule in rules]


# ---------------------------------------------------------------------------------------------- placement


def _root_fields(document: DocumentNode) -> Iterator[tuple[OperationDefinitionNode, FieldNode]]:
    """The root fields of every operation of the document, in the document's order."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode) and selection.loc is not None:
                    yield definition, selection


def _response_name(field: FieldNode) -> str:
    return (field.alias or field.name).value


def root_field(document: DocumentNode, nodes: Iterable[Node] | None) -> list[str] | None:
    """The path of the first root field (of any operation) that holds one of `nodes`, if one does."""
    starts = [node.loc.start for node in nodes or () if node.loc]
    if not starts:
        return None
    for _, field in _root_fields(document):
        assert field.loc is not None
        if any(field.loc.start <= start <= field.loc.end for start in starts):
            return [_response_name(field)]
    return None


def variable_errors(schema: GraphQLSchema, document: DocumentNode, inputs: Mapping[str, Any],
                    errors: list[GraphQLError]) -> list[GraphQLError]:
    """graphql-core's refusals of an operation's variables, as BAD_USER_INPUT placed at the root field whose
    argument the variable is (`path`) and where in that argument (`inputPath`).

    A variable's own error names its definition; Strawberry's refusal of a @oneOf input object
    (StrawberryInputCoercionError) names nothing, and is placed at the first @oneOf object of the variables
    that does not hold exactly one value. Others (too many errors) are left to the policy."""
    placed: list[GraphQLError] = []
    paths: dict[str, list[list[str | int]]] = {}
    for error in errors:
        definition = error.nodes[0] if error.nodes else None
        if isinstance(definition, VariableDefinitionNode):
            name = definition.variable.name.value
            if name not in paths:
                paths[name] = _value_error_paths(schema, definition, inputs.get(name, Undefined))
            inner = paths[name].pop(0) if paths[name] else []
            argument = _argument_of_variable(document, name)
            path, input_path = ([argument[0]], [argument[1], *inner]) if argument else (None, None)
            placed.append(with_code(error, BAD_USER_INPUT, path, input_path))
        elif isinstance(error, StrawberryInputCoercionError):
            path, input_path, message = _one_of_violation_place(schema, document, inputs)
            named = GraphQLError(message, error.nodes, original_error=error) if message else error
            placed.append(with_code(named, BAD_USER_INPUT, path, input_path))
        else:
            placed.append(error)
    return placed


def _value_error_paths(schema: GraphQLSchema, definition: VariableDefinitionNode, value: Any) -> list[list[str | int]]:
    """Where inside `value` each of graphql-core's errors about it lies, in the order it reports them."""
    type_ = type_from_ast(schema, definition.type)
    found: list[list[str | int]] = []
    if type_ is not None:
        validate_input_value(value, type_, lambda _error, path: found.append(list(path)))  # type: ignore[arg-type]
    return found


def _argument_of_variable(document: DocumentNode, name: str) -> tuple[str, str] | None:
    """(root field, argument) of the first root field with an argument that is the variable `name`."""
    for _, field in _root_fields(document):
        for argument in field.arguments or ():
            if isinstance(argument.value, VariableNode) and argument.value.name.value == name:
                return _response_name(field), argument.name.value
    return None


def _one_of_violation_place(schema: GraphQLSchema, document: DocumentNode, inputs: Mapping[str, Any]) -> tuple[
        list[str] | None, list[str | int] | None, str | None]:
    """(root field, place in its argument, what the input object takes and was given) of the first @oneOf
    input object in the variables without exactly one value."""
    for operation, field in _root_fields(document):
        root = schema.get_root_type(operation.operation)
        definition = root.fields.get(field.name.value) if root else None
        for argument in field.arguments or ():
            if not isinstance(argument.value, VariableNode) or argument.value.name.value not in inputs:
                continue
            found = definition.args.get(argument.name.value) if definition else None
            inner = _one_of_violation(found.type, inputs[argument.value.name.value], []) if found else None
            if inner is not None:
                path, input_type, value = inner
                given = [key for key, item in value.items() if item is not None]
                message = one_of_message(input_type.name, list(input_type.fields), given)
                return [_response_name(field)], [argument.name.value, *path], message
    return None, None, None


def _one_of_violation(
    input_type: GraphQLInputType, value: Any, path: list[str | int]
) -> tuple[list[str | int], GraphQLInputObjectType, dict[str, Any]] | None:
    """(path, type, value) of the first @oneOf input object in `value` that does not have exactly one field."""
    input_type = get_nullable_type(input_type)  # type: ignore[arg-type,assignment]
    if isinstance(input_type, GraphQLList) and isinstance(value, list):
        for index, item in enumerate(value):
            found = _one_of_violation(input_type.of_type, item, [*path, index])
            if found is not None:
                return found
    if isinstance(input_type, GraphQLInputObjectType) and isinstance(value, dict):
        if _is_one_of(input_type) and sum(v is not None for v in value.values()) != 1:
            return path, input_type, value
        for key, item in value.items():
            if key in input_type.fields:
                found = _one_of_violation(input_type.fields[key].type, item, [*path, key])
                if found is not None:
                    return found
    return None


def _is_one_of(input_type: GraphQLInputObjectType) -> bool:
    # Strawberry enforces @oneOf itself and records it on its own type definition.
    definition = (input_type.extensions or {}).get("strawberry-definition")
    return bool(input_type.is_one_of or getattr(definition, "is_one_of", False))
