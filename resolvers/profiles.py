"""Profiles by id and by key, loaded in batches (one query per page of events, not per event)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from resolvers.ingest import KEY_FIELDS
from store.engine import Store
from store.tables import PROFILE_ROW, profiles


async def profiles_by_id(store: Store, ids: Sequence[int]) -> list[Any | None]:
    async with store.connect() as connection:
        rows = (await connection.execute(sa.select(*PROFILE_ROW).where(profiles.c.id.in_(list(ids))))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


async def profile_by_key(store: Store, key: Mapping[str, str | None]) -> Any | None:
    """The profile that the key names: by email, then phone number, then external id."""
    async with store.connect() as connection:
        for name, column in KEY_FIELDS:
            value = (key.get(name) or "").strip()  # as ingest stores identifiers: trimmed
            if value:
                row = (await connection.execute(sa.select(*PROFILE_ROW).where(profiles.c[column] == value))).first()
                if row is not None:
                    return row
    return None
