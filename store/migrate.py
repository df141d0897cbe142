"""Schema migrations (Alembic, scripts in store/migrations/) run on the store's own async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from store.engine import Store

if TYPE_CHECKING:  # Alembic is imported by the functions that use it: catching StoreOutOfDate needs none of it
    from alembic.config import Config

SCRIPTS = Path(__file__).with_name("migrations")


class StoreOutOfDate(RuntimeError):
    """The store's schema is older than this code; `segmentql migrate` upgrades it."""


def _config(connection: Any = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def created_on(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object` hook comparing a `dialect` store with the code: what the code creates on
    other dialects only (`store.tables.sqlite_only`) is left out."""

    def include(item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        dialects = getattr(item, "info", {}).get("dialects")
        return dialects is None or dialect in dialects

    return include


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(store: Store) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with store.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def upgrade(store: Store, revision: str = "head") -> None:
    """Create or upgrade the store's tables to `revision`."""
    from alembic import command

    async with store.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def prepare(store: Store) -> None:
    """Create the tables of a new, empty store; refuse a store that an older version made."""
    current = await current_revision(store)
    if current == head_revision():
        return
    async with store.connect() as connection:
        tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    if current is None and not tables:
        await upgrade(store)
        return
    raise StoreOutOfDate(
        f"the store at {store.safe_url} is at schema revision {current or 'none'}, this SegmentQL needs "
        f"{head_revision()}: run `segmentql migrate --database-url {store.safe_url}` first"
    )
