"""The edge cases of SEMANTICS.md, each by name, through the real app over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.helpers import (
    AS_OF,
    RECOMMENDED_NAME,
    STARTED_NAME,
    audience_emails,
    before,
    event,
    iso,
    track,
)


def did(metric: str, **condition: Any) -> dict[str, Any]:
    return {"did": {"metric": metric, **condition}}


def where(prop: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"property": prop, "op": op, "value": value}


async def test_absent_property_satisfies_negated_ops(gql: Any) -> None:
    await track(
        gql,
        event("tagged@x", "Viewed Product", before(hours=1), tags=["sale"], color="red"),
        event("bare@x", "Viewed Product", before(hours=1)),
        event("null@x", "Viewed Product", before(hours=1), color=None),
    )
    everyone = ["bare@x", "null@x", "tagged@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("color", "NEQ", "red")])) == ["bare@x", "null@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("color", "NOT_IN", ["red", "blue"])])) == [
        "bare@x", "null@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("tags", "NOT_CONTAINS", "sale")])) == [
        "bare@x", "null@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("color", "EQ", "red")])) == ["tagged@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("color", "NOT_EXISTS")])) == ["bare@x", "null@x"]
    assert await audience_emails(gql, did("Viewed Product", where=[where("size", "NEQ", 1)])) == everyone


async def test_mismatched_types_are_false_and_numbers_compare_by_value(gql: Any) -> None:
    await track(
        gql,
        event("int@x", "Placed Order", before(hours=1), total=1),
        event("float@x", "Placed Order", before(hours=1), total=1.0),
        event("text@x", "Placed Order", before(hours=1), total="1"),
        event("bool@x", "Placed Order", before(hours=1), total=True),
    )
    assert await audience_emails(gql, did("Placed Order", where=[where("total", "EQ", 1)])) == ["float@x", "int@x"]
    assert await audience_emails(gql, did("Placed Order", where=[where("total", "EQ", "1")])) == ["text@x"]
    assert await audience_emails(gql, did("Placed Order", where=[where("total", "GTE", 1)])) == ["float@x", "int@x"]
    assert await audience_emails(gql, did("Placed Order", where=[where("total", "EQ", True)])) == ["bool@x"]
    assert await audience_emails(gql, did("Placed Order", where=[where("total", "GT", "0")])) == ["text@x"]


async def test_zero_counts_include_profiles_without_any_events(gql: Any) -> None:
    await track(
        gql,
        event("buyer@x", "Placed Order", before(days=1)),
        event("browser@x", "Viewed Product", before(days=1)),
    )
    await gql.data('mutation { upsertProfile(input: {email: "quiet@x"}) { id } }')
    no_orders = ["browser@x", "quiet@x"]
    assert await audience_emails(gql, {"didNot": {"metric": "Placed Order"}}) == no_orders
    assert await audience_emails(gql, did("Placed Order", count={"exactly": 0})) == no_orders
    assert await audience_emails(gql, did("Placed Order", count={"atMost": 0})) == no_orders
    assert await audience_emails(gql, did("Placed Order", count={"atLeast": 0})) == ["browser@x", "buyer@x", "quiet@x"]
    assert await audience_emails(gql, did("Never Happened", count={"exactly": 0}, within={"lastDays": 7})) == [
        "browser@x", "buyer@x", "quiet@x"]


async def test_counts_at_least_at_most_exactly(gql: Any) -> None:
    await track(gql, *[event("three@x", "Placed Order", before(hours=h)) for h in (1, 2, 3)],
                *[event("two@x", "Placed Order", before(hours=h)) for h in (1, 2)],
                event("one@x", "Placed Order", before(hours=1)))
    assert await audience_emails(gql, did("Placed Order", count={"atLeast": 2})) == ["three@x", "two@x"]
    assert await audience_emails(gql, did("Placed Order", count={"atMost": 2})) == ["one@x", "two@x"]
    assert await audience_emails(gql, did("Placed Order", count={"exactly": 2})) == ["two@x"]


async def test_window_boundaries_to_the_second(gql: Any) -> None:
    await track(
        gql,
        event("edge@x", "Placed Order", before(days=7)),
        event("outside@x", "Placed Order", before(days=7, seconds=1)),
        event("now@x", "Placed Order", iso(AS_OF)),
    )
    assert await audience_emails(gql, did("Placed Order", within={"lastDays": 7})) == ["edge@x", "now@x"]
    assert await audience_emails(gql, did("Placed Order", within={"lastHours": 168})) == ["edge@x", "now@x"]
    assert await audience_emails(gql, did("Placed Order", within={"since": before(days=7)})) == ["edge@x", "now@x"]
    assert await audience_emails(gql, did("Placed Order", within={"before": before(days=7)})) == ["outside@x"]
    between = {"between": {"from": before(days=7), "to": iso(AS_OF)}}
    assert await audience_emails(gql, did("Placed Order", within=between)) == ["edge@x"]


async def test_events_after_as_of_do_not_exist(gql: Any) -> None:
    await track(
        gql,
        event("early@x", "Placed Order", before(hours=1)),
        event("late@x", "Placed Order", before(hours=-1)),
        event("late@x", "Viewed Product", before(hours=2)),
    )
    assert await audience_emails(gql, did("Placed Order")) == ["early@x"]
    assert await audience_emails(gql, {"didNot": {"metric": "Placed Order"}}) == ["late@x"]
    assert await audience_emails(gql, did("Placed Order", within={"since": before(days=1)})) == ["early@x"]


async def test_follow_up_at_exactly_within_hours(gql: Any) -> None:
    rec = RECOMMENDED_NAME
    props = {"conversation_id": "c", "products": ["SKU-1"]}
    await track(
        gql,
        event("exact@x", rec, before(hours=100), **props), event("exact@x", "Placed Order", before(hours=52)),
        event("late@x", rec, before(hours=100), **props), event("late@x", "Placed Order", before(hours=52, seconds=-1)),
        event("none@x", rec, before(hours=100), **props),
        event("fresh@x", rec, before(hours=47), **props),
        event("closing@x", rec, before(hours=48), **props),
    )
    followed = did(rec, followedBy={"metric": "Placed Order", "withinHours": 48})
    assert await audience_emails(gql, followed) == ["exact@x"]
    dropped = did(rec, notFollowedBy={"metric": "Placed Order", "withinHours": 48})
    # fresh@x's window is still open; closing@x's window closed exactly at asOf.
    assert await audience_emails(gql, dropped) == ["closing@x", "late@x", "none@x"]


async def test_follow_up_with_the_same_properties(gql: Any) -> None:
    await track(
        gql,
        event("same@x", STARTED_NAME, before(hours=5), conversation_id="a"),
        event("same@x", "Conversation with Customer Agent Escalated", before(hours=4), conversation_id="a"),
        event("other@x", STARTED_NAME, before(hours=5), conversation_id="a"),
        event("other@x", "Conversation with Customer Agent Escalated", before(hours=4), conversation_id="b"),
    )
    escalated_same = did(STARTED_NAME, followedBy={
        "metric": "CONVERSATION_ESCALATED", "withinHours": 2, "sameProperties": ["conversation_id"]})
    assert await audience_emails(gql, escalated_same) == ["same@x"]


async def test_metric_names_match_case_insensitively_and_by_alias(gql: Any) -> None:
    await track(gql, event("s@x", "Started Customer Agent Conversation", before(hours=1), conversation_id="c1"))
    assert await audience_emails(gql, did("started conversation with customer agent")) == ["s@x"]
    assert await audience_emails(gql, did("STARTED_CONVERSATION")) == ["s@x"]
    assert await audience_emails(gql, did("placed order")) == []


async def test_and_or_not_with_empty_lists(gql: Any) -> None:
    await track(gql, event("a@x", "Placed Order", before(hours=1)), event("b@x", "Viewed Product", before(hours=1)))
    assert await audience_emails(gql, {"and": []}) == ["a@x", "b@x"]
    assert await audience_emails(gql, {"or": []}) == []
    assert await audience_emails(gql, {"not": {"or": []}}) == ["a@x", "b@x"]
    assert await audience_emails(gql, {"or": [did("Placed Order"), {"didNot": {"metric": "Viewed Product"}}]}) == ["a@x"]


async def test_profile_conditions_on_builtins_and_properties(gql: Any) -> None:
    for email, tier in (("vip1@x", "gold"), ("vip2@x", None), ("ann@x", "platinum")):
        props = {"loyalty tier": tier} if tier else {}
        await gql.data("mutation($i: ProfileInput!) { upsertProfile(input: $i) { id } }",
                       {"i": {"email": email, "properties": props}})
    starts = {"profile": {"property": "email", "op": "STARTS_WITH", "value": "vip"}}
    tier = {"profile": {"property": "loyalty tier", "op": "IN", "value": ["gold", "platinum"]}}
    assert await audience_emails(gql, starts) == ["vip1@x", "vip2@x"]
    assert await audience_emails(gql, tier) == ["ann@x", "vip1@x"]
    assert await audience_emails(gql, {"or": [starts, tier]}) == ["ann@x", "vip1@x", "vip2@x"]
    created = {"profile": {"property": "createdAt", "op": "LT", "value": "2000-01-01T00:00:00Z"}}
    assert await audience_emails(gql, created) == []


async def test_string_matching_with_escaped_and_unicode_characters(gql: Any) -> None:
    tricky = 'say "hi"\\ \n naïve ☕ / 🎉'
    await track(
        gql,
        event("text@x", "Placed Order", before(hours=1), note=tricky, tags=[tricky, "plain"]),
        event("other@x", "Placed Order", before(hours=1), note="say hi", tags=["say"]),
    )
    for op, value in (("EQ", tricky), ("CONTAINS", '"hi"\\'), ("CONTAINS", "naïve ☕"), ("STARTS_WITH", "say \"")):
        assert await audience_emails(gql, did("Placed Order", where=[where("note", op, value)])) == ["text@x"], (op, value)
    assert await audience_emails(gql, did("Placed Order", where=[where("tags", "CONTAINS", tricky)])) == ["text@x"]
    assert await audience_emails(gql, did("Placed Order", where=[where("note", "NOT_CONTAINS", "🎉")])) == ["other@x"]


async def test_a_window_as_of_an_instant_before_a_profiles_last_event(gql: Any) -> None:
    """The profile's latest time lies after asOf: whether it did X inside the window is its earlier events' call."""
    await track(
        gql,
        event("inside@x", "Placed Order", before(days=10)),
        event("inside@x", "Placed Order", before(hours=1)),
        event("outside@x", "Placed Order", before(days=20)),
        event("outside@x", "Placed Order", before(hours=1)),
        event("first-late@x", "Placed Order", before(days=2)),
    )
    as_of = AS_OF - timedelta(days=5)
    assert await audience_emails(gql, did("Placed Order", within={"lastDays": 7}), as_of) == ["inside@x"]
    assert await audience_emails(gql, did("Placed Order"), as_of) == ["inside@x", "outside@x"]
    assert await audience_emails(gql, {"didNot": {"metric": "Placed Order", "within": {"lastDays": 7}}}, as_of) == [
        "first-late@x", "outside@x"]
    assert await audience_emails(gql, did("Placed Order", within={"before": before(days=15)}), as_of) == ["outside@x"]
