"""The store itself: statement timeouts cancel a read and leave the connection healthy."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from server.store import StatementTimeout
from tests.stores import StoreFactory

SLOW = sa.text(
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000000) SELECT count(*) FROM n"
)


# 0.1 ms ends before the statement has even started: SQLite's interrupt, a no-op then, must be repeated.
@pytest.mark.parametrize("timeout", [0.2, 0.0001])
async def test_statement_timeout_cancels_and_the_store_still_answers(store_kind: str, tmp_path: Path, timeout: float) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    store = await factory.create(statement_timeout=timeout, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(StatementTimeout):
            await store.fetch(SLOW)
        store.statement_timeout = 5
        assert await store.fetch(sa.text("SELECT 41 + 1")) == [(42,)]
    finally:
        await store.dispose()
        await factory.drop_all()
