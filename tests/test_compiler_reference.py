"""The SQL compiler against the reference evaluator: random stores, random filters, every page.

Audiences, totalCount and keyset pagination (no profile twice, none skipped) must equal what
tests/reference.py computes from SEMANTICS.md, on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from resolvers import filter_ast as ast
from resolvers.audiences import count_members, profile_page
from resolvers.compiler import FilterCompiler
from resolvers.filter_input import filter_to_input
from server.agent_metrics import RECOMMENDED, STARTED
from server.ingest import event_row
from server.store import Store, events, metric_ids, metrics, profiles, segments
from server.timestamps import to_micros
from tests.filter_strategies import filters
from tests.reference import RefEvent, RefProfile, World
from tests.stores import StoreFactory, store_params

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METRICS = ["Placed Order", STARTED.name, RECOMMENDED.name]
KEYS = ["channel", "tags", "n", "sku"]
SCALARS = st.sampled_from(["SMS", "Web Chat", "a", "ab", "", 0, 1, 1.0, 2.5, -2, True, False])
PROPERTY_VALUES = st.one_of(SCALARS, st.none(), st.lists(st.sampled_from(["SMS", "a", "ab", 1]), max_size=3))
# Times on a whole-hour grid around AS_OF, so that window and follow-up boundaries are hit exactly.
HOURS_BEFORE = st.integers(min_value=-3, max_value=24 * 12)


def at_hours_before(hours: int) -> datetime:
    return AS_OF - timedelta(hours=hours)


properties_dicts = st.dictionaries(st.sampled_from(KEYS), PROPERTY_VALUES, max_size=3)
profile_fields = st.fixed_dictionaries({
    "email": st.sampled_from([None, "vip@shop.test", "ann@shop.test", "vip2@x.test"]),
    "firstName": st.sampled_from([None, "Ann", "Bo", "ann"]),
})


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(min_value=1, max_value=7))
    people = [
        RefProfile(i + 1, {"phoneNumber": None, "externalId": None, "lastName": None, **draw(profile_fields)},
                   to_micros(at_hours_before(draw(HOURS_BEFORE))), draw(properties_dicts))
        for i in range(count)
    ]
    happened = draw(st.lists(st.tuples(
        st.integers(min_value=1, max_value=count), st.sampled_from(METRICS), HOURS_BEFORE, properties_dicts,
    ), max_size=25))
    return World(people, [RefEvent(p, m, to_micros(at_hours_before(h)), props) for p, m, h, props in happened])


def random_filters(segment_ids: tuple[str, ...] = ()) -> st.SearchStrategy[ast.Filter]:
    return filters(
        metrics=METRICS, properties=[*KEYS, "email", "firstName"], values=SCALARS,
        segment_ids=segment_ids, max_leaves=5,
    )


async def load_world(store: Store, world: World, saved: dict[str, ast.Filter]) -> None:
    async with store.begin() as connection:
        for table in (events, segments, profiles, metrics):
            await connection.execute(sa.delete(table))
        email_owner: dict[str, int] = {}
        for p in world.profiles:  # emails are unique in the store: later duplicates go without
            email = p.fields["email"]
            if email in email_owner:
                p.fields["email"] = None
            elif email is not None:
                email_owner[email] = p.id
        await connection.execute(sa.insert(profiles), [{
            "id": p.id, "email": p.fields["email"], "first_name": p.fields["firstName"], "properties": p.properties,
            "created_at": p.created_at, "updated_at": p.created_at,
        } for p in world.profiles])
        ids = await metric_ids(connection, store, {m.lower(): m for m in METRICS})
        if world.events:
            await connection.execute(sa.insert(events), [
                event_row(e.profile_id, ids[e.metric.lower()], e.ts, e.properties, None) for e in world.events
            ])
        for segment_id, saved_filter in saved.items():
            await connection.execute(sa.insert(segments).values(
                id=int(segment_id), name=f"s{segment_id}", filter=filter_to_input(saved_filter),
                created_at=0, updated_at=0))


async def sql_members(store: Store, node: ast.Filter, as_of: int, saved: dict[str, ast.Filter], page: int) -> tuple[list[int], int]:
    audience = FilterCompiler(store.dialect, as_of, saved).audience(node)
    seen: list[int] = []
    after = None
    while True:
        result = await profile_page(store, audience, page, after)
        seen.extend(row.id for row in result.rows)
        if not result.has_next_page:
            break
        after = result.cursor(result.rows[-1])
    return seen, await count_members(store, audience)


@pytest.fixture(params=store_params())
def runner_and_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with asyncio.Runner() as runner:
        factory = StoreFactory(str(request.param), tmp_path)
        store = runner.run(factory.create())
        yield runner, store
        runner.run(store.dispose())
        runner.run(factory.drop_all())


@given(
    world=worlds(),
    saved=st.lists(random_filters(), min_size=2, max_size=2),
    probes=st.lists(random_filters(("1", "2")), min_size=1, max_size=3),
    as_of_hours=st.sampled_from([0, 0, 5, 48]),
    page=st.integers(min_value=1, max_value=4),
)
def test_sql_audience_equals_reference(
    runner_and_store: Any, world: World, saved: list[ast.Filter], probes: list[ast.Filter], as_of_hours: int, page: int
) -> None:
    runner, store = runner_and_store
    segments_by_id = {"1": saved[0], "2": saved[1]}
    world.segments = segments_by_id
    runner.run(load_world(store, world, segments_by_id))
    as_of = to_micros(at_hours_before(as_of_hours))
    for probe in probes:
        expected = world.members(probe, as_of)
        seen, total = runner.run(sql_members(store, probe, as_of, segments_by_id, page))
        assert seen == expected, probe
        assert total == len(expected), probe
