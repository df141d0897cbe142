"""The demo seed: deterministic, idempotent, and rich enough that the tour questions have answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from seed import PLACED_ORDER, VIEWED_PRODUCT, generate, generate_profiles, seed_store
from server.agent_metrics import AGENT_METRICS, ESCALATED, RECOMMENDED, STARTED
from server.store import Store, events, metrics, profiles
from server.timestamps import MICROS_PER_DAY, to_micros
from tests.stores import StoreFactory

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
    assert first["accepted"] == first["events"] > 0
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
    assert by_metric == summary["events_by_metric"]
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
    for name, segment_filter in TOUR.items():
        data = await gql.data(COUNT, {"filter": segment_filter, "asOf": END.isoformat()})
        total = data["profiles"]["totalCount"]
        assert 0 < total < PROFILES, name
