"""`having` and calendar windows against the reference evaluator, on worlds built around DST changes, month ends
and leap days in several zones.

Each example stores a random world whose events lie around local midnights of one zone near a DST change (or a
month end, or a leap day), with property values of every JSON type, then asks random did/didNot conditions with
figures whose values are drawn from the world's own figures (and just beside them) and calendar windows of that
zone, at an asOf on or beside a period's edge: through the API (paged members and totalCount), in the text form the
printer writes, and in both shapes of the compiled SQL. Every answer must equal tests/reference.py's, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.language.structured import filter_from_input
from resolvers.language.text import print_filter
from server.app import create_app
from server.config import Settings
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.reference import Event, Profile, World, day_start, figure
from tests.shapes import members_in_both_shapes
from tests.stores import StoreFactory, store_params

ORDER, VIEW = "Placed Order", "Viewed Product"
# A zone and a local day where something happens: a DST gap or fold (Lord Howe's is 30 minutes; Santiago and
# Beirut lose midnight itself; Havana repeats it), a month end, a leap day, a year end.
PLACES = [
    ("Europe/Paris", date(2026, 3, 29)), ("Europe/Paris", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8)), ("America/New_York", date(2026, 11, 1)),
    ("Australia/Lord_Howe", date(2026, 4, 5)), ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("America/Santiago", date(2026, 9, 6)), ("America/Santiago", date(2026, 4, 5)),
    ("Asia/Beirut", date(2026, 3, 29)), ("America/Havana", date(2026, 11, 1)),
    ("UTC", date(2028, 2, 29)), ("America/New_York", date(2026, 3, 1)), ("Europe/Paris", date(2027, 1, 1)),
]
TOTALS = [0, 1, 10, 12.5, 99.99, 0.01, 100, -5, 2.25, "12.50", "100", True, False, [1, 2], None, {"k": 1}]
SKUS = ["a", "b", "A", 1, 1.0, 2, True, False, "1", ["a", "b"], ["a", None], [["a"]], [], None, {"k": 1}]
NEAR = [timedelta(0), timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1), timedelta(minutes=30),
        -timedelta(minutes=30), timedelta(hours=1), -timedelta(hours=1), timedelta(hours=23), -timedelta(hours=11)]
QUERY = """query($filter: SegmentFilter, $asOf: DateTime) {
  profiles(filter: $filter, asOf: $asOf, first: 1000) { totalCount nodes { email } }
}"""
UPSERT = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { email } }"
TRACK = "mutation($events: [TrackEventInput!]!) { trackEvents(events: $events) { accepted } }"


def edges(zone: str, day: date) -> list[datetime]:
    """Local midnights around the day, and the starts of the months around it: where periods begin."""
    days = [day + timedelta(days=k) for k in range(-9, 10)]
    months = [date(day.year, day.month, 1), date(day.year + day.month // 12, day.month % 12 + 1, 1)]
    return sorted({day_start(zone, d) for d in (*days, *months)})


@st.composite
def instants(draw: st.DrawFn, around: list[datetime]) -> datetime:
    return draw(st.sampled_from(around)) + draw(st.sampled_from(NEAR))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, str, list[datetime]]:
    zone, day = draw(st.sampled_from(PLACES))
    around = edges(zone, day)
    people = [Profile(f"p{i}@x", {"email": f"p{i}@x"}, {}) for i in range(draw(st.integers(3, 6)))]
    happened = []
    for _ in range(draw(st.integers(4, 24))):
        properties: dict[str, Any] = {}
        for key, values in (("total", TOTALS), ("sku", SKUS)):
            if draw(st.integers(0, 4)):  # mostly present
                properties[key] = draw(st.sampled_from(values))
        metric = draw(st.sampled_from([ORDER, ORDER, ORDER, VIEW]))
        email = draw(st.sampled_from(people)).email
        happened.append(Event(email, metric, draw(instants(around)), properties))
    return World(people, happened), zone, around


@st.composite
def conditions(draw: st.DrawFn, world: World, zone: str, as_of: datetime) -> dict[str, Any]:
    condition: dict[str, Any] = {"metric": draw(st.sampled_from([ORDER, ORDER, VIEW]))}
    window = draw(st.sampled_from(["calendar", "calendar", "calendar", None, "lastDays"]))
    if window == "calendar":
        calendar: dict[str, Any] = {"unit": draw(st.sampled_from(["DAY", "DAY", "WEEK", "MONTH"]))}
        calendar["offset"] = draw(st.integers(0, 2))
        calendar["count"] = draw(st.integers(1, 3))
        calendar["timezone"] = draw(st.sampled_from([zone, zone, zone, "UTC"]))
        condition["within"] = {"calendar": calendar}
    elif window == "lastDays":
        condition["within"] = {"lastDays": draw(st.integers(1, 3))}
    if draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(["atLeast", "atMost", "exactly"]))
        condition["count"] = {kind: draw(st.integers(0, 2))}
    having = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        aggregate = {"function": draw(st.sampled_from(["SUM", "AVERAGE", "MIN", "MAX", "DISTINCT_COUNT"])),
                     "property": draw(st.sampled_from(["total", "total", "sku", "missing"])),
                     "op": draw(st.sampled_from(["EQ", "NEQ", "GT", "GTE", "LT", "LTE"]))}
        # A value some profile's figure takes (or just misses), so that the comparison's edge decides.
        person = draw(st.sampled_from(world.profiles))
        found = figure(aggregate, world.qualifying(condition, person, as_of))
        if found is None or draw(st.integers(0, 4)) == 0:
            found = float(draw(st.sampled_from([0, 1, 2, 3, 10, 100])))
        aggregate["value"] = found + draw(st.sampled_from([0.0, 0.0, 0.0, 0.000001, -0.000001, 0.5, -1.0]))
        having.append(aggregate)
    if having:
        condition["having"] = having
    return condition


@st.composite
def filters(draw: st.DrawFn, world: World, zone: str, as_of: datetime) -> dict[str, Any]:
    leaf = st.builds(lambda kind, c: {kind: c}, st.sampled_from(["did", "did", "didNot"]), conditions(world, zone, as_of))
    if draw(st.integers(0, 3)):
        return draw(leaf)
    return {draw(st.sampled_from(["and", "or"])): draw(st.lists(leaf, min_size=2, max_size=2))}


async def examine(store: Store, world: World, data: st.DataObject, zone: str, around: list[datetime]) -> None:
    app = create_app(Settings(database_url=store.url), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        for person in world.profiles:
            await gql.data(UPSERT, {"input": {"email": person.email}})
        events = [{"metric": e.metric, "profile": {"email": e.email}, "occurredAt": e.occurred_at.isoformat(),
                   "properties": e.properties} for e in world.events]
        await gql.data(TRACK, {"events": events})
        as_of = data.draw(instants(around), label="asOf")
        for probe in data.draw(st.lists(filters(world, zone, as_of), min_size=3, max_size=6), label="probes"):
            expected = world.members(probe, as_of)
            text = {"expression": print_filter(filter_from_input(probe))}
            for given in (probe, text):
                page = (await gql.data(QUERY, {"filter": given, "asOf": as_of.isoformat()}))["profiles"]
                assert sorted(n["email"] for n in page["nodes"]) == expected, (given, as_of)
                assert page["totalCount"] == len(expected), (given, as_of)
            assert await members_in_both_shapes(store, probe, as_of) == expected, (probe, as_of)


@pytest.mark.parametrize("kind", store_params())
def test_having_and_calendar_equal_reference(kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(kind, tmp_path)
    with asyncio.Runner() as runner:

        # Half the profile's examples: each stores a world and asks up to six probes three ways.
        @settings(max_examples=max(10, settings.default.max_examples // 2), deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(drawn=worlds(), data=st.data())
        def check(drawn: tuple[World, str, list[datetime]], data: st.DataObject) -> None:
            world, zone, around = drawn
            store = runner.run(factory.create())
            try:
                runner.run(examine(store, world, data, zone, around))
            finally:
                runner.run(store.dispose())

        try:
            check()
        finally:
            runner.run(factory.drop_all())
