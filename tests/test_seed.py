"""The demo seed: deterministic, idempotent, and rich enough that the tour questions have answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seed import PLACED_ORDER, VIEWED_PRODUCT, generate, generate_profiles, seed_store
from store.engine import Store
from store.tables import events, metrics, profiles
from tests.stores import StoreFactory
from vocabulary.agent_metrics import AGENT_METRICS, ESCALATED, RECOMMENDED, RESOLVED, STARTED
from vocabulary.timestamps import MICROS_PER_DAY, to_micros

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PROFILES, DAYS, SEED = 300, 30, 7
COUNT = """query($filter: SegmentFilter, $asOf: DateTime) { profiles(filter: $filter, asOf: $asOf) { totalCount } }"""

TOUR = {
    "recommended, no order within 48 hours": {"did": {
        "metric": RECOMMENDED.name, "within": {"lastDays": 7},
        "notFollowedBy": {"metric": PLACED_ORDER, "withinHours": 48}}},
    "escalated in the last 7 days": {"did": {"metric": ESCALATED.name, "within": {"lastDays": 7}}},
    "started by SMS": {"did": {"metric": STARTED.name, "where": [{"property": "channel", "op": "EQ", "value": "SMS"}]}},
    "escalated at least twice in 30 days": {"did": {
        "metric": ESCALATED.name, "count": {"atLeast": 2}, "within": {"lastDays": 30}}},
    "never started a conversation": {"didNot": {"metric": STARTED.name}},
}


# The demo data of (PROFILES, DAYS, SEED, END) is deterministic: these are its exact figures.
EVENTS_BY_METRIC = {
    ESCALATED.name: 54, RESOLVED.name: 101, PLACED_ORDER: 137, RECOMMENDED.name: 60, STARTED.name: 177, VIEWED_PRODUCT: 1022,
}
TOUR_ANSWERS = {
    "recommended, no order within 48 hours": 7,
    "escalated in the last 7 days": 13,
    "started by SMS": 17,
    "escalated at least twice in 30 days": 8,
    "never started a conversation": 204,
}


def tour_answers_from_the_generated_events() -> dict[str, int]:
    """The tour questions answered in Python over the events the seed generates, as SEMANTICS.md defines them."""
    by_profile: dict[str, list[tuple[str, datetime, dict[str, Any]]]] = {
        shopper.email: [] for shopper in generate_profiles(PROFILES, DAYS, SEED, END)}
    for e in generate(PROFILES, DAYS, SEED, END):
        assert e.occurred_at is not None and e.profile["email"] is not None
        by_profile[e.profile["email"]].append((e.metric, e.occurred_at, e.properties or {}))

    def times(email: str, metric: str, since: datetime | None = None) -> list[datetime]:
        return [t for m, t, _ in by_profile[email] if m == metric and t <= END and (since is None or since <= t)]

    def dropped_off(email: str) -> bool:
        orders = times(email, PLACED_ORDER)
        return any(x + timedelta(hours=48) <= END and not any(x < y <= x + timedelta(hours=48) for y in orders)
                   for x in times(email, RECOMMENDED.name, END - timedelta(days=7)))

    week, month = END - timedelta(days=7), END - timedelta(days=30)
    return {
        "recommended, no order within 48 hours": sum(map(dropped_off, by_profile)),
        "escalated in the last 7 days": sum(bool(times(email, ESCALATED.name, week)) for email in by_profile),
        "started by SMS": sum(any(m == STARTED.name and t <= END and p.get("channel") == "SMS" for m, t, p in events)
                              for events in by_profile.values()),
        "escalated at least twice in 30 days": sum(len(times(email, ESCALATED.name, month)) >= 2 for email in by_profile),
        "never started a conversation": sum(not times(email, STARTED.name) for email in by_profile),
    }


async def _seed(store: Store) -> dict[str, Any]:
    return await seed_store(store, PROFILES, DAYS, SEED, END)


async def _stored_events(store: Store) -> list[tuple[Any, ...]]:
    query = (sa.select(profiles.c.email, metrics.c.name, events.c.ts, events.c.properties, events.c.unique_id)
             .join(profiles, profiles.c.id == events.c.profile_id).join(metrics, metrics.c.id == events.c.metric_id)
             .order_by(events.c.id))
    async with store.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]


async def _stored_profiles(store: Store) -> list[tuple[Any, ...]]:
    query = sa.select(profiles.c.email, profiles.c.phone_number, profiles.c.first_name, profiles.c.last_name,
                      profiles.c.properties, profiles.c.created_at).order_by(profiles.c.id)
    async with store.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]


async def test_same_seed_and_end_give_identical_stores(store: Store, store_kind: str, tmp_path: Path) -> None:
    factory = StoreFactory(store_kind, tmp_path)
    other = await factory.create()
    try:
        await _seed(store)
        await _seed(other)
        first, second = await _stored_events(store), await _stored_events(other)
        assert first == second
        assert await _stored_profiles(store) == await _stored_profiles(other)
    finally:
        await other.dispose()
        await factory.drop_all()
    generated = [(e.metric, to_micros(e.occurred_at), e.unique_id) for e in generate(PROFILES, DAYS, SEED, END)
                 if e.occurred_at is not None]
    assert sorted(generated) == sorted((metric, ts, unique_id) for _, metric, ts, _, unique_id in first)


async def test_reseeding_the_same_store_adds_nothing(store: Store) -> None:
    first = await _seed(store)
    assert first["profiles_created"] == PROFILES
    assert first["accepted"] == first["events"] == sum(EVENTS_BY_METRIC.values()) == 1551
    before = await _stored_events(store)
    again = await _seed(store)
    assert again["profiles_created"] == 0
    assert again["accepted"] == 0
    assert again["duplicates"] == first["events"]
    assert await _stored_events(store) == before
    later = await seed_store(store, PROFILES, DAYS, SEED, END + timedelta(days=1))  # a rerun the next day
    assert (later["accepted"], later["profiles_created"]) == (0, 0)


async def test_every_metric_is_present_inside_the_window(store: Store) -> None:
    summary = await _seed(store)
    stored = await _stored_events(store)
    by_metric: dict[str, int] = {}
    for _, metric, _, _, _ in stored:
        by_metric[metric] = by_metric.get(metric, 0) + 1
    assert by_metric == summary["events_by_metric"] == EVENTS_BY_METRIC
    assert set(by_metric) == {*(m.name for m in AGENT_METRICS), PLACED_ORDER, VIEWED_PRODUCT}
    end = to_micros(END)
    assert all(end - DAYS * MICROS_PER_DAY <= ts <= end for _, _, ts, _, _ in stored)
    channels = {props["channel"] for _, metric, _, props, _ in stored if metric == STARTED.name}
    assert channels == {"Web Chat", "SMS", "WhatsApp", "Email", "Instagram"}
    shoppers = list(generate_profiles(PROFILES, DAYS, SEED, END))
    assert len({s.email for s in shoppers}) == PROFILES
    assert all(s.first_name and s.last_name and s.properties["loyalty tier"] for s in shoppers)
    assert any(s.phone_number for s in shoppers) and not all(s.phone_number for s in shoppers)


async def test_the_tour_questions_have_answers(store: Store, gql: Any) -> None:
    await _seed(store)
    answers = {}
    for name, segment_filter in TOUR.items():
        data = await gql.data(COUNT, {"filter": segment_filter, "asOf": END.isoformat()})
        answers[name] = data["profiles"]["totalCount"]
    assert answers == TOUR_ANSWERS
    assert all(0 < total < PROFILES for total in answers.values())  # each question tells profiles apart


def test_the_tour_answers_follow_from_the_generated_events() -> None:
    assert tour_answers_from_the_generated_events() == TOUR_ANSWERS
