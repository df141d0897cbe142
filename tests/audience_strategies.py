"""Hypothesis strategies for worlds (profiles and events as a client sends them) and for filters that ask
them real questions: metrics, keys, values, instants, window lengths and follow-up waits are drawn from
the world's own data and just around its edges, in the structured input shape.

Like tests/reference.py, this module imports nothing of the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.reference import AGENT_KEY_SPELLINGS, AGENT_METRIC_SPELLINGS, Event, Profile, World

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
STARTED, RESOLVED, ESCALATED, RECOMMENDED = AGENT_METRIC_SPELLINGS
ORDER, VIEW = "Placed Order", "Viewed Product"
UNKNOWN_METRIC = "Opened Email"  # never sent: its audience is decided by zero counts alone

# Hours before AS_OF: mostly on a coarse grid, so that window and follow-up edges are hit exactly.
HOURS = st.one_of(st.sampled_from([0, 1, 2, 3, 12, 24, 25, 47, 48, 49, 72, 96]), st.integers(-2, 120))
# Free properties of custom events, of every JSON type, so that 1 = 1.0, booleans and lists meet.
CUSTOM_VALUES: dict[str, list[Any]] = {
    "n": [1, 1.0, 2, 2.5, -1, 0, True, False, "1", None],
    "sku": ["a", "ab", "b", "A", ["a", "b"], ["ab"], 1],
    "tags": [["a", "b"], ["a"], [], ["b", 1], "a", "ab"],
    "total": [0, 10, 99.5, 100, "100", {"a": 1}],
    "channel": ["SMS", "Web Chat"],
}
AGENT_VALUES: dict[str, list[Any]] = {
    "conversation_id": ["c1", "c2"],
    "channel": ["SMS", "Web Chat", "sms"],
    "initial_skill": ["Order tracking", "Returns"],
    "final_skill": ["Order tracking", "Returns"],
    "escalation_reason": ["refund", "angry"],
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
PROFILE_VALUES: dict[str, list[Any]] = {
    "firstName": ["Ann", "ann", "Bo", "Annabel"],
    "lastName": ["Lee"],
    "tier": ["gold", "silver", "Gold", 1, 1.0, True],
    "age": [18, 30, 30.5, "30", False],
}
COMPARISONS = ("EQ", "NEQ", "IN", "NOT_IN", "GT", "GTE", "LT", "LTE", "EXISTS", "NOT_EXISTS")
ALL_OPS = (*COMPARISONS, "CONTAINS", "NOT_CONTAINS", "STARTS_WITH")


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
    return World(people, happened)


@dataclass
class Vocabulary:
    """What a world holds by `as_of`, for filters to ask about; `as_of` is the instant the probes are asked at."""

    world: World
    as_of: datetime
    segment_ids: Sequence[str] = ()
    metrics: list[str] = field(init=False)
    # (metric of X, metric of a later event Y of the same profile, hours from X to Y, keys both have)
    pairs: list[tuple[str, str, float, frozenset[str]]] = field(init=False)

    def __post_init__(self) -> None:
        seen = [e for e in self.world.events if e.occurred_at <= self.as_of]
        self.metrics = sorted({canonical(e.metric) for e in seen}) or [ORDER]
        self.pairs = [
            (canonical(x.metric), canonical(y.metric), (y.occurred_at - x.occurred_at) / timedelta(hours=1),
             frozenset(x.stored_properties()) & frozenset(y.stored_properties()))
            for x in seen for y in seen if x.email == y.email and x.occurred_at < y.occurred_at
        ]

    def events_of(self, metric: str) -> list[Event]:
        return [e for e in self.world.events if canonical(e.metric) == metric and e.occurred_at <= self.as_of]

    def times_of(self, metric: str) -> list[datetime]:
        return sorted({e.occurred_at for e in self.events_of(metric)}) or [self.as_of]


def canonical(name: str) -> str:
    for metric, others in AGENT_METRIC_SPELLINGS.items():
        if name.lower() in {s.lower() for s in (metric, *others)}:
            return metric
    return next((m for m in (ORDER, VIEW, UNKNOWN_METRIC) if m.lower() == name.lower()), name)


def values_near(values: Sequence[Any]) -> list[Any]:
    """Neighbours of values: other numbers, other types, prefixes, other cases, list items."""
    near: list[Any] = []
    for value in values:
        if isinstance(value, bool):
            near.append(int(value))
        elif isinstance(value, int | float):
            near.extend([float(value), value + 1, value - 0.5, str(value)])
        elif isinstance(value, str):
            near.extend([value[:1], value.upper(), value + "x"])
        elif isinstance(value, list) and value:
            near.append(value[0])
    return near


@st.composite
def property_conditions(
    draw: st.DrawFn, values_by_key: dict[str, list[Any]], ops: Sequence[str] = ALL_OPS, near: bool = True
) -> dict[str, Any]:
    """A condition on a key the data has (rarely one it lacks), with a value the data has or (`near`) is near to."""
    keys = sorted(values_by_key)
    key = draw(st.sampled_from(keys) if keys and (not near or draw(st.integers(0, 9))) else st.just("missing_key"))
    present = [v for v in values_by_key.get(key, []) if v is not None] or ["a", 1]
    pool = st.sampled_from(present)
    if near:
        pool = st.one_of(pool, pool, st.sampled_from(values_near(present) or present))
    op = draw(st.sampled_from(ops))
    if op in ("EXISTS", "NOT_EXISTS"):
        return {"property": key, "op": op}
    if op in ("IN", "NOT_IN"):
        return {"property": key, "op": op, "value": draw(st.lists(pool, min_size=1, max_size=3))}
    value = draw(pool)
    if op == "STARTS_WITH":
        texts = [v for v in present if isinstance(v, str)] or ["a"]
        text = value if isinstance(value, str) else draw(st.sampled_from(texts))
        value = text[: draw(st.integers(0, len(text)))]
    elif op in ("CONTAINS", "NOT_CONTAINS") and isinstance(value, list):
        value = draw(st.sampled_from(value)) if value else "a"
    elif op in ("GT", "GTE", "LT", "LTE") and isinstance(value, list | dict):
        value = draw(st.sampled_from([v for v in present if not isinstance(v, list | dict)] or [1]))
    return {"property": key, "op": op, "value": value}


def _keyed_values(events: Sequence[Event]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for event in events:
        for key, value in event.stored_properties().items():
            found.setdefault(key, []).append(value)
    return found


@st.composite
def windows(draw: st.DrawFn, vocabulary: Vocabulary, metric: str) -> dict[str, Any]:
    """A window whose edges fall on, or just beside, the times of the metric's events."""
    times = vocabulary.times_of(metric)
    moment = draw(st.sampled_from(times))
    edge = moment + draw(st.sampled_from([timedelta(0), MICROSECOND, -MICROSECOND]))
    ago = (vocabulary.as_of - moment) / timedelta(hours=1)
    hours = max(1, min(876000, draw(st.sampled_from([math.ceil(ago), math.floor(ago), math.ceil(ago) + 1]))))
    days = max(1, min(36500, draw(st.sampled_from([math.ceil(ago / 24), math.floor(ago / 24)]))))
    other = draw(st.sampled_from(times)) + draw(st.sampled_from([MICROSECOND, timedelta(0)]))
    start, end = sorted([edge, other if other != edge else edge + timedelta(hours=1)])
    return draw(st.sampled_from([
        {"lastHours": hours}, {"lastDays": days}, {"since": iso(edge)}, {"before": iso(edge)},
        {"between": {"from": iso(start), "to": iso(end)}},
    ]))


@st.composite
def follow_ups(draw: st.DrawFn, vocabulary: Vocabulary, metric: str) -> dict[str, Any]:
    """A follow-up that some X of `metric` has, or just misses: metric, wait and keys from a later event's."""
    pairs = [pair for pair in vocabulary.pairs if pair[0] == metric] or [(metric, draw(st.sampled_from(vocabulary.metrics)),
                                                                          24.0, frozenset())]
    _, later, hours, shared = draw(st.sampled_from(pairs))
    wait = max(1, min(876000, draw(st.sampled_from([math.ceil(hours), math.floor(hours), math.ceil(hours) + 1]))))
    follow_up: dict[str, Any] = {"metric": draw(st.sampled_from(spellings(later))), "withinHours": wait}
    if draw(st.integers(0, 3)) == 3:
        follow_up["where"] = [draw(property_conditions(_keyed_values(vocabulary.events_of(later))))]
    if draw(st.booleans()):
        keys = sorted(shared) or ["conversation_id"]
        follow_up["sameProperties"] = draw(st.lists(st.sampled_from([*keys, *keys, "missing_key"]),
                                                    min_size=1, max_size=2, unique=True))
    return follow_up


# How often (in percent) an event condition has each feature.
EVENT_FEATURES = {"where": 35, "count": 30, "within": 40, "followedBy": 20, "notFollowedBy": 20}


@st.composite
def event_conditions(draw: st.DrawFn, vocabulary: Vocabulary) -> dict[str, Any]:
    """A did/didNot condition on a metric of the world (rarely one it lacks), with up to two features."""
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
        else:
            condition[feature] = draw(follow_ups(vocabulary, metric))
    return condition


@st.composite
def profile_conditions(draw: st.DrawFn, vocabulary: Vocabulary) -> dict[str, Any]:
    profiles = vocabulary.world.profiles
    if draw(st.integers(0, 3)) == 3:  # the server's creation times, and the instants just beside them
        created = [p.created_at for p in profiles if p.created_at is not None]
        instants = [iso(t + d) for t in created for d in (timedelta(0), MICROSECOND, -MICROSECOND)]
        return draw(property_conditions({"createdAt": instants}, COMPARISONS, near=False))
    keyed: dict[str, list[Any]] = {"email": [p.email for p in profiles]}
    for profile in profiles:
        for key, value in (*profile.fields.items(), *profile.properties.items()):
            keyed.setdefault(key, []).append(value)
    return draw(property_conditions(keyed))


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
    leaves = [
        splitting(event_conditions(vocabulary).map(lambda c: {"did": c}), vocabulary),
        splitting(event_conditions(vocabulary).map(lambda c: {"didNot": c}), vocabulary),
        splitting(profile_conditions(vocabulary).map(lambda c: {"profile": c}), vocabulary),
    ]
    if vocabulary.segment_ids:
        leaves.append(st.sampled_from(list(vocabulary.segment_ids)).map(lambda s: {"inSegment": s}))

    def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        items = st.lists(children, min_size=1, max_size=3)
        return st.one_of(items.map(lambda i: {"and": i}), items.map(lambda i: {"or": i}), children.map(lambda c: {"not": c}))

    return splitting(st.recursive(st.one_of(leaves), extend, max_leaves=max_leaves), vocabulary, tries=3)


def as_of_instants(world: World) -> st.SearchStrategy[datetime]:
    """Instants to ask at: mostly AS_OF, else one of the later half of the world's event times or just before it."""
    times = sorted({e.occurred_at for e in world.events})[len(world.events) // 2:] or [AS_OF]
    return st.one_of(st.just(AS_OF), st.sampled_from(times), st.sampled_from(times).map(lambda t: t - MICROSECOND))
