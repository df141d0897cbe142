"""The ASGI application: GraphQL (and GraphiQL for browsers, its files under /graphiql) on /graphql, segment exports,
and /healthz."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from resolvers.audiences import Paging
from resolvers.changes import prepare_change_export
from resolvers.errors import UserInputError
from resolvers.exports import FORMATS, StreamedExport, prepare_export
from server import graphiql
from server.auth import READ, AccessError, Keyring
from server.body_limit import BodySizeLimit
from server.config import Settings, open_store
from server.graphql_view import (
    GraphQLView,
    access_error_response,
    client_host,
    error_response,
    internal_error_response,
)
from store import migrate
from store.engine import Store

log = logging.getLogger("segmentql")
OPEN_MODE_WARNING = ("no API keys exist: serving openly, to loopback clients only. Create a key with "
                     "`segmentql keys create --name NAME --scope read` to require keys.")


# An export refused before its first byte: unknown segment 404, timeout 503, other bad requests 400.
EXPORT_ERROR_STATUS = {"NOT_FOUND": 404, "QUERY_TIMEOUT": 503}


def create_app(settings: Settings | None = None, store: Store | None = None, paging: Paging | None = None) -> Starlette:
    """The app over `store` (default: the one `settings.database_url` names), tables created when missing;
    `paging` holds the page plan's figures and the compiled audiences that pages and exports share."""
    settings = settings or Settings()
    store = store or open_store(settings)
    keyring = Keyring(store, settings.key_cache_seconds)
    paging = paging or Paging()

    async def healthz(_request: Request) -> JSONResponse:
        try:
            healthy = await store.ping()
        except Exception:  # any failure of the store means unhealthy, not a crash
            healthy = False
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503)

    async def streamed_export(request: Request, prepare: Callable[[], Awaitable[StreamedExport]]) -> Response:
        """An export streamed in id order (needs `read`); one that fails before its first row answers an error."""
        try:
            principal = await keyring.authenticate(request.headers.get("authorization"), client_host(request))
            principal.require({"export": READ})
        except AccessError as error:
            return access_error_response(error)
        except Exception as error:  # e.g. the store is down: masked and logged, never open
            return internal_error_response(error, "the export's access check")
        try:
            export = await prepare()
            body = await export.opened()  # an audience query that fails does so here, before the 200
        except UserInputError as error:  # shaped like a GraphQL error
            status = EXPORT_ERROR_STATUS.get(error.code, 400)
            return JSONResponse({"errors": [{"message": error.message, "extensions": error.extensions}]}, status)
        return StreamingResponse(body, media_type=export.media_type, headers=export.headers)

    async def export_members(request: Request, format_name: str) -> Response:
        """GET /segments/{id}/members.{csv|ndjson}[?asOf=…]: every member."""
        return await streamed_export(request, lambda: prepare_export(
            store, request.path_params["id"], format_name, request.query_params.get("asOf"), paging))

    async def export_changes(request: Request) -> Response:
        """GET /segments/{id}/changes.ndjson?since=…[&asOf=…]: who entered and who left."""
        return await streamed_export(request, lambda: prepare_change_export(
            store, request.path_params["id"], request.query_params.get("since"), request.query_params.get("asOf"),
            paging.policy, paging.compiled))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await migrate.prepare(store)
        if not await keyring.keys_exist():
            log.warning(OPEN_MODE_WARNING)
        _freeze_startup_objects()
        yield
        await store.dispose()

    graphql = GraphQLView(store, graphiql=settings.graphiql, introspection=settings.introspection, keyring=keyring,
                          paging=paging)
    ide = [Mount(graphiql.STATIC_ROUTE, StaticFiles(directory=graphiql.STATIC), name="graphiql")] if settings.graphiql else []
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *ide,
            *(Route(f"/segments/{{id}}/members.{name}", functools.partial(export_members, format_name=name),
                    methods=["GET"]) for name in FORMATS),
            Route("/segments/{id}/changes.ndjson", export_changes, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.keyring = keyring
    return app


@functools.cache
def _freeze_startup_objects() -> None:
    """Leave what startup built (modules, the schema, table metadata) out of the collector's full passes,
    which walked it all at a cost paid by whichever request crossed the threshold (docs/performance.md).
    Once per process; startup's garbage is collected first, or frozen it would never be freed."""
    gc.collect()
    gc.freeze()


async def _http_error(_request: Request, error: Exception) -> Response:
    """Starlette's own 404 and 405, shaped like the GraphQL errors of every other answer."""
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, error.detail, headers=dict(error.headers or {}))
