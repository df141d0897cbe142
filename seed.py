"""Deterministic demo data for SegmentQL: shoppers, Customer Agent conversations, product views and orders.

`python seed.py [--database-url URL] [--profiles N] [--days D] [--seed S] [--end ISO]` fills a store
(creating its tables when missing). Data ends at `end`, by default *now rounded down to the hour*, so
two runs in the same hour with the same seed produce identical data. Every event carries a `uniqueId`
derived from the seed and the shopper, and profiles are inserted with ON CONFLICT DO NOTHING, so
rerunning on the same store adds nothing. `end` only shifts the whole timeline, so a rerun in a later
hour also adds nothing (the first run's data stays as it was: seed a fresh store to bring it up to now).
Emails and phone numbers do not depend on the seed: use one seed per store.

Events go through `resolvers.ingest.track_events` in batches of 5,000, the real ingest path. Profiles are
written directly in bulk (one row per shopper, `createdAt` = signup time) because `upsertProfile`
takes one transaction per profile, too slow for benchmark-sized stores.

Everything is generated lazily, one shopper at a time, from `random.Random` streams seeded per shopper,
so `generate_profiles()` / `generate()` can drive a 200,000-profile benchmark in constant memory.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from resolvers.ingest import EventInput, track_events
from server.config import Settings
from store import migrate
from store.engine import Store
from store.tables import dialect_insert
from store.tables import profiles as profiles_table
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, RESOLVED, STARTED
from vocabulary.timestamps import from_micros, to_micros

DEFAULT_PROFILES = 3000
DEFAULT_DAYS = 90
DEFAULT_SEED = 1
BATCH_SIZE = 5000

PLACED_ORDER = "Placed Order"
VIEWED_PRODUCT = "Viewed Product"

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class Weighted:
    """A fixed weighted choice: `pick(rng)` draws one item."""

    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.items = [item for item, _ in pairs]
        self.cumulative = list(itertools.accumulate(weight for _, weight in pairs))

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James", "Mia", "Lucas",
    "Amelia", "Mateo", "Harper", "Ethan", "Evelyn", "Aiden", "Chloe", "Leo", "Zoe", "Henry", "Nora", "Samuel",
    "Priya", "Arjun", "Yuki", "Hana", "Lena", "Jonas", "Camille", "Louis", "Sofia", "Diego", "Fatima", "Omar",
    "Grace", "Daniel", "Ines", "Marco",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "King", "Patel", "Nguyen", "Kim",
    "Sato", "Muller", "Schmidt", "Dubois", "Rossi", "Silva", "Novak", "Jensen", "Okafor",
)
EMAIL_DOMAINS = Weighted([("example.com", 6), ("example.org", 2), ("example.net", 2)])
COUNTRIES = Weighted([("US", 45), ("GB", 15), ("CA", 10), ("AU", 8), ("DE", 8), ("FR", 7), ("NL", 4), ("ES", 3)])
LOYALTY_TIERS = Weighted([("none", 55), ("silver", 25), ("gold", 14), ("platinum", 6)])
TIER_ACTIVITY = {"none": 0.8, "silver": 1.0, "gold": 1.4, "platinum": 1.9}
SIGNUP_SOURCES = Weighted([
    ("Organic search", 30), ("Instagram ad", 20), ("Referral", 15), ("Email popup", 15), ("Marketplace", 12),
    ("In store", 8),
])

CHANNELS = Weighted([("Web Chat", 45), ("SMS", 17), ("WhatsApp", 15), ("Email", 13), ("Instagram", 10)])
PHONE_CHANNELS = {"SMS", "WhatsApp"}
SKILLS = Weighted([
    ("Order tracking", 26), ("Product questions", 22), ("Returns", 16), ("Sizing", 14), ("Shipping", 12),
    ("Billing", 10),
])
# Chance that a conversation of this skill recommends products; escalation risk relative to the shopper's.
RECOMMEND_CHANCE = {"Product questions": 0.75, "Sizing": 0.6, "Returns": 0.25, "Order tracking": 0.1,
                    "Shipping": 0.1, "Billing": 0.05}
ESCALATION_FACTOR = {"Billing": 1.6, "Returns": 1.4, "Shipping": 1.1, "Order tracking": 0.9, "Sizing": 0.7,
                     "Product questions": 0.5}
ESCALATION_REASONS = {
    "Order tracking": Weighted([("Lost package", 4), ("Angry customer", 3), ("Refund request", 1)]),
    "Returns": Weighted([("Refund request", 5), ("Damaged item", 4), ("Angry customer", 2)]),
    "Product questions": Weighted([("Requested human agent", 2), ("Angry customer", 1)]),
    "Sizing": Weighted([("Refund request", 2), ("Requested human agent", 2), ("Angry customer", 1)]),
    "Shipping": Weighted([("Lost package", 4), ("Damaged item", 3), ("Angry customer", 2)]),
    "Billing": Weighted([("Complex billing", 6), ("Refund request", 3), ("Angry customer", 1)]),
}
REASON_TAGS = {"Refund request": "refund", "Damaged item": "damaged-item", "Angry customer": "negative-sentiment",
               "Complex billing": "billing", "Lost package": "lost-package", "Requested human agent": "human-requested"}
RESOLVED_TAGS = {"Order tracking": "order-status", "Returns": "return-label", "Product questions": "product-info",
                 "Sizing": "size-guide", "Shipping": "delivery-estimate", "Billing": "invoice"}

# A fixed catalog (the same for every seed): SKU-1000 … SKU-1239, popularity falling with the number.
_catalog_rng = random.Random("segmentql-catalog")
SKUS = tuple(f"SKU-{1000 + n}" for n in range(240))
PRICES = {sku: round(_catalog_rng.uniform(9, 180), 2) for sku in SKUS}
PRODUCTS = Weighted([(sku, 1 / (rank + 8)) for rank, sku in enumerate(SKUS)])
SHOP_CHANNELS = Weighted([("Web", 55), ("Mobile App", 40), ("In Store", 5)])

# Mean rates per day for a shopper of activity 1.
CONVERSATIONS_PER_DAY = 0.022
BROWSE_SESSIONS_PER_DAY = 0.035
DIRECT_ORDERS_PER_DAY = 0.004


@dataclass(frozen=True)
class Shopper:
    """A demo profile and the traits that drive its behaviour."""

    index: int
    email: str
    phone_number: str | None
    first_name: str
    last_name: str
    properties: dict[str, Any]
    created_at: int  # microseconds UTC (signup)
    activity: float  # multiplies every rate
    uses_agent: bool  # False: never starts a conversation
    preferred_channel: str
    escalation_risk: float

    def fields(self) -> dict[str, Any]:
        """The profile in ProfileInput shape, for `upsert_profile` / `upsertProfile`."""
        return {"email": self.email, "phoneNumber": self.phone_number, "firstName": self.first_name,
                "lastName": self.last_name, "properties": self.properties}

    def row(self) -> dict[str, Any]:
        """The profile as a `profiles` table row."""
        return {"email": self.email, "phone_number": self.phone_number, "external_id": None,
                "first_name": self.first_name, "last_name": self.last_name, "properties": self.properties,
                "created_at": self.created_at, "updated_at": self.created_at}


def default_end() -> datetime:
    """Now, rounded down to the hour (UTC)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _end_micros(end: datetime | None) -> int:
    moment = default_end() if end is None else end if end.tzinfo else end.replace(tzinfo=UTC)
    return to_micros(moment)


def make_shopper(index: int, days: int, seed: int, end: datetime | None = None) -> Shopper:
    """Shopper number `index` of a seed; the same arguments always give the same shopper."""
    end_us = _end_micros(end)
    rng = random.Random(f"segmentql:{seed}:profile:{index}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    tier = LOYALTY_TIERS.pick(rng)
    preferred = CHANNELS.pick(rng)
    has_phone = preferred in PHONE_CHANNELS or rng.random() < 0.45
    difficult = rng.random() < 0.08
    properties = {"loyalty tier": tier, "country": COUNTRIES.pick(rng), "signup source": SIGNUP_SOURCES.pick(rng),
                  "accepts marketing": rng.random() < 0.6}
    return Shopper(
        index=index,
        email=f"{first}.{last}{index}@{EMAIL_DOMAINS.pick(rng)}".lower(),
        phone_number=f"+1555{index:07d}" if has_phone else None,  # fictional 555 numbers
        first_name=first,
        last_name=last,
        properties=properties,
        created_at=end_us - int(rng.uniform(1, days + 365) * DAY),
        activity=rng.lognormvariate(0, 0.8) / math.exp(0.32) * TIER_ACTIVITY[tier] * (2.5 if difficult else 1),
        uses_agent=rng.random() < 0.72,
        preferred_channel=preferred,
        escalation_risk=0.55 if difficult else 0.15,
    )


def generate_profiles(profiles: int, days: int, seed: int, end: datetime | None = None) -> Iterator[Shopper]:
    """The seed's shoppers, one at a time."""
    fixed_end = from_micros(_end_micros(end))
    for index in range(profiles):
        yield make_shopper(index, days, seed, fixed_end)


def generate(profiles: int, days: int, seed: int, end: datetime | None = None) -> Iterator[EventInput]:
    """Every event of the seed's shoppers, shopper by shopper (each shopper's in time order)."""
    fixed_end = from_micros(_end_micros(end))
    for shopper in generate_profiles(profiles, days, seed, fixed_end):
        yield from shopper_events(shopper, days, seed, fixed_end)


def shopper_events(shopper: Shopper, days: int, seed: int, end: datetime | None = None) -> list[EventInput]:
    """One shopper's events within the `days` before `end`, oldest first."""
    return _ShopperTimeline(shopper, days, seed, _end_micros(end)).events()


class _ShopperTimeline:
    """Builds one shopper's conversations, views and orders from its own random stream."""

    def __init__(self, shopper: Shopper, days: int, seed: int, end: int) -> None:
        self.shopper = shopper
        self.seed = seed
        self.end = end
        self.start = max(end - days * DAY, shopper.created_at)
        self.rng = random.Random(f"segmentql:{seed}:events:{shopper.index}")
        self.tag = f"{seed}-{shopper.index:06d}"
        self.timed: list[tuple[int, EventInput]] = []
        self.orders = 0
        self.views = 0

    def events(self) -> list[EventInput]:
        if self.shopper.uses_agent:
            for number, at in enumerate(self._arrivals(CONVERSATIONS_PER_DAY)):
                self._conversation(number, at)
        for at in self._arrivals(BROWSE_SESSIONS_PER_DAY):
            self._browse(at)
        for at in self._arrivals(DIRECT_ORDERS_PER_DAY):
            self._order(at, [PRODUCTS.pick(self.rng) for _ in range(self.rng.randint(1, 2))], "Direct")
        self.timed.sort(key=lambda pair: pair[0])
        return [event for _, event in self.timed]

    def _arrivals(self, per_day: float) -> list[int]:
        """Times of a Poisson process with this daily rate (times the shopper's activity)."""
        rate = per_day * self.shopper.activity / DAY
        times: list[int] = []
        at = float(self.start)
        while rate > 0:
            at += self.rng.expovariate(rate)
            if at > self.end:
                break
            times.append(int(at))
        return times

    def _add(self, at: int, metric: str, properties: dict[str, Any], unique_id: str) -> bool:
        """Adds an event unless it would happen after `end` (then it has not happened yet)."""
        if at > self.end:
            return False
        self.timed.append((at, EventInput(metric=metric, profile={"email": self.shopper.email},
                                          occurred_at=from_micros(at), properties=properties, unique_id=unique_id)))
        return True

    def _conversation(self, number: int, at: int) -> None:
        rng = self.rng
        channel = self.shopper.preferred_channel if rng.random() < 0.65 else CHANNELS.pick(rng)
        if channel in PHONE_CHANNELS and self.shopper.phone_number is None:
            channel = "Web Chat"
        skill = SKILLS.pick(rng)
        conversation_id = f"conv-{self.tag}-{number:03d}"
        base = {"conversation_id": conversation_id, "channel": channel}
        self._add(at, STARTED.name, {**base, "initial_skill": skill}, f"{conversation_id}:started")
        recommended = rng.random() < RECOMMEND_CHANCE[skill]
        if recommended:
            rec_at = at + rng.randint(1, 8) * MINUTE
            products = list(dict.fromkeys(PRODUCTS.pick(rng) for _ in range(rng.randint(1, 3))))
            if self._add(rec_at, RECOMMENDED.name, {**base, "products": products}, f"{conversation_id}:recommended"):
                self._after_recommendation(rec_at, products, channel)
        self._outcome(at, skill, base, recommended)

    def _outcome(self, at: int, skill: str, base: dict[str, Any], recommended: bool) -> None:
        rng = self.rng
        conversation_id = base["conversation_id"]
        roll = rng.random()
        escalate = min(0.9, self.shopper.escalation_risk * ESCALATION_FACTOR[skill])
        if roll < escalate:
            reason = ESCALATION_REASONS[skill].pick(rng)
            tags = ["needs-human", REASON_TAGS[reason]]
            if self.shopper.properties["loyalty tier"] in ("gold", "platinum"):
                tags.append("vip")
            self._add(at + rng.randint(2, 25) * MINUTE, ESCALATED.name,
                      {**base, "escalation_reason": reason, "tags": tags}, f"{conversation_id}:escalated")
        elif roll < escalate + (1 - escalate) * 0.85:
            final = skill if rng.random() < 0.85 else SKILLS.pick(rng)
            tags = [RESOLVED_TAGS[final]]
            if recommended:
                tags.append("recommendation")
            if rng.random() < 0.4:
                tags.append("first-contact-resolution")
            self._add(at + rng.randint(4, 45) * MINUTE, RESOLVED.name,
                      {**base, "final_skill": final, "tags": tags}, f"{conversation_id}:resolved")
        # else: the shopper walked away and the conversation stays open.

    def _after_recommendation(self, at: int, products: list[str], channel: str) -> None:
        """Views the recommended products sometimes; orders within 48 hours about a third of the time."""
        rng = self.rng
        if rng.random() < 0.55:
            self._view(at + rng.randint(2, 360) * MINUTE, products[0], "Customer Agent")
        roll = rng.random()
        if roll < 0.33 * min(1.5, TIER_ACTIVITY[self.shopper.properties["loyalty tier"]]):
            delay = min(47.5 * HOUR, rng.expovariate(1 / (10 * HOUR)) + 20 * MINUTE)
        elif roll < 0.6:
            delay = rng.uniform(50, 120) * HOUR  # bought later: outside the 48-hour window
        else:
            return
        items = products[: rng.randint(1, len(products))] + [PRODUCTS.pick(rng) for _ in range(rng.randint(0, 1))]
        shop_channel = "Mobile App" if channel in PHONE_CHANNELS | {"Instagram"} else "Web"
        self._order(at + int(delay), items, "Customer Agent", shop_channel)

    def _browse(self, at: int) -> None:
        rng = self.rng
        channel = SHOP_CHANNELS.pick(rng)
        viewed = [PRODUCTS.pick(rng) for _ in range(rng.randint(1, 4))]
        for step, sku in enumerate(viewed):
            self._view(at + step * rng.randint(1, 6) * MINUTE, sku, "Browse", channel)
        if rng.random() < 0.12:
            self._order(at + rng.randint(10, 90) * MINUTE, viewed[: rng.randint(1, min(3, len(viewed)))],
                        "Browse", channel)

    def _view(self, at: int, sku: str, source: str, channel: str = "Web") -> None:
        number = self.views
        self.views += 1
        self._add(at, VIEWED_PRODUCT, {"sku": sku, "price": PRICES[sku], "source": source, "channel": channel},
                  f"view-{self.tag}-{number:04d}")

    def _order(self, at: int, items: list[str], source: str, channel: str | None = None) -> None:
        rng = self.rng
        order_id = f"ORD-{self.tag}-{self.orders:03d}"
        self.orders += 1
        quantities = [1 if rng.random() < 0.85 else 2 for _ in items]
        total = round(sum(PRICES[sku] * qty for sku, qty in zip(items, quantities, strict=True)), 2)
        properties = {"order_id": order_id, "total": total, "currency": "USD", "items": items,
                      "item_count": sum(quantities), "channel": channel or SHOP_CHANNELS.pick(rng), "source": source}
        self._add(at, PLACED_ORDER, properties, order_id)


# ---------------------------------------------------------------- writing a store


async def _insert_profiles(store: Store, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with store.begin() as connection:
            await connection.execute(dialect_insert(store.dialect, profiles_table).on_conflict_do_nothing(), rows)


async def _count_profiles(store: Store) -> int:
    async with store.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(profiles_table)) or 0)


async def seed_store(
    store: Store, profiles: int = DEFAULT_PROFILES, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED,
    end: datetime | None = None, batch_size: int = BATCH_SIZE, progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Seeds `store` (tables created when missing) and returns a summary of what was generated and stored."""
    started = time.perf_counter()
    fixed_end = from_micros(_end_micros(end))
    await migrate.prepare(store)
    profiles_before = await _count_profiles(store)
    by_metric: Counter[str] = Counter()
    accepted = duplicates = generated = 0
    pending_profiles: list[dict[str, Any]] = []
    pending_events: list[EventInput] = []

    async def flush(final: bool) -> None:
        nonlocal accepted, duplicates
        await _insert_profiles(store, pending_profiles)
        pending_profiles.clear()
        while len(pending_events) >= batch_size or (final and pending_events):
            batch = pending_events[:batch_size]
            del pending_events[:batch_size]
            result = await track_events(store, batch)
            accepted += result.accepted
            duplicates += result.duplicates

    for done, shopper in enumerate(generate_profiles(profiles, days, seed, fixed_end), start=1):
        pending_profiles.append(shopper.row())
        events = shopper_events(shopper, days, seed, fixed_end)
        by_metric.update(event.metric for event in events)
        generated += len(events)
        pending_events.extend(events)
        if len(pending_events) >= batch_size:
            await flush(final=False)
            if progress:
                progress(f"  {done:,}/{profiles:,} profiles, {generated:,} events "
                         f"({time.perf_counter() - started:.1f}s)")
    await flush(final=True)
    return {
        "end": fixed_end.isoformat(),
        "profiles": profiles,
        "profiles_created": await _count_profiles(store) - profiles_before,
        "events": generated,
        "accepted": accepted,
        "duplicates": duplicates,
        "events_by_metric": dict(sorted(by_metric.items())),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fill a SegmentQL store with deterministic demo data.")
    parser.add_argument("--database-url", default=None, help="default: $SEGMENTQL_DATABASE_URL or the default store")
    parser.add_argument("--profiles", type=int, default=DEFAULT_PROFILES, help=f"shoppers (default {DEFAULT_PROFILES})")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help=f"days of history (default {DEFAULT_DAYS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--end", default=None,
                        help="ISO datetime the data ends at (default: now rounded down to the hour, UTC)")
    args = parser.parse_args(argv)
    if args.profiles < 0 or args.days < 1:
        parser.error("--profiles must be ≥ 0 and --days ≥ 1")
    end = datetime.fromisoformat(args.end.replace("Z", "+00:00")) if args.end else None
    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    summary = asyncio.run(_run(settings.database_url, args.profiles, args.days, args.seed, end))
    print(f"Seeded {settings.database_url} in {summary['seconds']}s (seed {args.seed}, data ends {summary['end']})")
    print(f"  profiles: {summary['profiles']:,} generated, {summary['profiles_created']:,} new")
    print(f"  events:   {summary['events']:,} generated, {summary['accepted']:,} stored, "
          f"{summary['duplicates']:,} already there")
    for metric, count in summary["events_by_metric"].items():
        print(f"    {count:>9,}  {metric}")
    return 0


async def _run(url: str, profiles: int, days: int, seed: int, end: datetime | None) -> dict[str, Any]:
    store = Store(url)
    try:
        return await seed_store(store, profiles, days, seed, end, progress=print)
    finally:
        await store.dispose()


if __name__ == "__main__":
    sys.exit(main())
