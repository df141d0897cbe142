"""The Metrics analytics view through the real app over HTTP: the list, aliases, counts, series, activity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import ESCALATED_NAME, RECOMMENDED_NAME, RESOLVED_NAME, STARTED_NAME, event, iso, track
from vocabulary.agent_metrics import AGENT_METRICS

AGENT_LIST = [{"name": m.name, "agentMetric": m.enum_name} for m in AGENT_METRICS]

METRICS = """{ metrics { name agentMetric count uniqueProfiles lastSeenAt
  recent: count(within: {lastDays: 7}) } }"""
METRIC = """query($name: String!) { metric(name: $name) { name agentMetric count uniqueProfiles lastSeenAt } }"""
SERIES = """query($name: String!, $interval: Interval!, $within: TimeWindow!, $groupBy: String) {
  metric(name: $name) { series(interval: $interval, within: $within, groupBy: $groupBy) { start group count } }
}"""
ACTIVITY = """query($name: String!, $first: Int, $after: String) {
  metric(name: $name) { activity(first: $first, after: $after) {
    nodes { __typename metric occurredAt } pageInfo { hasNextPage endCursor } } }
}"""


Ago = Callable[..., str]


@pytest.fixture
def ago() -> Ago:
    """ISO text of an instant before now (after it, given a negative delta), with now read when the test starts:
    counts and series without an asOf measure their windows back from the real clock."""
    now = datetime.now(UTC).replace(microsecond=0)

    def before_now(**delta: float) -> str:
        return iso(now - timedelta(**delta))

    return before_now


def week_start(moment: datetime) -> str:
    """The Monday 00:00 UTC that starts the week of `moment`, as the series writes it."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return iso(day - timedelta(days=day.weekday()))


def at(text: str) -> str:
    return iso(datetime.fromisoformat(text).astimezone(UTC))


async def series(gql: Any, name: str, interval: str, within: dict[str, Any], group_by: str | None = None) -> list[Any]:
    data = await gql.data(SERIES, {"name": name, "interval": interval, "within": within, "groupBy": group_by})
    return [(p["start"], p["group"], p["count"]) for p in data["metric"]["series"]]


async def test_the_four_agent_metrics_are_listed_without_any_events(gql: Any) -> None:
    listed = (await gql.data(METRICS))["metrics"]
    assert [{k: m[k] for k in ("name", "agentMetric")} for m in listed] == AGENT_LIST
    for metric in listed:
        assert (metric["count"], metric["uniqueProfiles"], metric["lastSeenAt"], metric["recent"]) == (0, 0, None, 0)
    # Each can be asked for by name, with its series (zero buckets) and an empty activity feed.
    found = (await gql.data(METRIC, {"name": "CONVERSATION_ESCALATED"}))["metric"]
    assert found == {"name": ESCALATED_NAME, "agentMetric": "CONVERSATION_ESCALATED", "count": 0,
                     "uniqueProfiles": 0, "lastSeenAt": None}
    within = {"between": {"from": "2024-01-01T00:00:00Z", "to": "2024-01-03T00:00:00Z"}}
    assert await series(gql, STARTED_NAME, "DAY", within) == [
        (at("2024-01-01T00:00:00Z"), None, 0), (at("2024-01-02T00:00:00Z"), None, 0)]
    assert await series(gql, STARTED_NAME, "DAY", within, "channel") == []
    assert await series(gql, STARTED_NAME, "DAY", {"before": "2024-01-01T00:00:00Z"}) == []
    activity = (await gql.data(ACTIVITY, {"name": RESOLVED_NAME}))["metric"]["activity"]
    assert activity == {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


async def test_metrics_list_counts_and_other_metrics(gql: Any, ago: Ago) -> None:
    await track(
        gql,
        event("a@x", STARTED_NAME, ago(days=10), conversation_id="c1"),
        event("a@x", STARTED_NAME, ago(days=1), conversation_id="c2"),
        event("b@x", STARTED_NAME, ago(hours=2), conversation_id="c3"),
        event("a@x", "Placed Order", ago(hours=3)),
        event("a@x", "Viewed Product", ago(days=30)),
        # Future events do not exist yet, as for segments evaluated now.
        event("b@x", "Placed Order", ago(days=-1)),
    )
    await track(gql, event("b@x", "viewed product", ago(days=20)))  # the name stays as first stored
    listed = {m["name"]: m for m in (await gql.data(METRICS))["metrics"]}
    assert list(listed) == [m.name for m in AGENT_METRICS] + ["Placed Order", "Viewed Product"]
    started = listed[STARTED_NAME]
    assert (started["count"], started["uniqueProfiles"], started["recent"]) == (3, 2, 2)
    assert started["lastSeenAt"] == ago(hours=2)
    assert listed[RESOLVED_NAME]["count"] == 0
    order = listed["Placed Order"]
    assert (order["agentMetric"], order["count"], order["uniqueProfiles"], order["lastSeenAt"]) == (
        None, 1, 1, ago(hours=3))
    viewed = listed["Viewed Product"]
    assert (viewed["count"], viewed["uniqueProfiles"], viewed["recent"]) == (2, 2, 0)

    windowed = """query($at: DateTime!) { metric(name: "Started Conversation with Customer Agent") {
      h: count(within: {lastHours: 3}) p: uniqueProfiles(within: {lastDays: 2})
      s: count(within: {since: $at}) b: count(within: {before: $at}) } }"""
    assert (await gql.data(windowed, {"at": ago(days=2)}))["metric"] == {"h": 1, "p": 2, "s": 2, "b": 1}


@pytest.mark.parametrize(("spelling", "canonical", "agent"), [
    ("STARTED_CONVERSATION", STARTED_NAME, "STARTED_CONVERSATION"),
    ("started customer agent conversation", STARTED_NAME, "STARTED_CONVERSATION"),
    ("  Started   Conversation with CUSTOMER agent ", STARTED_NAME, "STARTED_CONVERSATION"),
    ("Resolved Customer Agent Conversation", RESOLVED_NAME, "CONVERSATION_RESOLVED"),
    ("escalated customer agent conversation", ESCALATED_NAME, "CONVERSATION_ESCALATED"),
    ("received_product_recommendation", RECOMMENDED_NAME, "RECEIVED_PRODUCT_RECOMMENDATION"),
    ("placed ORDER", "Placed Order", None),
])
async def test_metric_names_match_case_insensitively_and_by_alias(
    gql: Any, ago: Ago, spelling: str, canonical: str, agent: str | None
) -> None:
    await track(
        gql,
        event("a@x", "Started Customer Agent Conversation", ago(hours=1), conversation_id="c1"),
        event("a@x", "Placed Order", ago(hours=1)),
    )
    found = (await gql.data(METRIC, {"name": spelling}))["metric"]
    assert (found["name"], found["agentMetric"]) == (canonical, agent)
    assert found["count"] == (1 if canonical in (STARTED_NAME, "Placed Order") else 0)


async def test_an_unknown_metric_is_null(gql: Any, ago: Ago) -> None:
    await track(gql, event("a@x", "Placed Order", ago(hours=1)))
    assert (await gql.data(METRIC, {"name": "Cancelled Order"}))["metric"] is None
    assert (await gql.data(METRIC, {"name": "Placed"}))["metric"] is None


# Sunday 2024-01-07 23:xx UTC and Monday 2024-01-08 00:xx UTC straddle hour, day and week boundaries.
BOUNDARY_EVENTS = [
    "2024-01-07T23:00:00Z",
    "2024-01-07T23:59:59.999999Z",
    "2024-01-08T01:30:00+02:00",  # 2024-01-07T23:30Z: a Sunday in UTC
    "2024-01-08T00:00:00Z",
    "2024-01-07T19:00:00-05:00",  # 2024-01-08T00:00Z
    "2024-01-14T23:59:59Z",
    "2024-01-15T00:00:00Z",
]
WINDOW = {"between": {"from": "2024-01-07T22:00:00Z", "to": "2024-01-08T02:00:00Z"}}


@pytest.fixture
async def boundary(gql: Any) -> None:
    await track(gql, *(event("a@x", "Placed Order", moment) for moment in BOUNDARY_EVENTS))


async def test_hour_buckets_are_utc_and_include_empty_buckets(gql: Any, boundary: None) -> None:
    assert await series(gql, "Placed Order", "HOUR", WINDOW) == [
        (at("2024-01-07T22:00:00Z"), None, 0),
        (at("2024-01-07T23:00:00Z"), None, 3),
        (at("2024-01-08T00:00:00Z"), None, 2),
        (at("2024-01-08T01:00:00Z"), None, 0),
    ]


async def test_day_buckets_start_at_midnight_utc(gql: Any, boundary: None) -> None:
    within = {"between": {"from": "2024-01-06T12:00:00Z", "to": "2024-01-16T00:00:00Z"}}
    points = await series(gql, "Placed Order", "DAY", within)
    assert points[0] == (at("2024-01-06T00:00:00Z"), None, 0)  # the window's first, partial day
    assert len(points) == 10
    assert [p for p in points if p[2]] == [
        (at("2024-01-07T00:00:00Z"), None, 3),
        (at("2024-01-08T00:00:00Z"), None, 2),
        (at("2024-01-14T00:00:00Z"), None, 1),
        (at("2024-01-15T00:00:00Z"), None, 1),
    ]


async def test_week_buckets_start_on_monday_utc(gql: Any, boundary: None) -> None:
    within = {"since": "2024-01-01T00:00:00Z"}
    asked = datetime.now(UTC)
    points = await series(gql, "Placed Order", "WEEK", within)
    answered = datetime.now(UTC)
    assert points[:3] == [
        (at("2024-01-01T00:00:00Z"), None, 3),  # Sunday 2024-01-07 belongs to the week of Monday 01-01
        (at("2024-01-08T00:00:00Z"), None, 3),
        (at("2024-01-15T00:00:00Z"), None, 1),
    ]
    assert all(datetime.fromisoformat(p[0]).weekday() == 0 for p in points)
    assert sum(p[2] for p in points) == len(BOUNDARY_EVENTS)
    # The last bucket is the week of the request's now (read by the server between `asked` and `answered`);
    # across Monday 00:00 UTC it may be either week.
    assert points[-1][0] in {week_start(asked), week_start(answered)}
    assert [p[0] for p in points] == [iso(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(weeks=k)) for k in range(len(points))]


async def test_buckets_before_1970(gql: Any) -> None:
    await track(
        gql, event("old@x", "Placed Order", "1969-12-31T23:30:00Z"), event("old@x", "Placed Order", "1970-01-01T00:10:00Z"))
    # `before` has no start: the series starts at the bucket of the first event in the window.
    assert await series(gql, "Placed Order", "HOUR", {"before": "1970-01-01T01:00:00Z"}) == [
        (at("1969-12-31T23:00:00Z"), None, 1), (at("1970-01-01T00:00:00Z"), None, 1)]
    within: dict[str, Any] = {"between": {"from": "1969-12-31T00:00:00Z", "to": "1970-01-02T00:00:00Z"}}
    assert await series(gql, "Placed Order", "DAY", within) == [
        (at("1969-12-31T00:00:00Z"), None, 1), (at("1970-01-01T00:00:00Z"), None, 1)]
    within = {"before": "1970-01-02T00:00:00Z"}
    assert await series(gql, "Placed Order", "WEEK", within) == [(at("1969-12-29T00:00:00Z"), None, 2)]


async def test_group_by_a_property_with_a_null_group(gql: Any) -> None:
    day = "2024-03-04T10:00:00Z"
    next_day = "2024-03-05T10:00:00Z"
    await track(
        gql,
        event("a@x", STARTED_NAME, day, conversation_id="1", channel="web"),
        event("a@x", STARTED_NAME, day, conversation_id="2", channel="SMS"),
        event("a@x", STARTED_NAME, day, conversation_id="3", channel="web"),
        event("a@x", STARTED_NAME, day, conversation_id="4"),
        event("a@x", STARTED_NAME, next_day, conversation_id="5", channel="web"),
        event("a@x", "Placed Order", day, plan="gold"),
        event("a@x", "Placed Order", day, plan=3),
        event("a@x", "Placed Order", day, plan=True),
        event("a@x", "Placed Order", day, plan=2.5),
        event("a@x", "Placed Order", day, plan=["gold"]),
        event("a@x", "Placed Order", day, plan=None),
        event("a@x", "Placed Order", day),
        event("a@x", "Placed Order", next_day, plan="gold"),
    )
    within = {"between": {"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}}
    assert await series(gql, "STARTED_CONVERSATION", "DAY", within, "channel") == [
        (at("2024-03-04T00:00:00Z"), "SMS", 1),
        (at("2024-03-04T00:00:00Z"), "web", 2),
        (at("2024-03-04T00:00:00Z"), None, 1),
        (at("2024-03-05T00:00:00Z"), "web", 1),
    ]
    assert await series(gql, "Placed Order", "DAY", within, "plan") == [
        (at("2024-03-04T00:00:00Z"), "3", 1),
        (at("2024-03-04T00:00:00Z"), "gold", 1),
        (at("2024-03-04T00:00:00Z"), "true", 1),
        (at("2024-03-04T00:00:00Z"), None, 4),  # fractional number, list, null, absent
        (at("2024-03-05T00:00:00Z"), "gold", 1),
    ]
    assert await series(gql, "Placed Order", "WEEK", within, "missing") == [(at("2024-03-04T00:00:00Z"), None, 8)]
    # Without groupBy: one point per bucket, empty ones included.
    assert [p[2] for p in await series(gql, "Placed Order", "DAY", within)] == [0, 0, 0, 7, 1, 0, 0]


async def test_activity_is_newest_first_and_pages(gql: Any, ago: Ago) -> None:
    await track(gql, *(event("a@x", RESOLVED_NAME, ago(hours=h), conversation_id=f"c{h}") for h in range(1, 6)),
                event("a@x", "Placed Order", ago(minutes=1)))
    seen: list[str] = []
    after = None
    while True:
        page = (await gql.data(ACTIVITY, {"name": "resolved customer agent conversation", "first": 2, "after": after}))
        activity = page["metric"]["activity"]
        assert {n["__typename"] for n in activity["nodes"]} <= {"ConversationResolvedEvent"}
        seen.extend(n["occurredAt"] for n in activity["nodes"])
        if not activity["pageInfo"]["hasNextPage"]:
            break
        after = activity["pageInfo"]["endCursor"]
    assert seen == [ago(hours=h) for h in range(1, 6)]


@pytest.mark.parametrize(("query", "variables", "input_path"), [
    (SERIES, {"name": "Placed Order", "interval": "HOUR", "within": {"lastDays": 417}}, ["within"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY", "within": {"lastDays": 36500}}, ["within"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY", "within": {"lastDays": 0}}, ["within", "lastDays"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY", "within": {"lastHours": 876001}}, ["within", "lastHours"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY", "within": {"lastDays": 1}, "groupBy": 'a"b'}, ["groupBy"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY", "within": {"lastDays": 1}, "groupBy": ""}, ["groupBy"]),
    (SERIES, {"name": "Placed Order", "interval": "DAY",
              "within": {"between": {"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}}},
     ["within", "between"]),
    (ACTIVITY, {"name": "Placed Order", "first": 0}, ["first"]),
    (ACTIVITY, {"name": "Placed Order", "first": 1001}, ["first"]),
])
async def test_limits_are_bad_user_input(
    gql: Any, ago: Ago, query: str, variables: dict[str, Any], input_path: list[Any]
) -> None:
    await track(gql, event("a@x", "Placed Order", ago(hours=1)))
    error = await gql.error(query, variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["inputPath"] == input_path
    assert error["path"][0] == "metric"


async def test_a_series_may_span_at_most_10000_buckets(gql: Any, ago: Ago) -> None:
    await track(gql, event("a@x", "Placed Order", ago(hours=1)))
    # 9999 whole hours back from now touch 10,000 hour buckets; one more hour is too many.
    ok = await series(gql, "Placed Order", "HOUR", {"lastHours": 9999})
    assert len(ok) == 10_000 and sum(p[2] for p in ok) == 1
    error = await gql.error(SERIES, {"name": "Placed Order", "interval": "HOUR", "within": {"lastHours": 10_000}})
    assert error["extensions"]["inputPath"] == ["within"]
    count_bad = await gql.error('{ metric(name: "Placed Order") { count(within: {lastDays: 36501}) } }')
    assert count_bad["extensions"]["inputPath"] == ["within", "lastDays"]
