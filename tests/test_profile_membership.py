"""Profile.membership: the exact intervals of a range during which a profile was in a filter's audience.

The property test computes them independently: tests/reference.py's evaluator is run at every instant where
membership could change (each event time, each event time + each window length, + each follow-up's hours,
each fixed date, and one microsecond after each) within the range, and the intervals are compared one by
one, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.config import Settings
from tests.audience_strategies import AS_OF, Vocabulary, as_of_instants, filters, worlds
from tests.conftest import GraphQLClient
from tests.helpers import before, event, iso, track
from tests.reference import Profile, World, parse_instant
from tests.stores import StoreFactory, store_params
from tests.test_audience_changes import members
from tests.test_audiences_reference import save, store_world

MEMBERSHIP = """query($id: ID!, $filter: SegmentFilter!, $from: DateTime!, $to: DateTime) {
  profile(id: $id) { membership(filter: $filter, from: $from, to: $to) { from to } }
}"""
MICROSECOND = timedelta(microseconds=1)
Interval = tuple[datetime, datetime | None]


def nodes(world: World, node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a filter, saved segments' filters included."""
    yield node
    ((key, value),) = node.items()
    if key in ("and", "or"):
        for item in value:
            yield from nodes(world, item)
    elif key == "not":
        yield from nodes(world, value)
    elif key == "inSegment":
        yield from nodes(world, world.segments[value])


def change_instants(world: World, node: dict[str, Any], profile: Profile, start: datetime, end: datetime) -> set[datetime]:
    """Instants at which the profile's membership may change: each of its event times, + each window length,
    + each follow-up's hours; each fixed date and calendar period start; and one microsecond after each."""
    lengths: set[timedelta] = {timedelta(0)}
    fixed: set[datetime] = set()
    for part in nodes(world, node):
        ((key, value),) = part.items()
        if key not in ("did", "didNot"):
            continue
        ((kind, window),) = (value.get("within") or {"none": None}).items()
        if kind == "calendar":  # periods start at local midnights: UTC offsets and shifts fall on quarter hours
            fixed |= {start.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=15 * k)
                      for k in range(int((end - start) / timedelta(minutes=15)) + 8)}
        elif kind == "lastDays":
            lengths.add(timedelta(days=window))
        elif kind == "lastHours":
            lengths.add(timedelta(hours=window))
        elif kind in ("since", "before"):
            fixed.add(parse_instant(window))
        elif kind == "between":
            fixed |= {parse_instant(window["from"]), parse_instant(window["to"])}
        for follow_up in ("followedBy", "notFollowedBy"):
            if value.get(follow_up):
                lengths.add(timedelta(hours=value[follow_up]["withinHours"]))
    times = {e.occurred_at for e in world.events if e.email == profile.email}
    found = {t + length for t in times for length in lengths} | fixed
    return found | {t + MICROSECOND for t in found}


def reference_intervals(world: World, node: dict[str, Any], profile: Profile, start: datetime, end: datetime) -> list[Interval]:
    instants = sorted({start, *(t for t in change_instants(world, node, profile, start, end) if start < t <= end)})
    intervals: list[Interval] = []
    opened = None
    for instant in instants:
        member = world.holds(node, profile, instant)
        if member and opened is None:
            opened = instant
        elif not member and opened is not None:
            intervals.append((opened, instant))
            opened = None
    if opened is not None:
        intervals.append((opened, None))
    return intervals


async def served_intervals(gql: GraphQLClient, key: int, node: dict[str, Any], start: datetime, end: datetime) -> list[Interval]:
    data = await gql.data(MEMBERSHIP, {"id": str(key), "filter": node, "from": iso(start), "to": iso(end)})
    return [(parse_instant(i["from"]), parse_instant(i["to"]) if i["to"] else None)
            for i in data["profile"]["membership"]]


async def examine(factory: StoreFactory, world: World, data: st.DataObject) -> None:
    store = await factory.create()
    app = create_app(Settings(database_url=store.url), store=store)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            await store_world(gql, world, 1)
            vocabulary = Vocabulary(world, AS_OF)
            saved = data.draw(filters(vocabulary), label="saved segment")
            segment = await save(gql, "saved", saved, AS_OF)
            world.segments[segment["id"]] = saved
            vocabulary.segment_ids = list(world.segments)
            everyone = {email: key for key, email in (await members(gql, {"and": []}, AS_OF)).items()}
            for probe in data.draw(st.lists(filters(vocabulary), min_size=1, max_size=2), label="probes"):
                one = data.draw(as_of_instants(world), label="one end")
                other = data.draw(st.one_of(as_of_instants(world), st.just(AS_OF - timedelta(days=7)),
                                            st.just(AS_OF + timedelta(days=10))), label="other end")
                other = other if other != one else one + timedelta(hours=1)
                start, end = min(one, other), max(one, other)
                for profile in data.draw(st.lists(st.sampled_from(world.profiles), min_size=1, max_size=3,
                                                  unique_by=id), label="profiles"):
                    expected = reference_intervals(world, probe, profile, start, end)
                    assert await served_intervals(gql, everyone[profile.email], probe, start, end) == expected, probe
    finally:
        await store.dispose()


@pytest.mark.parametrize("kind", store_params())
def test_membership_intervals_equal_the_reference_at_every_change(kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(kind, tmp_path)
    with asyncio.Runner() as runner:

        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(world=worlds(max_profiles=5), data=st.data())
        def check(world: World, data: st.DataObject) -> None:
            runner.run(examine(factory, world, data))

        try:
            check()
        finally:
            runner.run(factory.drop_all())


# ---------------------------------------------------------------- examples

RECENT_ORDER = {"did": {"metric": "Placed Order", "within": {"lastDays": 1}}}


async def test_a_window_makes_two_exact_intervals(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", "Placed Order", before(days=3)), event("ann@x", "Placed Order", before(hours=1)))
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    start = AS_OF - timedelta(days=5)
    found = await served_intervals(gql, key, RECENT_ORDER, start, AS_OF)
    assert found == [(AS_OF - timedelta(days=3), AS_OF - timedelta(days=2) + MICROSECOND), (AS_OF - timedelta(hours=1), None)]
    # Ending exactly when it leaves: the interval ends there.
    found = await served_intervals(gql, key, RECENT_ORDER, start, AS_OF - timedelta(days=2) + MICROSECOND)
    assert found == [(AS_OF - timedelta(days=3), AS_OF - timedelta(days=2) + MICROSECOND)]


async def test_a_calendar_window_moves_at_midnight(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", "Placed Order", before(hours=3)))
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    yesterday = {"did": {"metric": "Placed Order", "within": {"calendar": {"unit": "DAY", "offset": 1}}}}
    midnight = AS_OF.replace(hour=0) + timedelta(days=1)
    found = await served_intervals(gql, key, yesterday, AS_OF - timedelta(days=3), AS_OF + timedelta(days=3))
    assert found == [(midnight, midnight + timedelta(days=1))]
    paris = {"did": {"metric": "Placed Order", "within": {"calendar": {"unit": "DAY", "timezone": "Europe/Paris"}}}}
    found = await served_intervals(gql, key, paris, AS_OF - timedelta(days=3), AS_OF + timedelta(days=3))
    assert found == [(AS_OF - timedelta(hours=3), midnight - timedelta(hours=1))]


async def test_a_having_sum_over_a_window_enters_and_leaves(gql: GraphQLClient) -> None:
    await track(gql, event("ann@x", "Placed Order", before(hours=30), total=30),
                event("ann@x", "Placed Order", before(hours=10), total=15),
                event("ann@x", "Placed Order", before(hours=5), total="99"))  # a string: not summed
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    spent = {"did": {"metric": "Placed Order", "within": {"lastDays": 1},
                     "having": [{"function": "SUM", "property": "total", "op": "GTE", "value": 40}]}}
    found = await served_intervals(gql, key, spent, AS_OF - timedelta(days=2), AS_OF + timedelta(days=2))
    # 30 + 15 from the second order on, until the first leaves the day's window; the third adds nothing.
    assert found == [(AS_OF - timedelta(hours=10), AS_OF - timedelta(hours=6) + MICROSECOND)]
    # Nothing spent in the day, no orders included (count at least 0; SUM of no events is 0): before the first
    # order, and from when only the string total is left in the window on.
    none = {"did": {"metric": "Placed Order", "within": {"lastDays": 1}, "count": {"atLeast": 0},
                    "having": [{"function": "SUM", "property": "total", "op": "EQ", "value": 0}]}}
    found = await served_intervals(gql, key, none, AS_OF - timedelta(days=2), AS_OF + timedelta(days=2))
    assert found == [(AS_OF - timedelta(days=2), AS_OF - timedelta(hours=30)), (AS_OF + timedelta(hours=14) + MICROSECOND, None)]


async def test_bad_ranges_and_too_many_intervals(gql: GraphQLClient) -> None:
    # 1,002 orders two hours apart, each in a one-hour window: an interval each.
    orders = [event("ann@x", "Placed Order", before(hours=2 * i)) for i in range(1, 1003)]
    await track(gql, *orders)
    (key,) = (await members(gql, {"and": []}, AS_OF)).keys()
    hourly = {"did": {"metric": "Placed Order", "within": {"lastHours": 1}}}
    variables = {"id": str(key), "filter": hourly}
    error = await gql.error(MEMBERSHIP, {**variables, "from": before(days=90), "to": iso(AS_OF)})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(await served_intervals(gql, key, hourly, AS_OF - timedelta(hours=100), AS_OF)) == 50
    for start, end in ((iso(AS_OF), iso(AS_OF)), (iso(AS_OF), before(days=1)), (before(days=36501), iso(AS_OF))):
        error = await gql.error(MEMBERSHIP, {**variables, "from": start, "to": end})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (start, end)
