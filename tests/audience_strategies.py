"""Hypothesis strategies for worlds (profiles and events as a client sends them) and for filters that ask
them real questions: metrics, keys, values, instants, window lengths and follow-up waits are drawn from
the world's own data and just around its edges, in the structured input shape.

Like tests/reference.py, this module imports nothing of the code under test.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.reference import AGENT_KEY_SPELLINGS, AGENT_METRIC_SPELLINGS, Event, Profile, World, calendar_window, figure

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# How far a window's edge lies from the event time it is drawn at: mostly on it, so that which side of the
# edge is inclusive decides whether the event counts.
NUDGES = st.sampled_from([timedelta(0), timedelta(0), MICROSECOND, -MICROSECOND])
STARTED, RESOLVED, ESCALATED, RECOMMENDED = AGENT_METRIC_SPELLINGS
ORDER, VIEW = "Placed Order", "Viewed Product"
UNKNOWN_METRIC = "Opened Email"  # never sent: its audience is decided by zero counts alone

# Hours before AS_OF: mostly on a coarse grid, so that window and follow-up edges are hit exactly.
HOURS = st.one_of(st.sampled_from([0, 1, 2, 3, 12, 24, 25, 47, 48, 49, 72, 96]), st.integers(-2, 120))
# Free properties of custom events, of every JSON type, so that 1 = 1.0, booleans and lists meet.
CUSTOM_VALUES: dict[str, list[Any]] = {
    "n": [1, 1.0, 0, 2.5, True, False, "1", None],  # values that a reading of JSON types may take as equal
    "sku": ["a", "ab", "b", "A", ["a", "b"], ["ab"], 1, None],
    "tags": [["a", "b"], ["a"], [], ["b", 1], "a", "ab", None],
    "total": [0, 10, 99.5, 100, 12.25, 0.01, "100", "12.50", {"a": 1}, [1, 2], True, None],
    "channel": ["SMS", "Web Chat"],
}
AGENT_VALUES: dict[str, list[Any]] = {
    "conversation_id": ["c1", "c2"],
    "channel": ["SMS", "Web Chat", "sms"],
    "initial_skill": ["Order tracking", "Returns", None],
    "final_skill": ["Order tracking", "Returns"],
    "escalation_reason": ["refund", "angry", None],
    "tags": [["refund"], ["refund", "vip"], ["vip"], []],
    "products": [["p1"], ["p1", "p2"], ["p2"]],
}
AGENT_KEYS: dict[str, tuple[str, ...]] = {
    STARTED: ("conversation_id", "initial_skill", "channel"),
    RESOLVED: ("conversation_id", "final_skill", "tags", "channel"),
    ESCALATED: ("conversation_id", "escalation_reason", "tags", "channel"),
    RECOMMENDED: ("conversation_id", "products", "channel"),
}
REQUIRED_KEYS = {STARTED: ("conversation_id",), RESOLVED: ("conversation_id",), ESCALATED: ("conversation_id",),
                 RECOMMENDED: ("conversation_id", "products")}
REQUIRED_SPELLINGS = {spelling for keys in REQUIRED_KEYS.values() for key in keys
                      for spelling in (key, *AGENT_KEY_SPELLINGS[key])}
PROFILE_VALUES: dict[str, list[Any]] = {
    "firstName": ["Ann", "ann", "Bo", "Annabel"],
    "lastName": ["Lee"],
    "tier": ["gold", "Gold", 1, 1.0, 0, True, False, None],
    "age": [18, 30, 30.5, "30", False],
}
COMPARISONS = ("EQ", "NEQ", "IN", "NOT_IN", "GT", "GTE", "LT", "LTE", "EXISTS", "NOT_EXISTS")
ALL_OPS = (*COMPARISONS, "CONTAINS", "NOT_CONTAINS", "STARTS_WITH")
INSTANT_OPS = ("GT", "GTE", "LT", "LTE", "EQ", "NEQ", "IN", "NOT_IN")  # createdAt is never absent: no EXISTS


def iso(moment: datetime) -> str:
    return moment.isoformat()


def spellings(metric: str) -> list[str]:
    """Ways a client may write a metric: its name, its aliases, other cases."""
    names = [metric, *AGENT_METRIC_SPELLINGS.get(metric, ())]
    return [*names, metric.lower(), metric.upper()]


@st.composite
def event_properties(draw: st.DrawFn, metric: str) -> dict[str, Any]:
    if metric not in AGENT_METRIC_SPELLINGS:
        keys = draw(st.lists(st.sampled_from(sorted(CUSTOM_VALUES)), unique=True, max_size=4))
        if "n" not in keys and draw(st.integers(0, 3)):  # mostly there: the key whose values mix JSON types
            keys.append("n")
        return {key: draw(st.sampled_from(CUSTOM_VALUES[key])) for key in keys}
    optional = [k for k in AGENT_KEYS[metric] if k not in REQUIRED_KEYS[metric]]
    keys = [*REQUIRED_KEYS[metric], *draw(st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)))]
    # Sent under any accepted spelling of the key: stored under the canonical one.
    return {draw(st.sampled_from((key, *AGENT_KEY_SPELLINGS[key]))): draw(st.sampled_from(AGENT_VALUES[key])) for key in keys}


@st.composite
def worlds(draw: st.DrawFn, min_profiles: int = 3, max_profiles: int = 7, max_events: int = 45) -> World:
    """Profiles (some without events) and their events before AS_OF, a few metrics each spelled as clients do."""
    count = draw(st.integers(min_profiles, max_profiles))
    people = []
    for i in range(count):
        fields = {name: draw(st.sampled_from([*values, None]))
                  for name, values in PROFILE_VALUES.items() if name.endswith("Name")}
        properties = {name: draw(st.sampled_from(values)) for name, values in PROFILE_VALUES.items()
                      if not name.endswith("Name") and draw(st.booleans())}
        email = f"p{i}@shop.test"
        people.append(Profile(email, {**fields, "email": email}, properties))
    metrics = draw(st.lists(st.sampled_from([ORDER, RECOMMENDED, STARTED, ESCALATED, VIEW, RESOLVED]),
                            min_size=2, max_size=3, unique=True))
    happened = []
    for _ in range(draw(st.integers(2 * count, max_events))):  # dense enough that most profiles did something
        metric = draw(st.sampled_from(metrics))
        moment = AS_OF - timedelta(hours=draw(HOURS), minutes=draw(st.sampled_from([0, 0, 0, 30])))
        email = people[draw(st.integers(0, count - 1))].email
        happened.append(Event(email, draw(st.sampled_from(spellings(metric))), moment, draw(event_properties(metric))))
    # Now and then an event and one like it a quarter of an hour later (its next of the metric), one key null on
    # both: sameProperties must no more take a null for a value the two share than a missing key.
    optional = [(e, key) for e in happened for key in e.properties if key not in REQUIRED_SPELLINGS]
    if optional and draw(st.integers(0, 2)) == 0:
        x, key = draw(st.sampled_from(optional))
        x.properties[key] = None
        happened.append(Event(x.email, x.metric, x.occurred_at + timedelta(minutes=15), dict(x.properties)))
    return World(people, happened)


@dataclass(frozen=True)
class Pair:
    """An event X and the next event Y of one metric after it for the same profile."""

    x: Event
    y: Event

    @property
    def metric(self) -> str:
        return canonical(self.x.metric)

    @property
    def later(self) -> str:
        return canonical(self.y.metric)

    @property
    def gap(self) -> timedelta:
        return self.y.occurred_at - self.x.occurred_at

    @property
    def shared_keys(self) -> frozenset[str]:
        return frozenset(self.x.stored_properties()) & frozenset(self.y.stored_properties())


@dataclass(repr=False)
class Vocabulary:
    """What a world holds by `as_of`, for filters to ask about; `as_of` is the instant the probes are asked at."""

    world: World
    as_of: datetime
    segment_ids: Sequence[str] = ()
    metrics: list[str] = field(init=False)
    # Each X seen by `as_of` with the next event Y of each metric after it for the same profile: with a wait of
    # exactly their distance, Y is X's only follow-up, on the wait's last instant. Y may come after `as_of`,
    # and then is no follow-up.
    pairs: list[Pair] = field(init=False)

    def __post_init__(self) -> None:
        everything = sorted(self.world.events, key=lambda e: e.occurred_at)
        seen = [e for e in everything if e.occurred_at <= self.as_of]
        self.metrics = sorted({canonical(e.metric) for e in seen}) or [ORDER]
        self.pairs = []
        for x in seen:
            nearest: dict[str, Event] = {}
            for y in everything:
                if y.email == x.email and y.occurred_at > x.occurred_at:
                    nearest.setdefault(canonical(y.metric), y)
            self.pairs += [Pair(x, y) for y in nearest.values()]

    @functools.cached_property
    def battery(self) -> dict[str, list[tuple[Event, dict[str, Any]]]]:
        return edge_battery(self)

    @functools.cached_property
    def profile_edges(self) -> list[dict[str, Any]]:
        return profile_edges(self)

    def __repr__(self) -> str:
        # Short: Hypothesis writes out the strategies built on a vocabulary (st.recursive validates its repr), and
        # writing the whole world each time took most of the test's time.
        return f"Vocabulary(as_of={iso(self.as_of)}, metrics={self.metrics}, segments={list(self.segment_ids)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's printer reads dataclasses' fields
        printer.text(repr(self))

    def events_of(self, metric: str) -> list[Event]:
        return [e for e in self.world.events if canonical(e.metric) == metric and e.occurred_at <= self.as_of]

    def times_of(self, metric: str) -> list[datetime]:
        return sorted({e.occurred_at for e in self.events_of(metric)}) or [self.as_of]

    def histories(self, metric: str) -> list[list[datetime]]:
        """Each profile's times of the metric, in order: its first and last time, and two times in a row,
        are where a window's edge decides whether that profile did the metric in the window."""
        by_profile: dict[str, set[datetime]] = {}
        for event in self.events_of(metric):
            by_profile.setdefault(event.email, set()).add(event.occurred_at)
        return [sorted(times) for _, times in sorted(by_profile.items())] or [[self.as_of]]


def canonical(name: str) -> str:
    for metric, others in AGENT_METRIC_SPELLINGS.items():
        if name.lower() in {s.lower() for s in (metric, *others)}:
            return metric
    return next((m for m in (ORDER, VIEW, UNKNOWN_METRIC) if m.lower() == name.lower()), name)


def values_near(values: Sequence[Any]) -> list[Any]:
    """Neighbours of values: the same number as int and float, booleans and the numbers 0 and 1, other
    numbers, other types, prefixes, other cases, list items and pieces of them."""
    near: list[Any] = []
    for value in values:
        if isinstance(value, bool):
            near.extend([int(value), float(value)])
        elif isinstance(value, int | float):
            near.extend([float(value), value + 1, value - 0.5, str(value)])
            if float(value).is_integer():
                near.append(int(value))
            if value in (0, 1):
                near.append(bool(value))
        elif isinstance(value, str):
            near.extend([value[:1], value.upper(), value + "x"])
        elif isinstance(value, list) and value:
            near.append(value[0])
            near.extend(pieces(value[0]))
    return near


def scalar(value: Any) -> Any:
    """A value that IN may list: a list's first item for a list, "a" for an object or an empty list."""
    if isinstance(value, list):
        value = value[0] if value else "a"
    return "a" if isinstance(value, list | dict) else value


def pieces(value: Any) -> list[str]:
    """Proper substrings of a string (its ends and a middle): CONTAINS holds for them on the string, not on
    a list holding it."""
    if not isinstance(value, str) or len(value) < 2:
        return []
    return sorted({value[:-1], value[1:], value[:1], value[len(value) // 2]})


@st.composite
def property_conditions(
    draw: st.DrawFn, values_by_key: dict[str, list[Any]], ops: Sequence[str] = ALL_OPS, near: bool = True
) -> dict[str, Any]:
    """A condition on a key the data has (rarely one it lacks): half the time at an edge of one of its values
    (`edges`), else with any op and a value the data has or (`near`) is near to."""
    keys = sorted(values_by_key)
    key = draw(st.sampled_from(keys) if keys and (not near or draw(st.integers(0, 9))) else st.just("missing_key"))
    present = [v for v in values_by_key.get(key, []) if v is not None] or ["a", 1]
    anchor = draw(st.sampled_from(values_by_key.get(key) or present))
    groups = [kept for group in edges(anchor) if (kept := [edge for edge in group if edge[0] in ops])]
    if groups and draw(st.integers(0, 2)):  # two thirds at an edge, one kind of edge as likely as another
        op, value = draw(st.sampled_from(draw(st.sampled_from(groups))))
        return {"property": key, "op": op} if value is None else {"property": key, "op": op, "value": value}
    pool = st.sampled_from(present)
    if near:
        pool = st.one_of(pool, pool, st.sampled_from(values_near(present) or present))
    op = draw(st.sampled_from(ops))
    if op in ("EXISTS", "NOT_EXISTS"):
        return {"property": key, "op": op}
    if op in ("IN", "NOT_IN"):  # of scalars: a list item stands for its list
        return {"property": key, "op": op, "value": [scalar(v) for v in draw(st.lists(pool, min_size=1, max_size=3))]}
    value = draw(pool)
    if op == "STARTS_WITH":
        texts = [v for v in present if isinstance(v, str)] or ["a"]
        text = value if isinstance(value, str) else draw(st.sampled_from(texts))
        value = text[: draw(st.sampled_from([1, 1, len(text), 0, *range(len(text) + 1)]))]  # mostly not ""
    elif op in ("CONTAINS", "NOT_CONTAINS"):
        # An item, a whole string, or a piece of either: on a list, a piece of an item is not contained.
        items = [item for v in present for item in (v if isinstance(v, list) else [v])]
        wanted = [*items, *(piece for item in items for piece in pieces(item))] or ["a"]
        value = draw(st.sampled_from(wanted)) if isinstance(value, list) or draw(st.booleans()) else value
        value = value if not isinstance(value, list | dict) else "a"
    elif op in ("GT", "GTE", "LT", "LTE") and isinstance(value, list | dict | bool):  # numbers or strings only
        value = draw(st.sampled_from([v for v in present if not isinstance(v, list | dict | bool)] or [1]))
    return {"property": key, "op": op, "value": scalar(value)}  # EQ and NEQ take no list (an item stands for it)


def edges(value: Any) -> list[list[tuple[str, Any]]]:
    """Conditions at the edges of the contract's truth table (docs/filters.md) around a stored value, in groups
    of one kind each, where another reading of JSON types or of bounds gives another answer on it: null as
    absent, 1 and 1.0, true and 1, "30" and 30, an ordering op at the value itself, a prefix, another case, a
    piece of a string or of a list's item. IN lists the item that should match last."""
    if value is None:
        return [[("EXISTS", None), ("NOT_EXISTS", None)], [("NEQ", "a"), ("NOT_IN", ["a", 1])]]
    if isinstance(value, bool):
        return [[("EQ", int(value)), ("EQ", float(value)), ("IN", ["x", int(value)]), ("NEQ", int(value))],
                [("EQ", value), ("NEQ", value), ("IN", ["x", value])]]
    if isinstance(value, int | float):
        twin = float(value) if isinstance(value, int) else int(value) if value.is_integer() else value
        found = [[("EQ", twin), ("IN", ["x", twin]), ("NEQ", twin)],
                 [(op, value) for op in ("GT", "GTE", "LT", "LTE")],
                 [("EQ", str(value)), ("IN", ["x", str(value)]), ("CONTAINS", value)]]
        if value in (0, 1):
            found.append([("EQ", bool(value)), ("IN", [str(value), bool(value)]), ("NEQ", bool(value))])
        return found
    if isinstance(value, str):
        found = [[("STARTS_WITH", value[:1]), ("STARTS_WITH", value), ("CONTAINS", value)],
                 [(op, value) for op in ("GT", "GTE", "LT", "LTE")],
                 [("EQ", value.upper()), ("IN", [value.upper(), value]), ("NEQ", value.upper())],
                 [(op, piece) for piece in pieces(value) for op in ("CONTAINS", "NOT_CONTAINS", "STARTS_WITH")]]
        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):  # a number written as a string
            number = float(value) if "." in value else int(value)
            found.append([("EQ", number), ("IN", ["x", number]), ("GT", number - 1), ("LTE", number)])
        return [group for group in found if group]
    if isinstance(value, list):
        items = [item for item in value if isinstance(item, str | int | float)]
        found = [[(op, item) for item in items for op in ("CONTAINS", "NOT_CONTAINS")],
                 [*((op, item) for item in items for op in ("EQ", "NEQ")), *(("IN", ["x", item]) for item in items)],
                 [(op, piece) for item in items for piece in pieces(item) for op in ("CONTAINS", "NOT_CONTAINS")]]
        return [group for group in found if group] or [[("CONTAINS", "a"), ("EXISTS", None)]]
    return [[("EQ", "a"), ("CONTAINS", "a"), ("EXISTS", None), ("NEQ", 1)]]  # an object


def _keyed_values(events: Sequence[Event]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for event in events:
        for key, value in event.stored_properties().items():
            found.setdefault(key, []).append(value)
    return found


# The first is drawn most often (Hypothesis favours it): lastDays, whose edge falls on an event least often.
# Calendar windows as often as all the others together.
WINDOW_KINDS = ("lastDays", "between", "since", "before", "lastHours", "between", "since", "before", "lastHours",
                *("calendar",) * 9)
# Zones whose local midnights fall on the worlds' half-hour grid of event times (Kolkata's on the half hour).
CALENDAR_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")


@st.composite
def windows(draw: st.DrawFn, vocabulary: Vocabulary, metric: str) -> dict[str, Any]:
    """A window whose edges fall on, or just beside, the times of the metric's events: mostly times where the
    edge decides whether a profile did the metric in the window (a profile's last time for a window that
    starts, its first for `before`, two of its times in a row for `between`), so that an edge taken on the
    wrong side changes the audience."""
    times = vocabulary.times_of(metric)
    history = draw(st.sampled_from(vocabulary.histories(metric)))
    kind = draw(st.sampled_from(WINDOW_KINDS))
    if kind == "calendar":
        # Mostly days (the worlds span five), whose midnights fall on the grid of event times.
        calendar = {"unit": draw(st.sampled_from(["DAY", "DAY", "DAY", "WEEK", "MONTH"])),
                    "offset": draw(st.integers(0, 3)), "count": draw(st.integers(1, 3)),
                    "timezone": draw(st.sampled_from(CALENDAR_ZONES))}
        return {"calendar": {k: v for k, v in calendar.items() if draw(st.booleans()) or k == "unit"}}
    if kind == "between":
        # From one of a profile's times (or just after it: the profile then has no event in the window) to its
        # next time (or beside it).
        first = draw(st.integers(0, len(history) - 1))
        start = history[first] + draw(st.sampled_from([timedelta(0), MICROSECOND]))
        following = history[first + 1] if first + 1 < len(history) else draw(st.sampled_from(times))
        end = following + draw(st.sampled_from([timedelta(0), timedelta(0), timedelta(0), MICROSECOND, -MICROSECOND]))
        if draw(st.integers(0, 3)) == 3:  # or from anywhere among the metric's times
            start = draw(st.sampled_from(times)) + draw(NUDGES)
        if end <= start:
            end = start + HOUR
        return {"between": {"from": iso(start), "to": iso(end)}}
    moment = (history[0] if kind == "before" else history[-1]) if draw(st.booleans()) else draw(st.sampled_from(times))
    if kind in ("before", "since"):
        return {kind: iso(moment + draw(NUDGES))}
    # lastDays and lastHours start a whole number of days or hours before asOf: at a time that lies so.
    unit = DAY if kind == "lastDays" else HOUR
    lasts = [h[-1] for h in vocabulary.histories(metric)]
    whole = [t for group in (lasts, times) for t in group  # lasts twice
             if t < vocabulary.as_of and (vocabulary.as_of - t) % unit == timedelta(0)]
    if whole and draw(st.integers(0, 3)):
        moment = draw(st.sampled_from(whole))
    ago = (vocabulary.as_of - moment) / unit
    n = draw(st.sampled_from([math.ceil(ago), math.floor(ago), math.ceil(ago) + 1]))
    return {kind: max(1, min(36500 if kind == "lastDays" else 876000, n))}


@st.composite
def follow_ups(draw: st.DrawFn, vocabulary: Vocabulary, metric: str, negated: bool = False) -> dict[str, Any]:
    """A follow-up that some X of `metric` has, or just misses: metric, wait and keys from the next later event's.
    `negated` (notFollowedBy): sometimes a wait that ends at asOf for some X, so whether it has passed decides."""
    pairs = [pair for pair in vocabulary.pairs if pair.metric == metric]
    if pairs:
        pair = draw(st.sampled_from(pairs))
        later, hours, shared = pair.later, pair.gap / HOUR, pair.shared_keys
    else:
        later, hours, shared = draw(st.sampled_from(vocabulary.metrics)), 24.0, frozenset()
    if negated and draw(st.booleans()):
        hours = (vocabulary.as_of - draw(st.sampled_from(vocabulary.times_of(metric)))) / HOUR
    wait = max(1, min(876000, draw(st.sampled_from([math.ceil(hours), math.floor(hours), math.ceil(hours) + 1]))))
    follow_up: dict[str, Any] = {"metric": draw(st.sampled_from(spellings(later))), "withinHours": wait}
    if draw(st.integers(0, 3)) == 3:
        follow_up["where"] = [draw(property_conditions(_keyed_values(vocabulary.events_of(later))))]
    if draw(st.booleans()):
        keys = sorted(shared) or ["conversation_id"]
        follow_up["sameProperties"] = draw(st.lists(st.sampled_from([*keys, *keys, "missing_key"]),
                                                    min_size=1, max_size=2, unique=True))
    return follow_up


# How often (in percent) an event condition has each feature; `having` last, its values drawn from the figures
# of the condition so far.
EVENT_FEATURES = {"where": 35, "count": 30, "within": 40, "followedBy": 20, "notFollowedBy": 20, "having": 40}
FUNCTIONS = ("SUM", "AVERAGE", "MIN", "MAX", "DISTINCT_COUNT")
NUMBER_OPS = ("EQ", "NEQ", "GT", "GTE", "LT", "LTE")


@st.composite
def event_conditions(draw: st.DrawFn, vocabulary: Vocabulary) -> dict[str, Any]:
    """A did/didNot condition on a metric of the world (rarely one it lacks), each feature drawn at its percent."""
    metric = draw(st.just(UNKNOWN_METRIC) if draw(st.integers(0, 14)) == 14 else st.sampled_from(vocabulary.metrics))
    condition: dict[str, Any] = {"metric": draw(st.sampled_from(spellings(metric)))}
    for feature, percent in EVENT_FEATURES.items():
        if draw(st.integers(0, 99)) >= percent:
            continue
        if feature == "where":
            keyed = _keyed_values(vocabulary.events_of(metric))
            condition["where"] = draw(st.lists(property_conditions(keyed), min_size=1, max_size=2))
        elif feature == "count":
            kind = draw(st.sampled_from(["atLeast", "atMost", "exactly"]))
            condition["count"] = {kind: draw(st.integers(1 if kind == "atLeast" else 0, 2))}  # at least 0: everyone
        elif feature == "within":
            condition["within"] = draw(windows(vocabulary, metric))
        elif feature == "having":
            condition["having"] = draw(st.lists(aggregates(vocabulary, metric, condition), min_size=1, max_size=2))
        else:
            condition[feature] = draw(follow_ups(vocabulary, metric, negated=feature == "notFollowedBy"))
    return condition


@st.composite
def aggregates(draw: st.DrawFn, vocabulary: Vocabulary, metric: str, condition: dict[str, Any]) -> dict[str, Any]:
    """A figure over a key the metric's events have (rarely one they lack), compared with a value some profile's
    figure takes, or just misses, so that the comparison's edge, the rounding or a value read wrongly decides."""
    keyed = _keyed_values(vocabulary.events_of(metric))
    function = draw(st.sampled_from(FUNCTIONS))
    # A number's figure over a key that holds numbers, when there is one: over other keys it is 0 or none for all.
    numeric = sorted(k for k, values in keyed.items() if any(isinstance(v, int | float) and not isinstance(v, bool)
                                                            for v in values))
    keys = (numeric if function != "DISTINCT_COUNT" and numeric else sorted(keyed)) or ["total"]
    aggregate: dict[str, Any] = {"function": function, "property": draw(st.sampled_from([*keys, *keys, "missing_key"])),
                                 "op": draw(st.sampled_from(NUMBER_OPS))}
    # A profile with qualifying events, when there is one: its figure then has a value more often.
    world, as_of = vocabulary.world, vocabulary.as_of
    active = [p for p in world.profiles if world.qualifying(condition, p, as_of)] or world.profiles
    person = draw(st.sampled_from(active))
    found = figure(aggregate, world.qualifying(condition, person, as_of))
    if found is None or draw(st.integers(0, 4)) == 0:
        found = float(draw(st.sampled_from([0, 1, 2, 3, 10, 100])))
    return {**aggregate, "value": found + draw(st.sampled_from([0.0, 0.0, 0.0, 0.000001, -0.000001, 0.5, -1.0]))}


@st.composite
def profile_conditions(draw: st.DrawFn, vocabulary: Vocabulary) -> dict[str, Any]:
    profiles = vocabulary.world.profiles
    if draw(st.integers(0, 3)) == 3:  # the server's creation times, and the instants just beside them
        created = [p.created_at for p in profiles if p.created_at is not None]
        instants = [iso(t + d) for t in created for d in (timedelta(0), MICROSECOND, -MICROSECOND)]
        return draw(property_conditions({"createdAt": instants}, INSTANT_OPS, near=False))
    keyed: dict[str, list[Any]] = {"email": [p.email for p in profiles]}
    for profile in profiles:
        for key, value in (*profile.fields.items(), *profile.properties.items()):
            keyed.setdefault(key, []).append(value)
    return draw(property_conditions(keyed))


# Values a reading of JSON types may take for each other (true and 1, 1 and 1.0 and "1"): for each stored value,
# the condition values that meet it at that edge.
TYPE_EDGES: list[tuple[Any, list[tuple[str, Any]]]] = [
    (True, [("EQ", 1), ("EQ", 1.0), ("IN", [1]), ("EQ", True)]),
    (False, [("EQ", 0), ("IN", [0.0]), ("EQ", False)]),
    (1, [("EQ", True), ("IN", [True]), ("EQ", 1.0), ("EQ", "1"), ("GT", 0), ("LT", 1), ("GTE", 1)]),
    (0, [("EQ", False), ("EQ", 0.0), ("LTE", 0), ("GT", 0)]),
    ("1", [("EQ", 1), ("IN", [1.0]), ("GT", 0), ("LT", 2), ("GTE", "1")]),
]


NULL_EDGES: list[tuple[str, Any]] = [("EXISTS", None), ("NOT_EXISTS", None), ("NEQ", 1), ("NOT_IN", ["a", 0])]


def profile_edges(vocabulary: Vocabulary) -> list[dict[str, Any]]:
    """Profile conditions on a built-in field a profile left unset, or a property it holds as null: NEQ, NOT_IN
    and NOT_EXISTS hold there, EXISTS does not, whatever value the condition names."""
    found = []
    for profile in vocabulary.world.profiles:
        unset = [name for name, value in profile.fields.items() if value is None]
        nulls = [name for name, value in profile.properties.items() if value is None]
        for name in (*unset, *nulls):
            others = sorted({str(v) for p in vocabulary.world.profiles for v in [p.fields.get(name, p.properties.get(name))]
                             if v is not None}) or ["Ann"]
            for op, wanted in (("NEQ", others[0]), ("NOT_IN", others[:2]), ("EXISTS", None), ("NOT_EXISTS", None)):
                found.append({"profile": {"property": name, "op": op, **({} if wanted is None else {"value": wanted})}})
    return found


def edge_battery(vocabulary: Vocabulary) -> dict[str, list[tuple[Event, dict[str, Any]]]]:
    """Did conditions by kind of edge, each with the event that lies on its edge: a window starting or ending on the
    event or a microsecond after it, a follow-up of it at the end of its wait or after asOf, its wait ending at
    asOf, the same key null on it and on its follow-up, a property value of another JSON type than the condition's,
    a piece of a string or of a list's item, a follow-up soon after its event's window starts. A compiler taking that
    edge the wrong way counts the event wrongly."""
    world, as_of = vocabulary.world, vocabulary.as_of
    battery: dict[str, list[tuple[Event, dict[str, Any]]]] = {}

    def add(kind: str, event: Event, feature: str, value: Any, **more: Any) -> None:
        battery.setdefault(kind, []).append((event, {"metric": event.metric, feature: value, **more}))

    for e in sorted((e for e in world.events if e.occurred_at <= as_of), key=lambda e: e.occurred_at):
        at, ago = e.occurred_at, as_of - e.occurred_at
        for kind, unit in (("lastDays", DAY), ("lastHours", HOUR)):
            if ago >= unit and ago % unit == timedelta(0):
                add(kind, e, "within", {kind: ago // unit})
        add("since", e, "within", {"since": iso(at)})
        add("before", e, "within", {"before": iso(at)})
        add("between start", e, "within", {"between": {"from": iso(at), "to": iso(at + HOUR)}})
        add("between end", e, "within", {"between": {"from": iso(at - HOUR), "to": iso(at)}})
        # A microsecond after the event: a text form that drops the fraction moves the edge onto the event.
        for window in ({"since": iso(at + MICROSECOND)}, {"before": iso(at + MICROSECOND)},
                       {"between": {"from": iso(at + MICROSECOND), "to": iso(at + HOUR)}},
                       {"between": {"from": iso(at - HOUR), "to": iso(at + MICROSECOND)}}):
            add("a microsecond after", e, "within", window)
        if ago >= HOUR and ago % HOUR == timedelta(0):
            for later in vocabulary.metrics:
                add("wait ending at asOf", e, "notFollowedBy", {"metric": later, "withinHours": ago // HOUR})
        for key, value in e.stored_properties().items():
            for stored, conditions in TYPE_EDGES:
                if type(value) is type(stored) and value == stored:
                    for op, wanted in conditions:
                        add("JSON types", e, "where", [{"property": key, "op": op, "value": wanted}])
            for op, wanted in text_edges(value):
                kind = "list items" if isinstance(value, list) else "pieces of strings"
                add(kind, e, "where", [{"property": key, "op": op, "value": wanted}])
            if value is None:  # a JSON null is no value: EXISTS fails on it, NEQ and NOT_IN hold
                for op, wanted in NULL_EDGES:
                    add("JSON null", e, "where", [{"property": key, "op": op, **({} if wanted is None else {"value": wanted})}])
        # A calendar day of some zone that starts on the event, or ends (exclusively) on it.
        for zone in CALENDAR_ZONES:
            for offset in range(6):
                calendar = {"unit": "DAY", "offset": offset, "timezone": zone}
                start, end = calendar_window(calendar, as_of)
                if at in (start, end):
                    add("calendar start" if at == start else "calendar end", e, "within", {"calendar": calendar})
        # A figure of the event's profile over its events of the metric, compared at its own value.
        owner = next(p for p in world.profiles if p.email == e.email)
        for key in e.stored_properties():
            for function in FUNCTIONS:
                aggregate = {"function": function, "property": key, "op": "GTE"}
                found = figure(aggregate, world.qualifying({"metric": e.metric}, owner, as_of))
                if found is not None:
                    add("having at its figure", e, "having", [{**aggregate, "op": ("GTE", "LT")[len(key) % 2],
                                                               "value": found}])
    for pair in vocabulary.pairs:
        x, y, gap = pair.x, pair.y, pair.gap
        if gap % HOUR == timedelta(0):
            add("follow-up at the wait's end", x, "followedBy", {"metric": y.metric, "withinHours": gap // HOUR})
        if y.occurred_at > as_of:
            add("follow-up after asOf", x, "followedBy", {"metric": y.metric, "withinHours": math.ceil(gap / HOUR)})
        # X's window starting on X, its follow-up within a day: a compiler may bound follow-ups by the window's
        # start, and must not cut into them.
        for feature in ("followedBy", "notFollowedBy") if gap <= DAY else ():
            add("follow-up soon after the window's start", x, feature, {"metric": y.metric, "withinHours": math.ceil(gap / HOUR)},
                within={"since": iso(x.occurred_at)})
        # A key null on both: never the same property, as a missing key is not.
        for key in sorted(pair.shared_keys):
            if x.stored_properties()[key] is None and y.stored_properties()[key] is None:
                add("sameProperties on nulls", x, "followedBy",
                    {"metric": y.metric, "withinHours": math.ceil(gap / HOUR), "sameProperties": [key]})
    return battery


def text_edges(value: Any) -> list[tuple[str, str]]:
    """CONTAINS and STARTS_WITH at pieces of a string (they hold) and of a list's string items (CONTAINS does not:
    it asks for a whole item, not for a piece of the list's JSON text)."""
    if isinstance(value, str) and len(value) >= 2:
        return [("CONTAINS", value[1:]), ("STARTS_WITH", value[:1]), ("CONTAINS", value.upper())]
    if isinstance(value, list):
        return [(op, piece) for item in value if isinstance(item, str) and len(item) >= 2
                for op, piece in (("CONTAINS", item[:1]), ("NOT_CONTAINS", item[1:]), ("CONTAINS", item))]
    return []


@st.composite
def edge_conditions(draw: st.DrawFn, vocabulary: Vocabulary) -> dict[str, Any]:
    """A condition of the `edge_battery` (a kind of edge first, each as likely as another) pinned to `exactly` the
    count of the profile whose event lies on the edge, a saved segment named twice, a profile edge, or an or (an
    and) of the complements of two pinned conditions, where the set shape works with what each excludes."""
    battery = vocabulary.battery
    kinds = sorted(battery) + (["segment named twice"] if vocabulary.segment_ids else [])
    kinds += ["unset or null on a profile"] if vocabulary.profile_edges else []
    kinds += ["or of two complements", "and of two complements"] if battery else []
    if not kinds:
        return {"did": {"metric": ORDER}}
    kind = draw(st.sampled_from(kinds))
    if kind == "segment named twice":
        segment_id = draw(st.sampled_from(list(vocabulary.segment_ids)))
        return named_twice(segment_id, {"property": "email", "op": "STARTS_WITH", "value": "p1"})
    if kind == "unset or null on a profile":
        return draw(st.sampled_from(vocabulary.profile_edges))
    if kind.endswith("of two complements"):
        parts = [{"not": draw(pinned(vocabulary, draw(st.sampled_from(sorted(battery)))))} for _ in range(2)]
        return {kind.split()[0]: parts}
    return draw(pinned(vocabulary, kind))


@st.composite
def pinned(draw: st.DrawFn, vocabulary: Vocabulary, kind: str) -> dict[str, Any]:
    """A did condition of the battery's `kind`, counted `exactly` as often as its event's profile has qualifying events."""
    event, condition = draw(st.sampled_from(vocabulary.battery[kind]))
    owner = next(p for p in vocabulary.world.profiles if p.email == event.email)
    count = len(vocabulary.world.qualifying(condition, owner, vocabulary.as_of))
    return {"did": {**condition, "count": {"exactly": count}}}


def splits(vocabulary: Vocabulary, node: dict[str, Any]) -> bool:
    """Whether the node's audience is neither nobody nor everybody: only then can a wrong answer show."""
    members = len(vocabulary.world.members(node, vocabulary.as_of))
    return 0 < members < len(vocabulary.world.profiles)


@st.composite
def splitting(
    draw: st.DrawFn, nodes: st.SearchStrategy[dict[str, Any]], vocabulary: Vocabulary, tries: int = 4
) -> dict[str, Any]:
    """A node of `nodes` that splits the profiles, if one of `tries` draws does (else the last one)."""
    for _ in range(tries - 1):
        node = draw(nodes)
        if splits(vocabulary, node):
            return node
    return draw(nodes)


def filters(vocabulary: Vocabulary, max_leaves: int = 5) -> st.SearchStrategy[dict[str, Any]]:
    """Filter trees in the structured input shape over the world's vocabulary, leaves and trees steered
    towards splitting the profiles."""
    # Event leaves get more tries: a `having` figure or a follow-up more often holds for everyone or no one.
    leaves = [
        splitting(event_conditions(vocabulary).map(lambda c: {"did": c}), vocabulary, tries=6),
        splitting(event_conditions(vocabulary).map(lambda c: {"didNot": c}), vocabulary, tries=6),
        splitting(profile_conditions(vocabulary).map(lambda c: {"profile": c}), vocabulary),
    ]
    if vocabulary.segment_ids:
        segments = st.sampled_from(list(vocabulary.segment_ids))
        leaves.append(segments.map(lambda s: {"inSegment": s}))
        leaves.append(st.tuples(segments, profile_conditions(vocabulary)).map(lambda pair: named_twice(*pair)))

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        items = st.lists(children, min_size=1, max_size=3)
        return st.one_of(items.map(lambda i: {"and": i}), items.map(lambda i: {"or": i}), children.map(lambda c: {"not": c}))

    return splitting(st.recursive(st.one_of(leaves), extend, max_leaves=max_leaves), vocabulary, tries=3)


def named_twice(segment_id: str, condition: dict[str, Any]) -> dict[str, Any]:
    """The segment's audience, naming it twice (`s and c or s and not c`), so that it compiles to one named
    subquery used twice rather than being inlined."""
    return {"or": [{"and": [{"inSegment": segment_id}, {"profile": condition}]},
                   {"and": [{"inSegment": segment_id}, {"not": {"profile": condition}}]}]}


def conditions(vocabulary: Vocabulary) -> st.SearchStrategy[dict[str, Any]]:
    """Single conditions, not steered to split the profiles (one that holds for nobody still fails a compiler
    that lets someone in), alone or after an "ever did X" in an `and`, which a page walks along X's first times."""
    leaf = st.one_of(
        event_conditions(vocabulary).map(lambda c: {"did": c}),
        event_conditions(vocabulary).map(lambda c: {"didNot": c}),
        profile_conditions(vocabulary).map(lambda c: {"profile": c}),
    )
    ever = st.sampled_from(vocabulary.metrics).map(lambda metric: {"did": {"metric": metric}})
    return st.one_of(leaf, st.tuples(ever, leaf).map(lambda pair: {"and": list(pair)}))


def as_of_instants(world: World) -> st.SearchStrategy[datetime]:
    """Instants to ask at: mostly AS_OF, else one of the later half of the world's event times or just before it,
    or a whole number of days after one (that event then starts a window of whole days)."""
    times = sorted({e.occurred_at for e in world.events})[len(world.events) // 2:] or [AS_OF]
    return st.one_of(st.just(AS_OF), st.sampled_from(times), st.sampled_from(times).map(lambda t: t - MICROSECOND),
                     st.tuples(st.sampled_from(times), st.integers(1, 2)).map(lambda pair: pair[0] + pair[1] * DAY))
