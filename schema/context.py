"""What every resolver receives: the store and per-request batch loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from resolvers.audiences import Paging
from resolvers.events import EventPage, first_pages_by_profile
from resolvers.profiles import profiles_by_id
from store.engine import Store


@dataclass
class Context:
    store: Store
    request: Any = None
    # The HTTP response whose status code and headers the answer takes (Strawberry's sub-response).
    response: Any = None
    # The app's page policy and the audiences it compiled at explicit instants.
    paging: Paging = field(default_factory=Paging)
    profiles: DataLoader[int, Any] = field(init=False)
    # First pages of profiles' events, one loader per (metric, first): one query for a page of profiles.
    event_pages: dict[tuple[str | None, int], DataLoader[int, EventPage]] = field(default_factory=dict)
    # The response's `extensions.warnings` (schema/extensions/warnings.py).
    warnings: list[dict[str, Any]] = field(default_factory=list)
    # Whether execution began (variables coerced, fields about to run): otherwise the request failed
    # before it, which GraphQL over HTTP answers differently (server/graphql_view.py).
    executed: bool = False

    def __post_init__(self) -> None:
        async def load(ids: list[int]) -> list[Any]:
            return await profiles_by_id(self.store, ids)

        self.profiles = DataLoader(load_fn=load)

    def first_event_pages(self, metric: str | None, first: int) -> DataLoader[int, EventPage]:
        if (metric, first) not in self.event_pages:
            async def load(ids: list[int]) -> list[EventPage]:
                return await first_pages_by_profile(self.store, ids, first, metric)

            self.event_pages[(metric, first)] = DataLoader(load_fn=load)
        return self.event_pages[(metric, first)]


    def warn(self, message: str, code: str, path: list[str | int], **details: Any) -> None:
        """Note a warning for the response, once however often it is noted."""
        warning = {"message": message, "path": path, "extensions": {"code": code, **details}}
        if warning not in self.warnings:
            self.warnings.append(warning)


GraphQLInfo = Info[Context, None]
