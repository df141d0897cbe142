"""The ASGI application: GraphQL (and GraphiQL for browsers) on /graphql, segment exports, and /healthz."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from resolvers.errors import UserInputError
from server import migrate
from server.config import Settings
from server.exports import FORMATS, prepare_export
from server.graphql_view import GraphQLView
from server.store import Store


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    """The app over `store` (default: the one `settings.database_url` names), tables created when missing."""
    settings = settings or Settings()
    store = store or Store.from_settings(settings)

    async def healthz(_request: Request) -> JSONResponse:
        try:
            healthy = await store.ping()
        except Exception:  # any failure of the store means unhealthy, not a crash
            healthy = False
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503)

    async def export_members(request: Request, format_name: str) -> Response:
        """GET /segments/{id}/members.{csv|ndjson}[?asOf=…]: every member, streamed in id order."""
        try:
            export = await prepare_export(store, request.path_params["id"], format_name, request.query_params.get("asOf"))
        except UserInputError as error:  # NotFoundError included: 404, else 400, shaped like a GraphQL error
            status = 404 if error.code == "NOT_FOUND" else 400
            return JSONResponse({"errors": [{"message": error.message, "extensions": error.extensions}]}, status)
        return StreamingResponse(export.chunks(), media_type=export.format.media_type, headers=export.headers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await migrate.prepare(store)
        yield
        await store.dispose()

    graphql = GraphQLView(store, graphiql=settings.graphiql)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *(Route(f"/segments/{{id}}/members.{name}", functools.partial(export_members, format_name=name),
                    methods=["GET"]) for name in FORMATS),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    return app
