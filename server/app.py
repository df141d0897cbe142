"""The ASGI application: GraphQL (and GraphiQL for browsers) on /graphql, and /healthz."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.config import Settings
from server.graphql_view import GraphQLView
from server.store import Store


def create_app(settings: Settings | None = None, store: Store | None = None) -> Starlette:
    """The app over `store` (default: the one `settings.database_url` names), tables created when missing."""
    settings = settings or Settings()
    store = store or Store(settings.database_url)

    async def healthz(_request: Request) -> JSONResponse:
        try:
            healthy = await store.ping()
        except Exception:  # any failure of the store means unhealthy, not a crash
            healthy = False
        return JSONResponse({"status": "ok" if healthy else "unavailable"}, status_code=200 if healthy else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.create_tables()
        yield
        await store.dispose()

    graphql = GraphQLView(store, graphiql=settings.graphiql)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    return app
