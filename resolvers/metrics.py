"""The Metrics analytics view: metric lookup, counts, time series, and the time windows they share.

Every number here is evaluated at "now" exactly as the filter language evaluates at `asOf`:
events after now do not count, and a `within` window means what it means in a segment filter
(`lastDays n` is now − n×24h ≤ t ≤ now, `since d` is t ≥ d, `before d` is t < d, `between` is
from ≤ t < to). So `count(within: W)` of a metric is the number of events a `did` condition with
window W would count.

Series buckets are computed in SQL with integer arithmetic on `ts` (microseconds since the epoch,
UTC), identically on SQLite and PostgreSQL: a bucket starts at `ts − (ts − offset) mod width`
(HOUR and DAY: offset 0; WEEK: buckets start on Monday 00:00 UTC, and 1970-01-01 was a Thursday,
so offset 4 days).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from resolvers.compiler import window_bounds, window_conditions
from resolvers.errors import InputPath, UserInputError
from resolvers.language import ast as ast
from resolvers.language.limits import check_property_name, check_window
from resolvers.language.structured import window_from_input
from store.dialects import dialect_named
from store.engine import Store
from store.tables import events, metrics
from vocabulary.agent_metrics import AGENT_METRIC_KEYS, AGENT_METRICS, agent_metric, metric_key
from vocabulary.timestamps import MICROS_PER_DAY, MICROS_PER_HOUR, now_utc, to_micros

MAX_BUCKETS = 10_000
MAX_POINTS = 100_000

INTERVALS: dict[str, tuple[int, int]] = {
    # name: (bucket width, offset of bucket starts from the epoch), both in microseconds
    "HOUR": (MICROS_PER_HOUR, 0),
    "DAY": (MICROS_PER_DAY, 0),
    "WEEK": (7 * MICROS_PER_DAY, 4 * MICROS_PER_DAY),  # 1970-01-05 was the first Monday
}
# Columns that hold the string value of a property, so grouping by them reads no JSON.
PROMOTED = {"channel": events.c.channel, "conversation_id": events.c.conversation_id}


# ---------------------------------------------------------------- time windows


def parse_window(value: Any, path: InputPath = ("within",)) -> ast.Window | None:
    """A TimeWindow given as plain JSON, checked against the filter language's limits."""
    if value is None:
        return None
    window = window_from_input(value, path)
    check_window(window, path)
    return window


def now_micros() -> int:
    return to_micros(now_utc())


# ---------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricRow:
    name: str
    id: int | None  # None: an agent metric that has no events yet (not in the metrics table)
    agent: str | None  # the AgentMetric enum name, for the four Customer Agent metrics


async def list_metrics(store: Store) -> list[MetricRow]:
    """The four agent metrics first (always, in their canonical order), then every other metric by name."""
    async with store.connect() as connection:
        rows = (await connection.execute(
            sa.select(metrics.c.id, metrics.c.name, metrics.c.name_key).order_by(metrics.c.name_key, metrics.c.id)
        )).all()
    by_key = {row.name_key: row for row in rows}
    out = [MetricRow(agent.name, _id_of(by_key.get(metric_key(agent.name))), agent.enum_name) for agent in AGENT_METRICS]
    out.extend(MetricRow(row.name, row.id, None) for row in rows if row.name_key not in AGENT_METRIC_KEYS)
    return out


async def find_metric(store: Store, name: str) -> MetricRow | None:
    """A metric by any spelling (case-insensitive; agent metric aliases); None when unknown."""
    agent = agent_metric(name)
    key = metric_key(agent.name if agent else name)
    async with store.connect() as connection:
        row = (await connection.execute(
            sa.select(metrics.c.id, metrics.c.name).where(metrics.c.name_key == key)
        )).first()
    if agent is not None:
        return MetricRow(agent.name, _id_of(row), agent.enum_name)
    return MetricRow(row.name, row.id, None) if row is not None else None


@dataclass(frozen=True)
class UnknownMetric:
    """A metric a filter names that has no events (so its conditions hold for no one), and the known names
    closest to it."""

    name: str
    did_you_mean: tuple[str, ...]

    @property
    def message(self) -> str:
        suggestions = " or ".join(f'"{name}"' for name in self.did_you_mean)
        hint = f"; did you mean {suggestions}?" if suggestions else ""
        return f'no event of metric "{self.name}" is stored, so no profile did it{hint}'


@dataclass
class KnownMetrics:
    """Which metric names have events, remembered once seen: metrics are never deleted, so only names not
    seen yet (a new metric, or a misspelt one) are looked up, and a filter of known metrics reads nothing."""

    keys: set[str] = field(default_factory=set)

    async def unknown(self, store: Store, names: Iterable[str]) -> list[UnknownMetric]:
        """The names (agent metrics aside: always known) with no stored event, each with up to 3 suggestions."""
        asked = {metric_key(name): name for name in names if agent_metric(name) is None}
        missing = [key for key in asked if key not in self.keys]
        if not missing:
            return []
        found = {row.name_key for row in await store.fetch(
            sa.select(metrics.c.name_key).where(metrics.c.name_key.in_(missing)))}
        self.keys |= found
        unknown = [asked[key] for key in missing if key not in found]
        if not unknown:
            return []
        known = [row.name for row in await store.fetch(sa.select(metrics.c.name).order_by(metrics.c.name_key))]
        known += [agent.name for agent in AGENT_METRICS if metric_key(agent.name) not in {metric_key(n) for n in known}]
        by_lower = {name.lower(): name for name in known}
        return [UnknownMetric(name, tuple(by_lower[close] for close in difflib.get_close_matches(
            name.lower(), list(by_lower), n=3, cutoff=0.6))) for name in unknown]


def _id_of(row: Any) -> int | None:
    return int(row.id) if row is not None else None


async def count_events(store: Store, metric_id: int | None, window: ast.Window | None) -> int:
    return await _aggregate(store, metric_id, window, sa.func.count())


async def count_profiles(store: Store, metric_id: int | None, window: ast.Window | None) -> int:
    return await _aggregate(store, metric_id, window, sa.func.count(sa.distinct(events.c.profile_id)))


async def last_seen(store: Store, metric_id: int | None) -> int | None:
    """The time of the metric's latest event up to now (microseconds), None without events."""
    if metric_id is None:
        return None
    query = sa.select(sa.func.max(events.c.ts)).where(events.c.metric_id == metric_id, events.c.ts <= now_micros())
    async with store.connect() as connection:
        found = await connection.scalar(query)
    return int(found) if found is not None else None


async def _aggregate(store: Store, metric_id: int | None, window: ast.Window | None, value: Any) -> int:
    if metric_id is None:
        return 0
    query = sa.select(value).where(
        events.c.metric_id == metric_id, *window_conditions(events.c.ts, window, now_micros()))
    async with store.connect() as connection:
        return int(await connection.scalar(query) or 0)


# ---------------------------------------------------------------- series


@dataclass(frozen=True)
class SeriesRow:
    start: int  # microseconds
    group: str | None
    count: int


def bucket_start(ts: int, interval: str) -> int:
    """The start of the bucket holding `ts` (Python's % is a floor modulo, like the SQL below)."""
    width, offset = INTERVALS[interval]
    return ts - (ts - offset) % width


def _bucket_sql(ts: Any, interval: str) -> Any:
    # SQL's % truncates towards zero: shift by a multiple of the width so that the operand is never
    # negative (any datetime from year 1 on), which makes it a floor modulo as in `bucket_start`.
    width, offset = INTERVALS[interval]
    shift = (10**17 // width + 1) * width
    return ts - (ts + sa.literal(shift - offset, sa.BigInteger)) % sa.literal(width, sa.BigInteger)


def group_value(dialect: str, properties: Any, key: str) -> Any:
    """The property's value as text (see StoreDialect.group_text)."""
    return dialect_named(dialect).group_text(properties, key)


def check_group_by(group_by: str | None, path: InputPath = ("groupBy",)) -> None:
    if group_by is not None:
        check_property_name(group_by, path)


async def series(
    store: Store, metric_id: int | None, interval: str, window: ast.Window, group_by: str | None,
) -> list[SeriesRow]:
    """Counts per bucket (and per group), oldest bucket first, groups in code-point order, null group last.

    Without groupBy every bucket of the window is returned, zero counts included, from the bucket
    holding the window's start (for `before`, the metric's first event in it) to the bucket holding
    its end or now, whichever is earlier. With groupBy only (bucket, group) pairs that have events.
    """
    check_group_by(group_by)
    now = now_micros()
    low, high = window_bounds(window, now)
    conditions = window_conditions(events.c.ts, window, now)
    if low is None and metric_id is not None:
        async with store.connect() as connection:
            low = await _first_event(connection, metric_id, conditions)
    if low is None or low > high:
        return []
    width, _ = INTERVALS[interval]
    first, last = bucket_start(low, interval), bucket_start(high, interval)
    buckets = (last - first) // width + 1
    if buckets > MAX_BUCKETS:
        raise UserInputError(
            f"a series holds at most {MAX_BUCKETS} buckets; this window spans {buckets} {interval} buckets:"
            " narrow the window or use a longer interval", ("within",))
    rows: list[SeriesRow] = []
    if metric_id is not None:
        rows = await _bucket_counts(store, metric_id, interval, conditions, group_by)
    if group_by is not None:
        return sorted(rows, key=lambda r: (r.start, r.group is None, r.group or ""))
    counts = {row.start: row.count for row in rows}
    return [SeriesRow(start, None, counts.get(start, 0)) for start in range(first, last + 1, width)]


async def _first_event(connection: AsyncConnection, metric_id: int, conditions: list[ColumnElement[bool]]) -> int | None:
    found = await connection.scalar(
        sa.select(sa.func.min(events.c.ts)).where(events.c.metric_id == metric_id, *conditions))
    return int(found) if found is not None else None


async def _bucket_counts(
    store: Store, metric_id: int, interval: str, conditions: list[ColumnElement[bool]], group_by: str | None,
) -> list[SeriesRow]:
    if group_by is None:
        group: Any = sa.null()
    elif group_by in PROMOTED:
        group = PROMOTED[group_by]
    else:
        group = group_value(store.dialect, events.c.properties, group_by)
    # Group by the columns of a subquery: PostgreSQL cannot match expressions holding parameters.
    selected = sa.select(_bucket_sql(events.c.ts, interval).label("bucket"), group.label("grp")).where(
        events.c.metric_id == metric_id, *conditions)
    if group_by == "channel":
        # Channels from the covering (metric, channel, ts) index, where SQLite chose (metric, ts) and read
        # each event's row for its channel, which is slower (docs/performance.md).
        selected = selected.with_hint(events, "INDEXED BY ix_events_metric_channel_ts", "sqlite")
    points = selected.subquery()
    query = sa.select(points.c.bucket, points.c.grp, sa.func.count().label("n")).group_by(
        points.c.bucket, points.c.grp).limit(MAX_POINTS + 1)
    async with store.connect() as connection:
        found = (await connection.execute(query)).all()
    if len(found) > MAX_POINTS:
        raise UserInputError(
            f"a series holds at most {MAX_POINTS} points (buckets × groups): narrow the window, use a longer"
            " interval or group by a property with fewer values", ("groupBy",))
    return [SeriesRow(int(row.bucket), row.grp, int(row.n)) for row in found]
