"""What every resolver receives: the store and per-request batch loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from resolvers.profiles import profiles_by_id
from server.store import Store


@dataclass
class Context:
    store: Store
    request: Any = None
    profiles: DataLoader[int, Any] = field(init=False)

    def __post_init__(self) -> None:
        async def load(ids: list[int]) -> list[Any]:
            return await profiles_by_id(self.store, ids)

        self.profiles = DataLoader(load_fn=load)


GraphQLInfo = Info[Context, None]
