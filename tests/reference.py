"""A pure-Python evaluator of the filter language, written from the contract alone (docs/filters.md).

It reads filters in the structured input shape (plain JSON, as a client sends them) and a world of
profiles and events as a client sent them (metric spellings and property keys as given), so that it
shares nothing with the code under test: it imports nothing from `resolvers`, `server` or `schema`,
and its tables (metric spellings, key spellings) are written out from the contract.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

MISSING = object()

# The four Customer Agent metrics: every accepted spelling, matched case-insensitively.
AGENT_METRIC_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Started Conversation with Customer Agent": ("Started Customer Agent Conversation", "STARTED_CONVERSATION"),
    "Conversation with Customer Agent Resolved": ("Resolved Customer Agent Conversation", "CONVERSATION_RESOLVED"),
    "Conversation with Customer Agent Escalated": ("Escalated Customer Agent Conversation", "CONVERSATION_ESCALATED"),
    "Received Product Recommendation from Customer Agent": ("RECEIVED_PRODUCT_RECOMMENDATION",),
}
# On ingest of those four metrics, these spellings of their keys are stored under the canonical key.
AGENT_KEY_SPELLINGS: dict[str, tuple[str, ...]] = {
    "conversation_id": ("Conversation ID", "conversationId"),
    "initial_skill": ("Initial skill", "initialSkill"),
    "final_skill": ("Final skill", "finalSkill"),
    "tags": ("Tags",),
    "escalation_reason": ("Escalation reason", "escalationReason"),
    "products": ("Products",),
    "channel": ("Channel",),
}
PROFILE_FIELDS = ("email", "phoneNumber", "externalId", "firstName", "lastName")
NEGATIONS = {"NEQ": "EQ", "NOT_IN": "IN", "NOT_CONTAINS": "CONTAINS", "NOT_EXISTS": "EXISTS"}

_CANONICAL_METRIC = {
    spelling.lower(): canonical
    for canonical, others in AGENT_METRIC_SPELLINGS.items()
    for spelling in (canonical, *others)
}
_CANONICAL_KEY = {spelling: key for key, spellings in AGENT_KEY_SPELLINGS.items() for spelling in spellings}


def metric_identity(name: str) -> str:
    """What two metric names are the same metric by: case-insensitive, agent spellings folded."""
    return _CANONICAL_METRIC.get(name.lower(), name).lower()


def is_agent_metric(name: str) -> bool:
    return name.lower() in _CANONICAL_METRIC


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; without an offset it is UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class Event:
    """One event as it was sent: the profile's email, the metric as spelled, the time, the properties as keyed."""

    email: str
    metric: str
    occurred_at: datetime
    properties: dict[str, Any]

    def stored_properties(self) -> dict[str, Any]:
        if not is_agent_metric(self.metric):
            return self.properties
        return {_CANONICAL_KEY.get(key, key): value for key, value in self.properties.items()}


@dataclass
class Profile:
    email: str
    fields: dict[str, Any]  # firstName, lastName, …: absent or None when unset
    properties: dict[str, Any]
    created_at: datetime | None = None  # set by the server, read back after the world is stored


@dataclass
class World:
    profiles: list[Profile]
    events: list[Event]
    segments: dict[str, Any] = field(default_factory=dict)  # saved segment id -> its filter (input shape)
    _memo: dict[tuple[str, str, datetime], bool] = field(default_factory=dict, repr=False)

    def members(self, node: Mapping[str, Any] | None, as_of: datetime) -> list[str]:
        """The emails of the audience, sorted."""
        return sorted(p.email for p in self.profiles if node is None or self.holds(node, p, as_of))

    def holds(self, node: Mapping[str, Any], profile: Profile, as_of: datetime) -> bool:
        ((key, value),) = node.items()
        if key == "and":
            return all(self.holds(item, profile, as_of) for item in value)
        if key == "or":
            return any(self.holds(item, profile, as_of) for item in value)
        if key == "not":
            return not self.holds(value, profile, as_of)
        if key == "did":
            return self.did(value, profile, as_of)
        if key == "didNot":
            return not self.did(value, profile, as_of)
        if key == "profile":
            return profile_condition_holds(value, profile)
        if key == "inSegment":  # each saved segment evaluated once per profile and instant
            memo_key = (value, profile.email, as_of)
            if memo_key not in self._memo:
                self._memo[memo_key] = self.holds(self.segments[value], profile, as_of)
            return self._memo[memo_key]
        raise ValueError(f"the reference does not read {key!r}")

    def did(self, condition: Mapping[str, Any], profile: Profile, as_of: datetime) -> bool:
        found = self.qualifying(condition, profile, as_of)
        return count_holds(condition.get("count"), len(found)) and all(
            figure_holds(aggregate, found) for aggregate in condition.get("having") or ())

    def qualifying(self, condition: Mapping[str, Any], profile: Profile, as_of: datetime) -> list[Event]:
        """The qualifying events of a did/didNot condition for one profile at `as_of`."""
        existing = [e for e in self.events if e.email == profile.email and e.occurred_at <= as_of]
        found = []
        for event in existing:
            if metric_identity(event.metric) != metric_identity(condition["metric"]):
                continue
            if not in_window(event.occurred_at, condition.get("within"), as_of):
                continue
            if not all_hold(condition.get("where"), event.stored_properties()):
                continue
            followed_by, not_followed_by = condition.get("followedBy"), condition.get("notFollowedBy")
            if followed_by and not has_follow_up(event, followed_by, existing):
                continue
            if not_followed_by:
                waited = event.occurred_at + timedelta(hours=not_followed_by["withinHours"]) <= as_of
                if not waited or has_follow_up(event, not_followed_by, existing):
                    continue
            found.append(event)
        return found

    def nodes(self, node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """The node and every node below it, saved segments not expanded."""
        yield node
        ((key, value),) = node.items()
        if key in ("and", "or"):
            for item in value:
                yield from self.nodes(item)
        elif key == "not":
            yield from self.nodes(value)


def has_follow_up(event: Event, follow_up: Mapping[str, Any], candidates: list[Event]) -> bool:
    limit = event.occurred_at + timedelta(hours=follow_up["withinHours"])
    mine = event.stored_properties()
    for later in candidates:
        if metric_identity(later.metric) != metric_identity(follow_up["metric"]):
            continue
        if not event.occurred_at < later.occurred_at <= limit:
            continue
        theirs = later.stored_properties()
        if not all_hold(follow_up.get("where"), theirs):
            continue
        if all(present(mine.get(k, MISSING)) and present(theirs.get(k, MISSING)) and json_equal(mine[k], theirs[k])
               for k in follow_up.get("sameProperties") or ()):
            return True
    return False


def all_hold(conditions: list[Mapping[str, Any]] | None, properties: Mapping[str, Any]) -> bool:
    return all(condition_holds(c, properties.get(c["property"], MISSING)) for c in conditions or ())


def count_holds(count: Mapping[str, int] | None, n: int) -> bool:
    if not count:
        return n >= 1
    ((kind, k),) = count.items()
    return {"atLeast": n >= k, "atMost": n <= k, "exactly": n == k}[kind]


def in_window(moment: datetime, window: Mapping[str, Any] | None, as_of: datetime) -> bool:
    if not window:
        return True
    ((kind, value),) = window.items()
    if kind == "lastDays":
        return as_of - timedelta(days=value) <= moment <= as_of
    if kind == "lastHours":
        return as_of - timedelta(hours=value) <= moment <= as_of
    if kind == "since":
        return moment >= parse_instant(value)
    if kind == "before":
        return moment < parse_instant(value)
    if kind == "between":
        return parse_instant(value["from"]) <= moment < parse_instant(value["to"])
    if kind == "calendar":
        start, end = calendar_window(value, as_of)
        return start <= moment < end and moment <= as_of
    raise ValueError(f"the reference does not read the window {kind!r}")


def present(value: Any) -> bool:
    return value is not MISSING and value is not None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Same JSON type and value; numbers by value (1 equals 1.0), booleans never equal numbers."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def condition_holds(condition: Mapping[str, Any], value: Any) -> bool:
    """The property-condition table: `value` is MISSING when the key is absent (null counts as absent)."""
    op, wanted = condition["op"], condition.get("value")
    if op in NEGATIONS:
        return not condition_holds({**condition, "op": NEGATIONS[op]}, value)
    if op == "EXISTS":
        return present(value)
    if not present(value):
        return False
    if op == "EQ":
        return json_equal(value, wanted)
    if op == "IN":
        return isinstance(wanted, list) and any(json_equal(value, item) for item in wanted)
    if op == "CONTAINS":
        if isinstance(value, list):
            return any(json_equal(item, wanted) for item in value)
        return isinstance(value, str) and isinstance(wanted, str) and wanted in value
    if op == "STARTS_WITH":
        return isinstance(value, str) and isinstance(wanted, str) and value.startswith(wanted)
    both_numbers = is_number(value) and is_number(wanted)
    both_strings = isinstance(value, str) and isinstance(wanted, str)
    both_instants = isinstance(value, datetime) and isinstance(wanted, datetime)
    if not (both_numbers or both_strings or both_instants):
        return False
    return {"GT": value > wanted, "GTE": value >= wanted, "LT": value < wanted, "LTE": value <= wanted}[op]


def profile_condition_holds(condition: Mapping[str, Any], profile: Profile) -> bool:
    name = condition["property"]
    if name == "createdAt":  # an instant: the condition's values are ISO datetimes
        return condition_holds({**condition, "value": _instants(condition.get("value"))}, profile.created_at)
    if name in PROFILE_FIELDS:
        return condition_holds(condition, profile.fields.get(name, MISSING))
    return condition_holds(condition, profile.properties.get(name, MISSING))


def _instants(value: Any) -> Any:
    if isinstance(value, list):
        return [_instants(item) for item in value]
    return parse_instant(value) if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d", value) else value


# ---------------------------------------------------------------- having


def figure(aggregate: Mapping[str, Any], events: list[Event]) -> float | None:
    """A `having` figure over the qualifying events, rounded to 6 places (halves away from zero); None: no value."""
    values = [e.stored_properties().get(aggregate["property"], MISSING) for e in events]
    if aggregate["function"] == "DISTINCT_COUNT":
        distinct: list[Any] = []
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                if present(item) and not any(json_equal(item, seen) for seen in distinct):
                    distinct.append(item)
        return float(len(distinct))
    numbers = [float(v) for v in values if is_number(v)]
    if aggregate["function"] == "SUM":
        found = sum(numbers, 0.0)
    elif not numbers:
        return None
    else:
        found = {"AVERAGE": sum(numbers, 0.0) / len(numbers), "MIN": min(numbers), "MAX": max(numbers)}[aggregate["function"]]
    return float(Decimal(repr(found)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def figure_holds(aggregate: Mapping[str, Any], events: list[Event]) -> bool:
    found, wanted = figure(aggregate, events), aggregate["value"]
    if found is None:
        return False
    return {"EQ": found == wanted, "NEQ": found != wanted, "GT": found > wanted, "GTE": found >= wanted,
            "LT": found < wanted, "LTE": found <= wanted}[aggregate["op"]]


# ---------------------------------------------------------------- calendar periods


def calendar_window(window: Mapping[str, Any], as_of: datetime) -> tuple[datetime, datetime]:
    """[start of period offset + count - 1, start of period offset - 1): periods counted back from the one
    whose [start, next start) holds asOf."""
    unit, zone = window["unit"], window.get("timezone") or "UTC"
    offset, count = window.get("offset") or 0, window.get("count") or 1
    first_day = period_first_day(unit, as_of.astimezone(ZoneInfo(zone)).date(), 0)
    # The local date names the period unless a shift back across midnight put asOf before its start.
    while day_start(zone, period_first_day(unit, first_day, 1)) <= as_of:
        first_day = period_first_day(unit, first_day, 1)
    while day_start(zone, first_day) > as_of:
        first_day = period_first_day(unit, first_day, -1)
    return (day_start(zone, period_first_day(unit, first_day, -(offset + count - 1))),
            day_start(zone, period_first_day(unit, first_day, -offset + 1)))


def period_first_day(unit: str, day: date, steps: int) -> date:
    """The first day of the period `steps` periods after the one holding `day` (DAY, ISO WEEK from Monday, MONTH)."""
    if unit == "DAY":
        return day + timedelta(days=steps)
    if unit == "WEEK":
        return day - timedelta(days=day.weekday()) + timedelta(weeks=steps)
    months = day.year * 12 + day.month - 1 + steps
    return date(months // 12, months % 12 + 1, 1)


@functools.lru_cache(maxsize=4096)
def day_start(zone: str, day: date) -> datetime:
    """The first instant whose wall clock in the zone reads `day` 00:00 or later: a midnight in a DST gap
    becomes the first instant after the gap, an ambiguous one its first occurrence."""
    tz = ZoneInfo(zone)
    midnight = datetime(day.year, day.month, day.day)

    def reached(instant: datetime) -> bool:
        return instant.astimezone(tz).replace(tzinfo=None) >= midnight

    # From a day before (no zone is 26 hours from UTC), in 10-minute steps, then to the second.
    step = timedelta(minutes=10)
    instant = (midnight - timedelta(hours=27)).replace(tzinfo=UTC)
    while not reached(instant):
        instant += step
    low, high = instant - step, instant  # low has not reached midnight, high has
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        middle = middle.replace(microsecond=0)
        if reached(middle):
            high = middle
        else:
            low = middle
    return high
