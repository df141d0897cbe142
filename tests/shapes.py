"""Both shapes of a compiled filter, run directly on a store: the set a count and a set-shaped page read,
and the walk a walking page takes, each as the members' emails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from resolvers.compiler import FilterCompiler, count_statement, page_statement
from resolvers.language.structured import filter_from_input
from resolvers.language.text import parse_filter
from store.engine import Store
from store.tables import profiles
from vocabulary.timestamps import to_micros


async def members_in_both_shapes(store: Store, filter: dict[str, Any], as_of: datetime) -> list[str]:
    """The members' emails, sorted, after checking that the set shape, the walk shape and the count agree."""
    audience = FilterCompiler(store.dialect, to_micros(as_of)).audience(filter_from_input(filter, parse_filter))
    columns = [profiles.c.email]
    async with store.connect() as connection:
        in_set = [row[0] for row in (await connection.execute(page_statement(audience, None, None, columns))).all()]
        walked = [row[0] for row in (await connection.execute(
            page_statement(audience, None, None, columns, walk=True))).all()]
        counted = (await connection.execute(count_statement(audience))).scalar_one()
    assert in_set == walked, (filter, in_set, walked)
    assert counted == len(in_set), (filter, counted, in_set)
    return sorted(in_set)
