"""Conversations through the real app over HTTP: status rules, details, filters and keyset paging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.ingest import EventInput, track_events
from store.tables import conversations, events, metrics, profile_metrics, profiles
from tests.helpers import ESCALATED_NAME, RECOMMENDED_NAME, RESOLVED_NAME, STARTED_NAME, event, iso, run_cli, track
from tests.stores import backend_pid, wait_until_blocked
from vocabulary.timestamps import to_micros

DETAILS = """
id status channel startedAt endedAt initialSkill finalSkill escalationReason tags recommendedProducts
profile { email }
events {
  __typename metric occurredAt
  ... on StartedConversationEvent { conversationId initialSkill }
  ... on ConversationResolvedEvent { finalSkill tags }
  ... on ConversationEscalatedEvent { escalationReason tags }
  ... on ProductRecommendationEvent { products }
}
"""
ONE = "query($id: String!) { conversation(id: $id) { " + DETAILS + " } }"
PAGE = """query($status: ConversationStatus, $channel: String, $within: TimeWindow, $first: Int, $after: String) {
  conversations(status: $status, channel: $channel, within: $within, first: $first, after: $after) {
    totalCount
    edges { cursor node { id status startedAt } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


Ago = Callable[..., str]


@pytest.fixture
def ago() -> Ago:
    """ISO text of an instant before now, with now read when the test starts: `conversations(within:)` has no
    asOf, so its windows are measured back from the real clock, and events are placed relative to it."""
    now = datetime.now(UTC).replace(microsecond=0)

    def before_now(**delta: float) -> str:
        return iso(now - timedelta(**delta))

    return before_now


async def one(gql: Any, conversation_id: str) -> dict[str, Any] | None:
    data = await gql.data(ONE, {"id": conversation_id})
    return data["conversation"]  # type: ignore[no-any-return]


async def all_pages(gql: Any, first: int, **variables: Any) -> tuple[list[str], int]:
    """Ids over every page, checking page info and that totalCount agrees on every page."""
    ids: list[str] = []
    after = None
    total = None
    while True:
        page = (await gql.data(PAGE, {**variables, "first": first, "after": after}))["conversations"]
        assert total is None or page["totalCount"] == total
        total = page["totalCount"]
        assert [node["id"] for node in page["nodes"]] == [edge["node"]["id"] for edge in page["edges"]]
        assert len(page["edges"]) <= first
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if page["edges"]:
            assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        ids.extend(node["id"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert total is not None
    return ids, total


async def test_status_is_decided_by_the_latest_resolved_or_escalated_event(gql: Any, ago: Ago) -> None:
    await track(
        gql,
        event("a@x", STARTED_NAME, ago(hours=5), conversation_id="res-then-esc", channel="web", initial_skill="Billing"),
        event("a@x", RESOLVED_NAME, ago(hours=4), conversation_id="res-then-esc", final_skill="Billing"),
        event("a@x", ESCALATED_NAME, ago(hours=3), conversation_id="res-then-esc", escalation_reason="Angry"),
        event("b@x", STARTED_NAME, ago(hours=5), conversation_id="esc-then-res"),
        event("b@x", ESCALATED_NAME, ago(hours=4), conversation_id="esc-then-res", escalation_reason="Refund"),
        event("b@x", RESOLVED_NAME, ago(hours=2), conversation_id="esc-then-res", final_skill="Refunds"),
        event("c@x", STARTED_NAME, ago(hours=1), conversation_id="open", channel="SMS"),
        event("c@x", RECOMMENDED_NAME, ago(minutes=30), conversation_id="open", products=["SKU-1"]),
        # Stored in reverse order: the occurredAt times decide, not the order of arrival.
        event("d@x", ESCALATED_NAME, ago(hours=1), conversation_id="late-arrival"),
        event("d@x", RESOLVED_NAME, ago(hours=2), conversation_id="late-arrival"),
        event("d@x", STARTED_NAME, ago(hours=3), conversation_id="late-arrival"),
    )
    escalated = await one(gql, "res-then-esc")
    assert escalated is not None
    assert (escalated["status"], escalated["endedAt"]) == ("ESCALATED", ago(hours=3))
    assert (escalated["initialSkill"], escalated["finalSkill"], escalated["escalationReason"]) == (
        "Billing", "Billing", "Angry")
    assert (escalated["channel"], escalated["startedAt"]) == ("web", ago(hours=5))
    assert escalated["profile"] == {"email": "a@x"}

    resolved = await one(gql, "esc-then-res")
    assert resolved is not None
    assert (resolved["status"], resolved["endedAt"]) == ("RESOLVED", ago(hours=2))
    # The escalation is history: its reason stays visible on the resolved conversation.
    assert (resolved["finalSkill"], resolved["escalationReason"], resolved["channel"]) == ("Refunds", "Refund", None)

    still_open = await one(gql, "open")
    assert still_open is not None
    assert (still_open["status"], still_open["endedAt"], still_open["channel"]) == ("OPEN", None, "SMS")
    assert (still_open["finalSkill"], still_open["escalationReason"]) == (None, None)

    late = await one(gql, "late-arrival")
    assert late is not None
    assert (late["status"], late["startedAt"], late["endedAt"]) == ("ESCALATED", ago(hours=3), ago(hours=1))
    assert [e["__typename"] for e in late["events"]] == [
        "StartedConversationEvent", "ConversationResolvedEvent", "ConversationEscalatedEvent"]


async def test_tags_union_products_in_order_of_first_recommendation_and_events_oldest_first(gql: Any, ago: Ago) -> None:
    await track(
        gql,
        event("p@x", "Started Customer Agent Conversation", ago(hours=6),
              **{"Conversation ID": "c1", "Initial skill": "Shopping", "Channel": "chat"}),
        event("p@x", RECOMMENDED_NAME, ago(hours=5), conversation_id="c1", products=["SKU-B", "SKU-A"]),
        event("p@x", "RECEIVED_PRODUCT_RECOMMENDATION", ago(hours=4), conversationId="c1", products=["SKU-A", "SKU-C"]),
        event("p@x", ESCALATED_NAME, ago(hours=3), conversation_id="c1", tags=["vip", "shipping"]),
        event("p@x", RESOLVED_NAME, ago(hours=2), conversation_id="c1", tags=["shipping", "solved", "vip"],
              final_skill="Logistics"),
        # Not agent events, or another conversation: not part of c1.
        event("p@x", "Placed Order", ago(hours=1), conversation_id="c1", tags=["order"]),
        event("p@x", STARTED_NAME, ago(hours=1), conversation_id="c2", tags=["other"]),
    )
    found = await one(gql, "c1")
    assert found is not None
    assert found["tags"] == ["vip", "shipping", "solved"]
    assert found["recommendedProducts"] == ["SKU-B", "SKU-A", "SKU-C"]
    assert (found["status"], found["channel"], found["initialSkill"], found["finalSkill"]) == (
        "RESOLVED", "chat", "Shopping", "Logistics")
    assert [e["occurredAt"] for e in found["events"]] == [ago(hours=h) for h in (6, 5, 4, 3, 2)]
    assert found["events"][0] == {
        "__typename": "StartedConversationEvent", "metric": STARTED_NAME, "occurredAt": ago(hours=6),
        "conversationId": "c1", "initialSkill": "Shopping"}
    assert found["events"][1]["products"] == ["SKU-B", "SKU-A"]
    assert found["events"][4]["tags"] == ["shipping", "solved", "vip"]


async def test_a_conversation_without_a_started_event_starts_at_its_first_event(gql: Any, ago: Ago) -> None:
    await track(
        gql,
        event("n@x", RECOMMENDED_NAME, ago(hours=3), conversation_id="headless", products=["SKU-9"], channel="email"),
        event("n@x", RESOLVED_NAME, ago(hours=2), conversation_id="headless"),
    )
    found = await one(gql, "headless")
    assert found is not None
    assert (found["startedAt"], found["endedAt"], found["status"], found["channel"]) == (
        ago(hours=3), ago(hours=2), "RESOLVED", "email")
    assert found["initialSkill"] is None


async def test_unknown_conversations_are_null(gql: Any, ago: Ago) -> None:
    assert await one(gql, "nope") is None
    # A custom event carrying a conversation_id is not a Customer Agent conversation.
    await track(gql, event("o@x", "Placed Order", ago(hours=1), conversation_id="order-only"))
    assert await one(gql, "order-only") is None
    assert (await gql.data(PAGE, {}))["conversations"]["totalCount"] == 0


def _conversation(ago: Ago, n: int, status: str, started_hours_ago: float, channel: str) -> list[dict[str, Any]]:
    cid = f"conv-{n:02d}"
    email = f"u{n % 3}@x"
    out = [event(email, STARTED_NAME, ago(hours=started_hours_ago), conversation_id=cid, channel=channel)]
    if status == "RESOLVED":
        out.append(event(email, RESOLVED_NAME, ago(hours=started_hours_ago - 0.5), conversation_id=cid))
    elif status == "ESCALATED":
        out.append(event(email, ESCALATED_NAME, ago(hours=started_hours_ago - 0.5), conversation_id=cid))
    return out


STATUS_CYCLE = ("RESOLVED", "ESCALATED", "OPEN", "RESOLVED")


@pytest.fixture
async def many(gql: Any, ago: Ago) -> dict[str, dict[str, Any]]:
    """21 conversations; several start at the same instant so that the id breaks the tie."""
    expected: dict[str, dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    for n in range(21):
        status = STATUS_CYCLE[n % len(STATUS_CYCLE)]
        started = 10 + n // 3  # three conversations per start time
        channel = "SMS" if n % 2 else "web"
        batch.extend(_conversation(ago, n, status, started, channel))
        expected[f"conv-{n:02d}"] = {"status": status, "started": started, "channel": channel}
    await track(gql, *batch)
    return expected


def _ordered(expected: dict[str, dict[str, Any]], keep: Any = lambda info: True) -> list[str]:
    chosen = [cid for cid, info in expected.items() if keep(info)]
    # Newest start first (fewest hours ago), then id descending (a stable sort keeps that order).
    return sorted(sorted(chosen, reverse=True), key=lambda cid: expected[cid]["started"])


@pytest.mark.parametrize("first", [1, 2, 5, 50])
async def test_paging_with_a_status_filter_neither_repeats_nor_skips(
    gql: Any, many: dict[str, dict[str, Any]], first: int
) -> None:
    for status in ("RESOLVED", "ESCALATED", "OPEN"):
        ids, total = await all_pages(gql, first, status=status)
        assert ids == _ordered(many, lambda info, s=status: info["status"] == s)
        assert total == len(ids) == len(set(ids))
    ids, total = await all_pages(gql, first)
    assert ids == _ordered(many)
    assert total == 21


async def test_channel_and_start_window_filters(gql: Any, ago: Ago, many: dict[str, dict[str, Any]]) -> None:
    ids, total = await all_pages(gql, 4, channel="SMS", status="RESOLVED")
    assert ids == _ordered(many, lambda info: info["channel"] == "SMS" and info["status"] == "RESOLVED")
    assert total == len(ids) > 0
    # Started within the last 13 hours: conversations started 10, 11, 12 hours ago. A conversation
    # that started earlier but resolved inside the window does not count.
    ids, total = await all_pages(gql, 2, within={"lastHours": 13})
    assert ids == _ordered(many, lambda info: info["started"] <= 12)
    assert total == 9
    ids, _ = await all_pages(gql, 3, within={"between": {"from": ago(hours=14), "to": ago(hours=11)}}, status="OPEN")
    assert ids == _ordered(many, lambda info: 12 <= info["started"] <= 14 and info["status"] == "OPEN")
    ids, total = await all_pages(gql, 3, channel="fax")
    assert (ids, total) == ([], 0)


async def test_start_windows_last_days_since_and_before(gql: Any, ago: Ago) -> None:
    """A conversation is in a window by its start; `since` includes its instant, `before` excludes it."""
    await track(
        gql,
        event("a@x", STARTED_NAME, ago(hours=2), conversation_id="h02"),
        event("a@x", STARTED_NAME, ago(hours=23), conversation_id="h23"),
        event("b@x", STARTED_NAME, ago(hours=25), conversation_id="h25"),
        event("b@x", STARTED_NAME, ago(days=3), conversation_id="d3"),
        # Started three days ago, resolved an hour ago: still a conversation of three days ago.
        event("c@x", STARTED_NAME, ago(days=3, hours=1), conversation_id="d3-late"),
        event("c@x", RESOLVED_NAME, ago(hours=1), conversation_id="d3-late"),
    )
    assert await all_pages(gql, 2, within={"lastDays": 1}) == (["h02", "h23"], 2)
    assert await all_pages(gql, 2, within={"lastDays": 2}) == (["h02", "h23", "h25"], 3)
    assert await all_pages(gql, 2, within={"lastDays": 4}) == (["h02", "h23", "h25", "d3", "d3-late"], 5)
    assert await all_pages(gql, 2, within={"lastDays": 4}, status="RESOLVED") == (["d3-late"], 1)
    assert await all_pages(gql, 2, within={"since": ago(hours=23)}) == (["h02", "h23"], 2)
    assert await all_pages(gql, 2, within={"since": ago(days=3)}) == (["h02", "h23", "h25", "d3"], 4)
    assert await all_pages(gql, 2, within={"before": ago(hours=23)}) == (["h25", "d3", "d3-late"], 3)
    assert await all_pages(gql, 2, within={"before": ago(days=3)}) == (["d3-late"], 1)


async def test_edges_carry_status_and_start(gql: Any, ago: Ago, many: dict[str, dict[str, Any]]) -> None:
    page = (await gql.data(PAGE, {"first": 3}))["conversations"]
    nodes = [edge["node"] for edge in page["edges"]]
    assert [n["id"] for n in nodes] == _ordered(many)[:3]
    for node in nodes:
        assert node["status"] == many[node["id"]]["status"]
        assert node["startedAt"] == ago(hours=many[node["id"]]["started"])
    assert page["pageInfo"]["hasNextPage"] is True and page["pageInfo"]["hasPreviousPage"] is False


@pytest.mark.parametrize(("variables", "input_path"), [
    ({"first": 0}, ["first"]),
    ({"first": 1001}, ["first"]),
    ({"after": "bm90LWEtY3Vyc29y"}, ["after"]),
    ({"after": "garbage!"}, ["after"]),
    ({"within": {"lastDays": 0}}, ["within", "lastDays"]),
    ({"within": {"lastHours": 876001}}, ["within", "lastHours"]),
    ({"within": {"between": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}}, ["within", "between"]),
])
async def test_bad_input(gql: Any, variables: dict[str, Any], input_path: list[Any]) -> None:
    error = await gql.error(PAGE, variables)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["inputPath"] == input_path
    assert error["path"] == ["conversations"]


async def test_a_cursor_of_another_list_is_refused(gql: Any, ago: Ago) -> None:
    await track(gql, event("e@x", STARTED_NAME, ago(hours=1), conversation_id="x"), event("e@x", "Placed Order", ago(hours=1)))
    events_cursor = (await gql.data("{ events(first: 1) { pageInfo { endCursor } } }"))["events"]["pageInfo"]["endCursor"]
    error = await gql.error(PAGE, {"after": events_cursor})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "inputPath": ["after"]}


# ---------------------------------------------------------------- the conversations table, kept by writes


async def test_a_conversation_follows_its_events_across_batches(gql: Any, ago: Ago) -> None:
    started = event("a@x", STARTED_NAME, ago(hours=5), conversation_id="c-1")
    escalated = {**event("a@x", ESCALATED_NAME, ago(hours=4), conversation_id="c-1", channel="SMS"), "uniqueId": "esc-1"}
    await track(gql, started)
    assert (await one(gql, "c-1") or {})["status"] == "OPEN"

    await track(gql, escalated)
    assert (await all_pages(gql, 10, status="ESCALATED"))[0] == ["c-1"]
    assert await all_pages(gql, 10, status="OPEN") == ([], 0)
    assert (await one(gql, "c-1") or {})["channel"] == "SMS"  # the Started event has none

    # A replay of the escalation, later: a duplicate, which changes nothing.
    replay = {**escalated, "occurredAt": ago(hours=1)}
    assert await track(gql, replay) == {"accepted": 0, "duplicates": 1}
    assert (await one(gql, "c-1") or {})["endedAt"] == ago(hours=4)

    # A batch refused inside its write (its profile key names two profiles) leaves the conversation as it was.
    await track(gql, event("b@x", STARTED_NAME, ago(hours=9), conversation_id="c-2"))
    two_profiles = {"metric": RESOLVED_NAME, "occurredAt": ago(hours=2), "properties": {"conversation_id": "c-1"},
                    "profile": {"email": "a@x", "phoneNumber": "+15550001"}}
    await track(gql, {**two_profiles, "profile": {"email": "b@x", "phoneNumber": "+15550001"}, "metric": "Viewed"})
    error = await gql.error("mutation($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted } }",
                            {"e": [two_profiles]})
    assert "different profiles" in error["message"]
    assert (await one(gql, "c-1") or {})["status"] == "ESCALATED"

    await track(gql, event("a@x", RESOLVED_NAME, ago(hours=2), conversation_id="c-1"))
    assert (await all_pages(gql, 10, status="RESOLVED"))[0] == ["c-1"]
    assert (await all_pages(gql, 10))[0] == ["c-1", "c-2"]


AGENT_NAMES = (STARTED_NAME, RESOLVED_NAME, ESCALATED_NAME, RECOMMENDED_NAME)
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def agent_event(draw: st.DrawFn) -> EventInput:
    metric = draw(st.sampled_from((*AGENT_NAMES, "Placed Order")))
    properties: dict[str, Any] = {"conversation_id": draw(st.sampled_from(("k1", "k2", "k3", "k4")))}
    channel = draw(st.sampled_from((None, "SMS", "Web", "web")))
    if channel is not None:
        properties["channel"] = channel
    if metric == RECOMMENDED_NAME:
        properties["products"] = ["SKU-1"]
    return EventInput(
        metric=metric, profile={"email": draw(st.sampled_from(("p1@x", "p2@x", "p3@x")))},
        occurred_at=BASE + timedelta(minutes=draw(st.integers(0, 6))), properties=properties,
        unique_id=draw(st.sampled_from((None, "u1", "u2"))),
    )


def expected_conversations(accepted: list[EventInput], profile_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    """The conversations table as the rules (store/conversation_summaries.py) define it, in Python."""
    grouped: dict[str, list[EventInput]] = {}
    for e in accepted:
        if e.metric in AGENT_NAMES:
            grouped.setdefault(e.properties["conversation_id"], []).append(e)
    return [_expected_conversation(cid, group, profile_ids) for cid, group in sorted(grouped.items())]


def _expected_conversation(cid: str, group: list[EventInput], profile_ids: dict[str, int]) -> tuple[Any, ...]:
    def times(metric: str | None) -> list[int]:
        return [to_micros(e.occurred_at) for e in group if metric in (None, e.metric)]  # type: ignore[arg-type]

    starts = [e for e in group if e.metric == STARTED_NAME]
    channels = [e.properties["channel"] for e in starts if "channel" in e.properties] or \
               [e.properties["channel"] for e in group if "channel" in e.properties]
    resolved, escalated = max(times(RESOLVED_NAME), default=None), max(times(ESCALATED_NAME), default=None)
    if escalated is not None and (resolved is None or escalated >= resolved):
        status, ended = "ESCALATED", escalated
    elif resolved is not None:
        status, ended = "RESOLVED", resolved
    else:
        status, ended = "OPEN", None
    profile_id = min(profile_ids[e.profile["email"]] for e in starts or group)  # type: ignore[index]
    started_at = min(times(STARTED_NAME) or times(None))
    return cid, profile_id, min(channels, default=None), started_at, ended, status


async def _reset(store: Any) -> None:
    async with store.begin() as connection:
        for table in (conversations, profile_metrics, events, profiles, metrics):
            await connection.execute(sa.delete(table))


async def _stored_conversations(store: Any) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    async with store.connect() as connection:
        c = conversations.c
        rows = (await connection.execute(sa.select(c.id, c.profile_id, c.channel, c.started_at, c.ended_at, c.status)
                                         .order_by(c.id))).all()
        emails = (await connection.execute(sa.select(profiles.c.email, profiles.c.id))).all()
    return [tuple(row) for row in rows], {email: int(profile_id) for email, profile_id in emails}


# The store is shared across examples: each example first empties it.
@settings(max_examples=settings.default.max_examples, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(agent_event(), min_size=1, max_size=6), min_size=1, max_size=4))
def test_the_kept_table_equals_the_rules_over_every_accepted_event(
    runner_and_store: Any, batches: list[list[EventInput]]
) -> None:
    runner, store = runner_and_store
    runner.run(_reset(store))
    accepted: list[EventInput] = []
    seen: set[tuple[str, str]] = set()
    for batch in batches:
        runner.run(track_events(store, batch))
        for e in batch:  # the first event of a (metric, uniqueId) is stored, later ones are duplicates
            if e.unique_id is None or (e.metric, e.unique_id) not in seen:
                accepted.append(e)
            if e.unique_id is not None:
                seen.add((e.metric, e.unique_id))
    stored, profile_ids = runner.run(_stored_conversations(store))
    assert stored == expected_conversations(accepted, profile_ids)


async def test_a_write_recomputes_its_conversations_from_the_covering_index_alone(store: Any) -> None:
    if store.dialect != "sqlite":
        pytest.skip("the plan is SQLite's (PostgreSQL's index-only scans depend on its visibility map)")
    from store.conversation_summaries import summaries

    read = summaries("sqlite", {"STARTED_CONVERSATION": 1, "CONVERSATION_ESCALATED": 2},
                     events.c.conversation_id.in_(["c-1", "c-2"]))
    sql = str(read.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    async with store.connect() as connection:
        details = [row[-1] for row in (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()]
    assert any("COVERING INDEX ix_events_conversation (conversation_id=?)" in detail for detail in details), details
    assert not any(detail.startswith("SCAN events") for detail in details), details


async def test_concurrent_writes_to_one_conversation_both_count_on_postgresql(store: Any) -> None:
    """Two writes touching one conversation at once, the first creating an agent metric: the later
    recompute must see the earlier write's metric and event."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite runs one write at a time")
    from resolvers.ingest import _write_events, normalise_event

    def event_at(metric: str, minutes: int) -> EventInput:
        return EventInput(metric, {"email": "a@x"}, BASE + timedelta(minutes=minutes), {"conversation_id": "c-race"})

    await track_events(store, [event_at("Placed Order", 0)])  # the profile exists; no agent metric yet
    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with store.writer.connect() as first:
        await first.begin()
        first_pid = await backend_pid(first)
        await first.run_sync(lambda sync: _write_events(sync, [normalise_event(event_at(RESOLVED_NAME, 9), 0)]))

        async def second() -> None:
            async with store.writer.begin() as connection:
                second_pid.set_result(await backend_pid(connection))
                await connection.run_sync(lambda sync: _write_events(sync, [normalise_event(event_at(STARTED_NAME, 1), 0)]))

        start = asyncio.create_task(second())
        # PostgreSQL shows the second write waiting on a lock the first one holds until it commits.
        _, blockers = await wait_until_blocked(store, await second_pid, start)
        # The first write among them: tests running beside this one (pytest-xdist) may hold the same advisory
        # lock buckets in the same database, and wait in the same queue.
        assert first_pid in blockers, blockers
        assert (await _stored_conversations(store))[0] == []  # neither write is visible yet
        await first.commit()
        await start
    stored, profile_ids = await _stored_conversations(store)
    assert stored == [("c-race", profile_ids["a@x"], None, to_micros(BASE + timedelta(minutes=1)),
                       to_micros(BASE + timedelta(minutes=9)), "RESOLVED")]


async def test_a_write_holds_a_bounded_number_of_locks_on_postgresql(store: Any) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite takes no locks of its own")
    from store.conversation_summaries import LOCK_BUCKETS, refresh

    async with store.writer.begin() as connection:
        await connection.run_sync(lambda sync: refresh(sync, [f"c-{n}" for n in range(5000)]))
        held = await connection.scalar(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"))
    assert held == LOCK_BUCKETS


async def test_rebuild_recomputes_conversations_that_writes_did_not_keep(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after an older version wrote events beside this one: the table lacks conversations; the command restores them."""
    from store import migrate
    from store.engine import Store

    async def write_then_lose(lost: bool) -> list[tuple[Any, ...]]:
        store = Store(store_url)
        try:
            await migrate.prepare(store)
            if lost:
                await track_events(store, [
                    EventInput(STARTED_NAME, {"email": "a@x"}, BASE, {"conversation_id": "c-1", "channel": "SMS"}),
                    EventInput(ESCALATED_NAME, {"email": "b@x"}, BASE, {"conversation_id": "c-2"}),
                ])
                async with store.begin() as connection:
                    await connection.execute(sa.delete(conversations))
            return (await _stored_conversations(store))[0]
        finally:
            await store.dispose()

    assert await write_then_lose(lost=True) == []
    assert await run_cli("rebuild-conversations", "--database-url", store_url) == 0
    assert "2 conversations and 2 (profile, metric) first times recomputed" in capsys.readouterr().out
    assert [row[0] for row in await write_then_lose(lost=False)] == ["c-1", "c-2"]
