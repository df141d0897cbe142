"""The GraphQL endpoint: Strawberry's ASGI view with our context, orjson, access checks, and errors that carry codes.

Every error leaves with `extensions.code`; bad input also names where it is: `path` (the
response field) and `extensions.inputPath` (inside the arguments). The schema's error policy
(schema/extensions/errors.py) decides codes and masks unexpected errors, logged with a request id
that the response carries too. Errors of HTTP itself (bad JSON, an unsupported method, a missing
or wrong API key), and variables refused before execution, are shaped like GraphQL errors as well.

Access: a request's key is checked before its body is read (the GraphiQL page itself needs no
key); then every root field of the operation to run is checked against the key's scopes, before
anything runs, so a request mixing fields runs whole or not at all.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import (
    BREAK,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    Visitor,
    visit,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult

from resolvers.audiences import Paging
from schema.context import Context
from schema.extensions.errors import BAD_USER_INPUT, INTERNAL_SERVER_ERROR, new_request_id
from schema.limits import MAX_TOKENS, parse_document
from server import graphiql
from server.auth import AccessError, Keyring, Principal, required_scopes
from server.body_limit import BodyTooLarge
from store.engine import Store

log = logging.getLogger("segmentql")

HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
# GraphQL over HTTP's media types: the current one, for clients that accept it, and the legacy one.
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# GraphQL over HTTP: a GET may only query; the answer to a mutation names the method that may.
GET_MUTATION = "a mutation must be sent with POST"
MULTIPLE_OPERATIONS = "Must provide operation name if query contains multiple operations."
# Variables deeper than this are refused (a 32-level filter is about 70 deep; JSON columns stop near 250).
MAX_VARIABLE_DEPTH = 100
NUL_MESSAGE = "text may not contain the NUL character (U+0000)"


def error_response(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A non-200 answer whose body is shaped like a GraphQL response with one error."""
    body = {"errors": [{"message": message, "extensions": {"code": code or HTTP_CODES.get(status, "BAD_REQUEST")}}]}
    return JSONResponse(body, status, headers=headers)


def internal_error_response(error: BaseException, where: str) -> Response:
    """A masked 500 for a failure outside GraphQL execution (e.g. the store down while checking a key), logged."""
    request_id = new_request_id()
    log.error("request %s failed in %s", request_id, where, exc_info=error)
    body = {"errors": [{"message": "Internal server error",
                        "extensions": {"code": INTERNAL_SERVER_ERROR, "requestId": request_id}}],
            "extensions": {"requestId": request_id}}
    return JSONResponse(body, 500)


def access_error_response(error: AccessError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return error_response(error.status, error.message, error.code, headers)


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, store: Store, graphiql: bool = True, introspection: bool = True,
                 keyring: Keyring | None = None, paging: Paging | None = None) -> None:
        from schema import build_schema

        super().__init__(build_schema(introspection), graphql_ide="graphiql" if graphiql else None)
        self.store = store
        self.keyring = keyring or Keyring(store)
        self.paging = paging or Paging()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except AccessError as error:
            response = access_error_response(error)
        except MethodNotAllowed as error:
            response = error_response(405, str(error), headers={"Allow": "POST"})
        except HTTPException as error:
            response = error_response(error.status_code, error.reason)
        except BodyTooLarge:
            raise  # the body-size middleware answers 413
        except Exception as error:  # outside execution, which masks its own
            response = internal_error_response(error, "the GraphQL view")
        await response(scope, receive, send)

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        # Authenticate before the body is read; only the GraphiQL page itself is served to anyone.
        if not self.should_render_graphql_ide(self.request_adapter_class(request)):
            request.state.principal = await self.keyring.authenticate(
                request.headers.get("authorization"), client_host(request))
        return await super().run(request, *args, **kwargs)

    async def execute_operation(self, request: Any, request_adapter: Any, request_data: Any, context: Any,  # type: ignore[override]
                                root_value: Any, sub_response: Any) -> Any:
        principal: Principal = request.state.principal
        json_body = await _json_body(request)
        for data in request_data if isinstance(request_data, list) else [request_data]:
            if isinstance(data.query, str):
                try:
                    document = parse_document(data.query, MAX_TOKENS)
                except GraphQLError:
                    continue  # execution reports the syntax error; nothing runs
                principal.require(required_scopes(document, data.operation_name))
                _check_operation(request.method, document, data.operation_name)
                problem = _variables_problem(data.variables, json_body)
                if problem is None and "\\u" in data.query and _has_nul_literal(document):
                    problem = NUL_MESSAGE
                if problem is not None:
                    return ExecutionResult(data=None, errors=[GraphQLError(problem, extensions={"code": BAD_USER_INPUT})],
                                           extensions={"requestId": new_request_id()})
        return await super().execute_operation(request, request_adapter, request_data, context, root_value,
                                               sub_response)

    async def process_result(self, request: Any, result: ExecutionResult) -> Any:
        """For a client that accepts application/graphql-response+json, a request that failed before execution
        (parse, validation, variables) is a 400 without `data`, as GraphQL over HTTP asks; application/json
        clients keep the 200 with `"data": null` that the spec asks of that media type."""
        response = await super().process_result(request, result)
        context: Context = request.state.context
        if context.response.headers["content-type"] == GRAPHQL_RESPONSE_JSON and not context.executed:
            response.pop("data", None)
            ours = any((error.extensions or {}).get("code") == INTERNAL_SERVER_ERROR for error in result.errors or ())
            context.response.status_code = 500 if ours else 400
        return response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:  # type: ignore[override]
        # As Strawberry's, in the media type `get_context` negotiated (the sub-response's content-type).
        response = Response(self.encode_json(response_data), status_code=sub_response.status_code or 200,
                            media_type=sub_response.headers.get("content-type", JSON))
        response.headers.raw.extend((key, value) for key, value in sub_response.headers.raw if key != b"content-type")
        response.background = sub_response.background
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from this server's own files (server/graphiql), under a policy that allows nothing else."""
        return HTMLResponse(graphiql.page(), headers={"Content-Security-Policy": graphiql.CONTENT_SECURITY_POLICY})

    async def get_context(self, request: Any, response: Any) -> Context:
        response.headers["content-type"] = response_media_type(request.headers.get("accept"))
        context = Context(store=self.store, request=request, response=response, paging=self.paging)
        request.state.context = context
        return context

    def encode_json(self, data: object) -> bytes:  # type: ignore[override]
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # orjson: strict JSON (no NaN), integers beyond 64 bits as floats, and nesting past 1024
        # levels a JSON error (400), where the standard library would exhaust the stack.
        return orjson.loads(data)

    async def parse_http_body(self, request: Any) -> Any:
        # A body that is JSON but no object (a bare string, number, null or boolean) is a bad request,
        # like any other malformed body; a list is a batch, which Strawberry refuses itself.
        if request.method == "POST" and "application/json" in (request.content_type or ""):
            body = await request.get_body()
            decoded = self.parse_json(body)
            if not isinstance(decoded, dict | list):
                raise HTTPException(400, "The request body must be a JSON object")
            _decoded_body.set((body, decoded))  # Strawberry asks for it next: decoded once
        return await super().parse_http_body(request)

    def parse_json(self, data: str | bytes) -> Any:
        known = _decoded_body.get()
        if known is not None and known[0] is data:
            return known[1]
        return super().parse_json(data)


# The body a request's task decoded last, and what it decoded to.
_decoded_body: contextvars.ContextVar[tuple[bytes | str, Any] | None] = contextvars.ContextVar("decoded_body", default=None)


def response_media_type(accept: str | None) -> str:
    """application/graphql-response+json when the Accept header takes it at least as gladly as application/json;
    application/json otherwise (no header, */*, or application/json alone), as GraphQL over HTTP asks."""
    quality: dict[str, float] = {}
    for item in (accept or "").split(","):
        name, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        quality[name.lower()] = max(weight, quality.get(name.lower(), 0.0))
    wanted = quality.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return GRAPHQL_RESPONSE_JSON if wanted > 0 and wanted >= quality.get(JSON, 0.0) else JSON


class MethodNotAllowed(Exception):
    """A request that this method may not carry (a mutation sent with GET)."""


def _check_operation(method: str, document: DocumentNode, operation_name: str | None) -> None:
    """Refuse what the spec refuses before execution: a document of several operations without
    `operationName` (HTTPException 400), and a mutation sent with GET (MethodNotAllowed)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None and len(operations) > 1:
        raise HTTPException(400, MULTIPLE_OPERATIONS)
    if method == "GET":
        chosen = [op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)]
        if any(op.operation is OperationType.MUTATION for op in chosen):
            raise MethodNotAllowed(GET_MUTATION)


def _variables_problem(variables: Any, json_body: bytes | None = None) -> str | None:
    """Why the variables cannot be taken as they are: U+0000 in a string or a key (PostgreSQL cannot
    store it, so neither store takes it), or nesting too deep for JSON columns. None when fine.

    `json_body` is the JSON text the variables were decoded from, when they were."""
    if type(variables) in (dict, list) and not _nests_within(variables, MAX_VARIABLE_DEPTH):
        return f"variables may nest at most {MAX_VARIABLE_DEPTH} levels deep"
    # JSON writes U+0000 only as \u0000 (a raw control character is invalid): one pass in C over the
    # text (orjson writes it anew when there is none, ~1 ms for a thousand events). A hit may be an
    # escaped backslash followed by "u0000" (not a NUL), which only the exact walk tells apart.
    text = json_body if json_body is not None else orjson.dumps(variables)
    if b"\\u0000" in text and _has_nul(variables):
        return NUL_MESSAGE
    return None


async def _json_body(request: Any) -> bytes | None:
    """The body a POST's variables were decoded from, when it is JSON (Starlette keeps it once read)."""
    if request.method == "POST" and request.headers.get("content-type", "").startswith("application/json"):
        body: bytes = await request.body()
        return body
    return None


def _nests_within(container: Any, levels: int) -> bool:
    """Whether every value inside lies at most `levels` below the container (recursion: at most `levels` deep)."""
    if levels == 0:
        return not container
    # Exact types (decoded JSON has no subclasses): twice as fast as isinstance over a batch's values.
    for item in container.values() if type(container) is dict else container:
        kind = type(item)
        if (kind is dict or kind is list) and not _nests_within(item, levels - 1):
            return False
    return True


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _has_nul_literal(document: DocumentNode) -> bool:
    found = False

    class Finder(Visitor):
        def enter_string_value(self, node: StringValueNode, *_args: Any) -> Any:
            nonlocal found
            if "\x00" in node.value:
                found = True
                return BREAK
            return None

    visit(document, Finder())
    return found
