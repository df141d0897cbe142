"""The SQL compiler against the reference evaluator: random stores, random filters, every page.

Audiences, totalCount and keyset pagination (no profile twice, none skipped) must equal what
tests/reference.py computes from SEMANTICS.md, on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers import filter_ast as ast
from resolvers.audiences import NodeJson, count_members, profile_page
from resolvers.compiler import FilterCompiler, page_statement
from resolvers.filter_input import filter_from_input, filter_to_input
from resolvers.filter_text import parse_filter, print_filter
from server import profile_metric_summaries
from server.agent_metrics import RECOMMENDED, STARTED
from server.ingest import event_row
from server.store import Store, events, metric_ids, metrics, profile_metrics, profiles, segments
from server.timestamps import to_micros
from tests.filter_strategies import filters
from tests.reference import RefEvent, RefProfile, World

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METRICS = ["Placed Order", STARTED.name, RECOMMENDED.name]
KEYS = ["channel", "tags", "n", "sku"]
SCALARS = st.sampled_from(["SMS", "Web Chat", "a", "ab", "", 0, 1, 1.0, 2.5, -2, True, False])
# Stored values: mostly a few common ones, so that conditions and sameProperties often hold.
PROPERTY_VALUES = st.one_of(
    st.sampled_from(["SMS", "a", 1]), SCALARS, st.none(), st.lists(st.sampled_from(["SMS", "a", "ab", 1]), max_size=3),
    st.dictionaries(st.sampled_from(["SMS", "a"]), st.sampled_from(["SMS", "a", 1]), max_size=2),  # objects hold no items
)
# Times on a coarse hour grid around AS_OF, so that window and follow-up boundaries are hit exactly.
HOURS_BEFORE = st.one_of(
    st.sampled_from([-2, 0, 1, 2, 12, 24, 25, 36, 48, 49, 72, 96, 168, 169, 240]),
    st.integers(min_value=-3, max_value=24 * 12),
)


def at_hours_before(hours: int) -> datetime:
    return AS_OF - timedelta(hours=hours)


properties_dicts = st.dictionaries(st.sampled_from(KEYS), PROPERTY_VALUES, max_size=3)
profile_fields = st.fixed_dictionaries({
    "email": st.sampled_from([None, "vip@shop.test", "ann@shop.test", "vip2@x.test"]),
    "firstName": st.sampled_from([None, "Ann", "Bo", "ann"]),
})


@st.composite
def worlds(
    draw: st.DrawFn,
    metrics: tuple[str, ...] = tuple(METRICS),
    hours: st.SearchStrategy[int] = HOURS_BEFORE,
    event_properties: st.SearchStrategy[dict[str, Any]] = properties_dicts,
) -> World:
    count = draw(st.integers(min_value=1, max_value=4))
    people = [
        RefProfile(i + 1, {"phoneNumber": None, "externalId": None, "lastName": None, **draw(profile_fields)},
                   to_micros(at_hours_before(draw(HOURS_BEFORE))), draw(properties_dicts))
        for i in range(count)
    ]
    happened = draw(st.lists(st.tuples(
        st.integers(min_value=1, max_value=count), st.sampled_from(metrics), hours, event_properties,
    ), max_size=30))
    return World(people, [RefEvent(p, m, to_micros(at_hours_before(h)), props) for p, m, h, props in happened])


def random_filters(segment_ids: tuple[str, ...] = ()) -> st.SearchStrategy[ast.Filter]:
    return filters(
        metrics=METRICS, properties=[*KEYS, "email"], values=SCALARS, segment_ids=segment_ids, max_leaves=5, max_where=1,
        profile_properties=[*KEYS, "email", "firstName", "createdAt"],
        times=HOURS_BEFORE.map(at_hours_before), follow_up_hours=st.sampled_from([1, 2, 12, 24, 48, 100]),
    )


async def load_world(store: Store, world: World, saved: dict[str, ast.Filter]) -> None:
    async with store.begin() as connection:
        for table in (profile_metrics, events, segments, profiles, metrics):
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
        ids = await connection.run_sync(metric_ids, {m.lower(): m for m in METRICS})
        if world.events:
            await connection.execute(sa.insert(events), [
                event_row(e.profile_id, ids[e.metric.lower()], e.ts, e.properties, None) for e in world.events
            ])
            # Loaded beside ingest: the derived table as a rebuild makes it (test_profile_metrics checks writes keep it so).
            await connection.run_sync(profile_metric_summaries.refresh_all)
        for segment_id, saved_filter in saved.items():
            await connection.execute(sa.insert(segments).values(
                id=int(segment_id), name=f"s{segment_id}", filter=filter_to_input(saved_filter),
                created_at=0, updated_at=0))


ID_NODES = NodeJson((("id", "id"),), "Profile")


async def sql_members(
    store: Store, node: ast.Filter, as_of: int, saved: dict[str, ast.Filter], page: int
) -> tuple[list[int], int]:
    """The audience paged through GraphQL's resolver path (cursors, adaptive shape, prefetched pages, nodes
    written as JSON by the database), and its count."""
    audience = FilterCompiler(store.dialect, as_of, saved).audience(node)
    seen: list[int] = []
    after = None
    while True:
        # Later pages come from the read started while the page before was handled (see test_pages).
        as_json = ID_NODES if page % 2 else None  # odd page sizes: nodes as the database writes them
        result = await profile_page(store, audience, page, after, as_json=as_json,
                                    identity=(repr(node), repr(saved), as_of))
        if as_json is not None:
            assert result.nodes_json is not None
            assert [int(node["id"]) for node in orjson.loads(result.nodes_json)] == result.ids
        else:
            assert [row.id for row in result.rows] == result.ids
        seen.extend(result.ids)
        if not result.has_next_page:
            break
        after = result.cursor(result.ids[-1])
    return seen, await count_members(store, audience)


async def walked_members(store: Store, node: ast.Filter, as_of: int, saved: dict[str, ast.Filter], page: int) -> list[int]:
    """The audience paged in the walk shape from the first page on."""
    audience = FilterCompiler(store.dialect, as_of, saved).audience(node)
    seen: list[int] = []
    while True:
        rows = await store.fetch(page_statement(audience, seen[-1] if seen else None, page, walk=True))
        seen.extend(row.id for row in rows)
        if len(rows) < page:
            return seen


# The store is deliberately shared across examples: each example first empties it.
# The heart of the project: four times the profile's examples (160 in CI, 4000 with "thorough").
@settings(
    max_examples=settings.default.max_examples * 4, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    world=worlds(),
    saved=st.lists(random_filters(), min_size=2, max_size=2),
    probes=st.lists(random_filters(("1", "2")), min_size=1, max_size=6),
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
        assert runner.run(walked_members(store, probe, as_of, segments_by_id, page)) == expected, probe
        # The text form's twin: printed, parsed back through the structured input's `expression`.
        twin = filter_from_input({"expression": print_filter(probe)}, parse_filter)
        assert twin == probe
        assert runner.run(count_members(store, FilterCompiler(store.dialect, as_of, segments_by_id).audience(twin))) == total


FOLLOW_UP_METRICS = (STARTED.name, "Placed Order")
GRID_HOURS = st.sampled_from([0, 1, 2, 3, 24, 25, 48, 50, 72])
follow_ups_on_grid = st.builds(
    ast.FollowUp,
    metric=st.sampled_from(FOLLOW_UP_METRICS),
    within_hours=st.sampled_from([1, 2, 24, 48]),
    same_properties=st.sampled_from([(), ("channel",)]),
)
follow_up_conditions = st.builds(
    ast.EventCondition,
    metric=st.sampled_from(FOLLOW_UP_METRICS),
    count=st.sampled_from([ast.AtLeast(1), ast.AtLeast(2), ast.Exactly(0), ast.AtMost(1)]),
    within=st.none() | st.sampled_from([ast.LastHours(24), ast.LastDays(2)]),
    followed_by=st.none() | follow_ups_on_grid,
    not_followed_by=st.none() | follow_ups_on_grid,
)


@settings(
    max_examples=settings.default.max_examples * 2, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    world=worlds(FOLLOW_UP_METRICS, GRID_HOURS, st.dictionaries(st.just("channel"), st.sampled_from(["SMS", "Web"]))),
    probes=st.lists(follow_up_conditions, min_size=1, max_size=10),
    as_of_hours=st.sampled_from([0, 1, 2, 24]),
)
def test_follow_up_boundaries_equal_reference(
    runner_and_store: Any, world: World, probes: list[ast.EventCondition], as_of_hours: int
) -> None:
    """Follow-ups on two metrics and an hour grid, so that pairs exactly `withinHours` apart are common."""
    runner, store = runner_and_store
    runner.run(load_world(store, world, {}))
    as_of = to_micros(at_hours_before(as_of_hours))
    for condition in probes:
        probe = ast.Did(condition)
        seen, total = runner.run(sql_members(store, probe, as_of, {}, 3))
        assert seen == world.members(probe, as_of), probe
        assert total == len(seen)
        assert runner.run(walked_members(store, probe, as_of, {}, 3)) == seen, probe


plain_dids = st.builds(
    lambda metric, within: ast.Did(ast.EventCondition(metric, within=within)),
    st.sampled_from(METRICS),
    st.none() | st.sampled_from([ast.LastDays(1), *(ast.Before(at_hours_before(h)) for h in (2, 30, 100))]),
)


@settings(
    max_examples=settings.default.max_examples * 2, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    world=worlds(),
    pairs=st.lists(st.tuples(plain_dids, random_filters()), min_size=1, max_size=4),
    as_of_hours=st.sampled_from([0, 5, 48]),
    page=st.integers(min_value=1, max_value=4),
)
def test_walks_along_a_did_x_equal_reference(
    runner_and_store: Any, world: World, pairs: list[tuple[ast.Filter, ast.Filter]], as_of_hours: int, page: int
) -> None:
    """"Did X" beside any other condition: walked pages of an "ever did X" run along X's profile_metrics rows,
    testing the rest."""
    runner, store = runner_and_store
    runner.run(load_world(store, world, {}))
    as_of = to_micros(at_hours_before(as_of_hours))
    for did, other in pairs:
        for probe in (ast.And((did, other)), ast.And((other, did)), did):
            expected = world.members(probe, as_of)
            assert runner.run(walked_members(store, probe, as_of, {}, page)) == expected, probe
