"""The profile_metrics table: each profile's first time of each metric, as every write keeps it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.compiler import FilterCompiler, count_statement
from resolvers.ingest import BatchError, EventInput, _write_events, normalise_event, track_events
from resolvers.language import ast as ast
from store import profile_metric_summaries
from store.tables import events, metrics, profile_metrics, profiles
from tests.helpers import run_cli
from tests.stores import backend_pid, wait_until_blocked
from vocabulary.timestamps import to_micros

BASE = datetime(2026, 1, 1, tzinfo=UTC)
EMAILS = ("p1@x", "p2@x", "p3@x")
METRICS = ("Placed Order", "Viewed Product")


@st.composite
def an_event(draw: st.DrawFn) -> EventInput:
    # A duplicate (metric, uniqueId) may come at another time: the stored event's time counts, not its.
    return EventInput(
        metric=draw(st.sampled_from(METRICS)), profile={"email": draw(st.sampled_from(EMAILS))},
        occurred_at=BASE + timedelta(minutes=draw(st.integers(0, 50))),
        unique_id=draw(st.sampled_from((None, "u1", "u2"))),
    )


BAD = EventInput(metric=" ", profile={"email": "p1@x"}, occurred_at=BASE)


async def _reset(store: Any) -> None:
    async with store.begin() as connection:
        for table in (profile_metrics, events, profiles, metrics):
            await connection.execute(sa.delete(table))


async def _kept(store: Any) -> list[tuple[Any, ...]]:
    t = profile_metrics.c
    async with store.connect() as connection:
        rows = (await connection.execute(sa.select(t.metric_id, t.profile_id, t.first_ts)
                                         .order_by(t.metric_id, t.profile_id))).all()
    return [tuple(row) for row in rows]


async def _from_events(store: Any) -> list[tuple[Any, ...]]:
    e = events.c
    async with store.connect() as connection:
        rows = (await connection.execute(sa.select(e.metric_id, e.profile_id, sa.func.min(e.ts))
                                         .group_by(e.metric_id, e.profile_id).order_by(e.metric_id, e.profile_id))).all()
    return [tuple(row) for row in rows]


# The store is shared across examples: each example first empties it.
@settings(max_examples=settings.default.max_examples, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.tuples(st.lists(an_event(), min_size=1, max_size=8), st.booleans()), min_size=1, max_size=5))
def test_every_write_keeps_the_first_time_of_its_stored_events(
    runner_and_store: Any, batches: list[tuple[list[EventInput], bool]]
) -> None:
    runner, store = runner_and_store
    runner.run(_reset(store))
    for batch, refused in batches:
        if refused:  # a batch with a bad event stores nothing, so it moves nothing
            with pytest.raises(BatchError):
                runner.run(track_events(store, [*batch, BAD]))
        else:
            runner.run(track_events(store, batch))
    kept = runner.run(_kept(store))
    assert kept == runner.run(_from_events(store))

    async def rebuilt() -> list[tuple[Any, ...]]:
        async with store.begin() as connection:
            await connection.run_sync(profile_metric_summaries.refresh_all)
        return await _kept(store)

    assert runner.run(rebuilt()) == kept


async def test_concurrent_writes_of_one_profile_and_metric_keep_the_earliest_on_postgresql(store: Any) -> None:
    """The later write waits for the row the earlier one locked (without moving it), then moves it earlier."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite runs one write at a time")

    def order_at(minutes: int) -> EventInput:
        return EventInput("Placed Order", {"email": "a@x"}, BASE + timedelta(minutes=minutes))

    await track_events(store, [order_at(5)])
    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with store.writer.connect() as first:
        await first.begin()
        first_pid = await backend_pid(first)
        await first.run_sync(lambda sync: _write_events(sync, [normalise_event(order_at(9), 0)]))

        async def second() -> None:
            async with store.writer.begin() as connection:
                second_pid.set_result(await backend_pid(connection))
                await connection.run_sync(lambda sync: _write_events(sync, [normalise_event(order_at(1), 0)]))

        earlier = asyncio.create_task(second())
        # PostgreSQL shows the second write waiting on a lock that the first one holds.
        _, blockers = await wait_until_blocked(store, await second_pid, earlier)
        assert blockers == [first_pid]
        await first.commit()
        await earlier
    assert [row[2] for row in await _kept(store)] == [to_micros(BASE + timedelta(minutes=1))]
    assert await _kept(store) == await _from_events(store)


async def test_ever_did_reads_one_row_per_profile_not_the_events(store: Any) -> None:
    if store.dialect != "sqlite":
        pytest.skip("the plan is SQLite's")
    compiler = FilterCompiler("sqlite", to_micros(BASE))
    for node in (ast.DidNot(ast.EventCondition("Placed Order")),
                 ast.Did(ast.EventCondition("Placed Order", within=ast.Before(BASE - timedelta(days=7))))):
        sql = str(count_statement(compiler.audience(node)).compile(
            dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
        async with store.connect() as connection:
            details = [row[-1] for row in (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()]
        # f: profile_metrics, its rows of one metric; x would be events.
        assert "SEARCH f USING PRIMARY KEY (metric_id=?)" in details, details
        assert not any(" x " in f" {detail} " or "events" in detail for detail in details), details


async def test_rebuild_summaries_restores_what_writes_did_not_keep(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from store import migrate
    from store.engine import Store

    async def write(lose: bool) -> list[tuple[Any, ...]]:
        store = Store(store_url)
        try:
            await migrate.prepare(store)
            if lose:
                await track_events(store, [EventInput("Placed Order", {"email": "a@x"}, BASE),
                                           EventInput("Placed Order", {"email": "a@x"}, BASE + timedelta(hours=1))])
                async with store.begin() as connection:
                    await connection.execute(sa.delete(profile_metrics))
            return await _kept(store)
        finally:
            await store.dispose()

    assert await write(lose=True) == []
    assert await run_cli("rebuild-summaries", "--database-url", store_url) == 0
    assert "0 conversations and 1 (profile, metric) first times recomputed" in capsys.readouterr().out
    assert [row[2] for row in await write(lose=False)] == [to_micros(BASE)]


async def test_a_write_reads_its_own_events_by_id(store: Any) -> None:
    """Not a scan of an index in group order (SQLite's choice unhinted: 300 ms a batch at 5M events)."""
    if store.dialect != "sqlite":
        pytest.skip("the plan is SQLite's")
    merge = profile_metric_summaries._merge_statement("sqlite")
    sql = str(merge.compile(dialect=store.engine.dialect))
    async with store.connect() as connection:
        details = [row[-1] for row in (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (0,))).all()]
    assert any("USING INTEGER PRIMARY KEY (rowid>?)" in detail for detail in details), details
