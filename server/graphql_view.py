"""The GraphQL endpoint: Strawberry's ASGI view with our context, orjson, and errors that carry codes.

Every error leaves with `extensions.code`; bad input also names where it is: `path` (the
response field) and `extensions.inputPath` (inside the arguments). Unexpected errors are masked
and logged with a request id that the response carries too.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    VariableNode,
    get_nullable_type,
    parse,
)
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from resolvers.errors import UserInputError
from schema.context import Context
from server.store import Store

log = logging.getLogger("segmentql")

INPUT_ERROR_PATTERNS = ("Expected value of type", "OneOf", "invalid value", "must specify exactly one",
                        "cannot represent", "is not defined by type", "of required type")
VARIABLE_PATTERN = re.compile(r"Variable '\$(\w+)' has invalid value(?: at \.?([^:]+))?:")


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, store: Store, graphiql: bool = True) -> None:
        from schema import schema

        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self.store = store

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(store=self.store, request=request)

    def encode_json(self, data: object) -> bytes:  # type: ignore[override]
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        request_id = uuid.uuid4().hex[:16]
        if result.errors:
            payload = await _payload(request)
            result.errors = [shape_error(error, request_id, payload) for error in result.errors]
        response = process_result(result)
        if result.errors:
            response["extensions"] = {"requestId": request_id}
        return response


async def _payload(request: Request) -> dict[str, Any]:
    """The request's query and variables, read again to locate errors that graphql-core left unplaced."""
    try:
        if request.method == "GET":
            params = request.query_params
            return {"query": params.get("query"), "variables": orjson.loads(params.get("variables") or "{}")}
        return dict(await request.json())
    except (ValueError, TypeError, AttributeError):
        return {}


def shape_error(error: GraphQLError, request_id: str, payload: dict[str, Any]) -> GraphQLError:
    """Give an error its code and location; mask anything that is not the client's fault."""
    original = error.original_error
    if isinstance(original, UserInputError) or (error.extensions or {}).get("code"):
        return error
    if error.path is not None and original is not None and not isinstance(original, GraphQLError):
        log.error("request %s failed at %s", request_id, error.path, exc_info=original)
        return GraphQLError(
            "Internal server error", error.nodes, path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
    if isinstance(error, GraphQLSyntaxError):
        return _with(error, "GRAPHQL_PARSE_FAILED")
    if any(pattern in error.message for pattern in INPUT_ERROR_PATTERNS):
        return _with(error, "BAD_USER_INPUT", *_locate(error, payload))
    return _with(error, "GRAPHQL_VALIDATION_FAILED")


def _with(error: GraphQLError, code: str, path: list[str] | None = None, input_path: list[Any] | None = None) -> GraphQLError:
    extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
    if input_path:
        extensions["inputPath"] = input_path
    return GraphQLError(error.message, error.nodes, error.source, error.positions, path or error.path,
                        extensions=extensions)


def _locate(error: GraphQLError, payload: dict[str, Any]) -> tuple[list[str] | None, list[Any] | None]:
    """The root field a bad argument belongs to and, for a bad variable, the path inside the argument."""
    query = error.source.body if error.source is not None else payload.get("query")
    variables = payload.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        return None, None
    try:
        document = parse(query)
    except GraphQLError:
        return None, None
    from schema import schema

    mentioned = VARIABLE_PATTERN.search(error.message)
    starts = [node.loc.start for node in error.nodes or [] if node.loc]
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for field in definition.selection_set.selections:
            if not isinstance(field, FieldNode) or field.loc is None:
                continue
            if any(field.loc.start <= start <= field.loc.end for start in starts):
                return [(field.alias or field.name).value], None
            for argument in field.arguments or ():
                if not isinstance(argument.value, VariableNode):
                    continue
                name = argument.value.name.value
                if mentioned and mentioned.group(1) == name:
                    inner = [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", mentioned.group(2) or "") if p]
                    return [(field.alias or field.name).value], [argument.name.value, *inner]
                if not starts and name in variables:
                    argument_type = _argument_type(schema, definition, field, argument.name.value)
                    inner_path = _one_of_violation(argument_type, variables[name], [])
                    if inner_path is not None:
                        return [(field.alias or field.name).value], [argument.name.value, *inner_path]
    return None, None


def _argument_type(schema: Any, operation: OperationDefinitionNode, field: FieldNode, argument: str) -> Any:
    root = schema._schema.get_root_type(operation.operation)
    definition = root.fields.get(field.name.value) if root else None
    found = definition.args.get(argument) if definition else None
    return found.type if found else None


def _one_of_violation(input_type: Any, value: Any, path: list[Any]) -> list[Any] | None:
    """The path of the first @oneOf input object in `value` that does not have exactly one field."""
    input_type = get_nullable_type(input_type)
    if isinstance(input_type, GraphQLList) and isinstance(value, list):
        for index, item in enumerate(value):
            found = _one_of_violation(input_type.of_type, item, [*path, index])
            if found is not None:
                return found
    if isinstance(input_type, GraphQLInputObjectType) and isinstance(value, dict):
        if _is_one_of(input_type) and sum(v is not None for v in value.values()) != 1:
            return path
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
