"""Migrations: a store made by the first migration, holding data, upgrades without losing any."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from resolvers.audiences import compile_filter, count_members
from store import migrate
from store.engine import Store
from store.tables import metadata
from tests.helpers import run_cli
from tests.stores import StoreFactory

ROWS = """
INSERT INTO metrics (id, name, name_key) VALUES (1, 'Placed Order', 'placed order');
INSERT INTO profiles (id, email, properties, created_at, updated_at) VALUES (1, 'a@x', '{"tier": "gold"}', 1, 1);
INSERT INTO profiles (id, email, properties, created_at, updated_at) VALUES (2, 'b@x', '{}', 1, 1);
INSERT INTO events (id, profile_id, metric_id, ts, channel, properties, unique_id)
  VALUES (1, 1, 1, 1000, 'SMS', '{"channel": "SMS", "total": 5}', 'o-1');
INSERT INTO metrics (id, name, name_key) VALUES
  (2, 'Started Conversation with Customer Agent', 'started conversation with customer agent'),
  (3, 'Conversation with Customer Agent Escalated', 'conversation with customer agent escalated');
INSERT INTO events (id, profile_id, metric_id, ts, channel, conversation_id, properties) VALUES
  (2, 2, 2, 2000, 'Web', 'c-1', '{"conversation_id": "c-1", "channel": "Web"}'),
  (3, 2, 3, 3000, NULL, 'c-1', '{"conversation_id": "c-1"}'),
  (4, 1, 2, 4000, NULL, 'c-2', '{"conversation_id": "c-2"}');
INSERT INTO segments (id, name, filter, created_at, updated_at)
  VALUES (1, 'buyers', '{"did": {"metric": "Placed Order"}}', 1, 1);
"""


@pytest.fixture
async def factory(store_kind: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    made = StoreFactory(store_kind, tmp_path)
    yield made
    await made.drop_all()


async def test_upgrade_from_the_first_migration_keeps_every_row(factory: StoreFactory) -> None:
    store = await factory.create(migrated=False)
    try:
        await migrate.upgrade(store, "0001")
        async with store.begin() as connection:
            for statement in filter(str.strip, ROWS.split(";")):
                await connection.execute(sa.text(statement))
        with pytest.raises(migrate.StoreOutOfDate, match="segmentql migrate"):
            await migrate.prepare(store)

        await migrate.upgrade(store)

        assert await migrate.current_revision(store) == migrate.head_revision()
        async with store.connect() as connection:
            emails = (await connection.execute(sa.text("SELECT email FROM profiles ORDER BY id"))).scalars().all()
            event = (await connection.execute(sa.text("SELECT unique_id, channel FROM events WHERE id = 1"))).one()
            kept = (await connection.execute(sa.text(
                "SELECT id, profile_id, channel, started_at, ended_at, status FROM conversations ORDER BY id"))).all()
            keys = (await connection.execute(sa.text("SELECT count(*) FROM api_keys"))).scalar()
            times = (await connection.execute(sa.text(
                "SELECT metric_id, profile_id, first_ts FROM profile_metrics ORDER BY metric_id, profile_id"))).all()
        assert emails == ["a@x", "b@x"]
        assert tuple(event) == ("o-1", "SMS")
        assert keys == 0
        # The conversations table (0003) starts out with every conversation of the events already stored.
        assert [tuple(row) for row in kept] == [("c-1", 2, "Web", 2000, 3000, "ESCALATED"), ("c-2", 1, None, 4000, None, "OPEN")]
        # So does the profile_metrics table (0004), with every (metric, profile) that has events.
        assert [tuple(row) for row in times] == [(1, 1, 1000), (2, 1, 4000), (2, 2, 2000), (3, 2, 3000)]
        audience = await compile_filter(store, {"inSegment": "1"}, None, ())
        assert await count_members(store, audience) == 1
    finally:
        await store.dispose()


async def test_prepare_creates_a_new_store_and_accepts_a_current_one(factory: StoreFactory) -> None:
    store = await factory.create(migrated=False)
    try:
        assert await migrate.current_revision(store) is None
        await migrate.prepare(store)
        await migrate.prepare(store)
        assert await migrate.current_revision(store) == migrate.head_revision()
    finally:
        await store.dispose()


async def test_serve_refuses_an_out_of_date_store_and_migrate_upgrades_it(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(store_url)
    try:
        await migrate.upgrade(store, "0001")
    finally:
        await store.dispose()

    assert await run_cli("serve", "--database-url", store_url, "--port", "1") == 1
    assert "run `segmentql migrate --database-url" in capsys.readouterr().err

    assert await run_cli("migrate", "--database-url", store_url) == 0
    assert capsys.readouterr().out == f"store at revision {migrate.head_revision()} (was 0001)\n"
    store = Store(store_url)
    try:
        assert await migrate.current_revision(store) == migrate.head_revision()
        await migrate.prepare(store)  # what serve does first: it accepts the store now
    finally:
        await store.dispose()


async def test_migrate_creates_an_empty_store_and_then_has_nothing_to_do(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("migrate", "--database-url", store_url) == 0
    assert capsys.readouterr().out == f"store at revision {migrate.head_revision()} (was empty)\n"
    store = Store(store_url)
    try:
        async with store.connect() as connection:
            differences = await connection.run_sync(lambda sync: compare_metadata(MigrationContext.configure(
                sync, opts={"compare_type": True, "include_object": migrate.created_on(sync.dialect.name)}), metadata))
            tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        assert differences == []
        assert tables == {*metadata.tables, "alembic_version"}
    finally:
        await store.dispose()
    assert await run_cli("migrate", "--database-url", store_url) == 0
    head = migrate.head_revision()
    assert capsys.readouterr().out == f"store at revision {head} (was {head})\n"


async def test_the_migrations_make_the_tables_and_indexes_the_code_declares(factory: StoreFactory) -> None:
    store = await factory.create()
    try:
        async with store.connect() as connection:
            differences = await connection.run_sync(lambda sync: compare_metadata(MigrationContext.configure(
                sync, opts={"compare_type": True, "include_object": migrate.created_on(sync.dialect.name)}), metadata))
        assert differences == []
    finally:
        await store.dispose()
