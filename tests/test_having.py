"""`having` (SEMANTICS.md): figures over the qualifying events, each case by name, on both stores, through the
API and in both shapes of the compiled SQL."""

from __future__ import annotations

from typing import Any

from store.engine import Store
from tests.helpers import AS_OF, audience_emails, before, event, track
from tests.shapes import members_in_both_shapes

ORDER = "Placed Order"


def did(*having: tuple[str, str, str, float], **condition: Any) -> dict[str, Any]:
    return {"did": {"metric": ORDER, **condition,
                    "having": [{"function": f, "property": p, "op": op, "value": v} for f, p, op, v in having]}}


async def members(gql: Any, store: Store, filter: dict[str, Any]) -> list[str]:
    through_api = await audience_emails(gql, filter)
    assert await members_in_both_shapes(store, filter, AS_OF) == through_api, filter
    return through_api


async def orders(gql: Any, *per_profile: tuple[str, list[dict[str, Any]]]) -> None:
    await track(gql, *(event(email, ORDER, before(hours=i + 1), **properties)
                       for email, events in per_profile for i, properties in enumerate(events)))


async def test_sum_reads_json_numbers_only_and_is_zero_over_none(gql: Any, store: Store) -> None:
    await orders(gql,
                 ("both@x", [{"total": 60}, {"total": 50.5}]),
                 ("text@x", [{"total": 60}, {"total": "50"}]),
                 ("none@x", [{"total": True}, {"total": [100]}, {"total": None}, {}]),
                 ("cents@x", [{"total": 99.99}, {"total": 0.01}]))
    await track(gql, event("browser@x", "Viewed Product", before(hours=1)))
    assert await members(gql, store, did(("SUM", "total", "GTE", 100))) == ["both@x", "cents@x"]
    assert await members(gql, store, did(("SUM", "total", "EQ", 60))) == ["text@x"]
    # SUM of no numbers is 0, but the count's default (at least 1) still applies…
    assert await members(gql, store, did(("SUM", "total", "LTE", 0))) == ["none@x"]
    # …unless the count says otherwise: then profiles without an order are in too.
    assert await members(gql, store, did(("SUM", "total", "LTE", 0), count={"atLeast": 0})) == ["browser@x", "none@x"]
    assert await members(gql, store, {"didNot": did(("SUM", "total", "GT", 0))["did"]}) == ["browser@x", "none@x"]


async def test_average_min_max_of_nothing_have_no_value(gql: Any, store: Store) -> None:
    await orders(gql,
                 ("thirds@x", [{"total": 1}, {"total": 2}, {"total": 2}]),
                 ("flat@x", [{"total": 5}, {"total": "9"}]),
                 ("none@x", [{"total": "5"}, {"total": False}]))
    # 5/3 rounded to 6 places.
    assert await members(gql, store, did(("AVERAGE", "total", "EQ", 1.666667))) == ["thirds@x"]
    assert await members(gql, store, did(("MIN", "total", "LT", 2))) == ["thirds@x"]
    assert await members(gql, store, did(("MAX", "total", "GTE", 5))) == ["flat@x"]
    # No value: every comparison is false, NEQ included, whatever the count says.
    for function in ("AVERAGE", "MIN", "MAX"):
        assert await members(gql, store, did((function, "total", "NEQ", 5), count={"atLeast": 0})) == ["thirds@x"]
        assert await members(gql, store, {"didNot": did((function, "total", "NEQ", 12345))["did"]}) == ["none@x"]


async def test_figures_round_to_six_places_before_comparing(gql: Any, store: Store) -> None:
    await orders(gql, ("tenths@x", [{"total": 0.1}, {"total": 0.2}]), ("tiny@x", [{"total": 0.0000004}]))
    assert await members(gql, store, did(("SUM", "total", "EQ", 0.3))) == ["tenths@x"]
    assert await members(gql, store, did(("SUM", "total", "EQ", 0))) == ["tiny@x"]
    assert await members(gql, store, did(("MAX", "total", "GT", 0))) == ["tenths@x"]


async def test_distinct_count_counts_list_items_and_json_equality(gql: Any, store: Store) -> None:
    await orders(gql,
                 # "A", "B" and 1 (1.0 is 1): null items are not counted.
                 ("three@x", [{"sku": "A"}, {"sku": ["A", "B"]}, {"sku": [None, 1]}, {"sku": 1.0}]),
                 # "1", 1, true and the inner list [1]: types apart.
                 ("four@x", [{"sku": "1"}, {"sku": 1}, {"sku": True}, {"sku": [[1]]}]),
                 ("objects@x", [{"sku": {"k": 1}}, {"sku": [{"k": 1}, {"k": 2}]}]),
                 ("nothing@x", [{"sku": None}, {"sku": []}, {}]))
    assert await members(gql, store, did(("DISTINCT_COUNT", "sku", "EQ", 3))) == ["three@x"]
    assert await members(gql, store, did(("DISTINCT_COUNT", "sku", "GTE", 4))) == ["four@x"]
    assert await members(gql, store, did(("DISTINCT_COUNT", "sku", "EQ", 2))) == ["objects@x"]
    assert await members(gql, store, did(("DISTINCT_COUNT", "sku", "EQ", 0))) == ["nothing@x"]


async def test_list_items_do_not_repeat_an_event_in_counts_and_sums(gql: Any, store: Store) -> None:
    await orders(gql, ("basket@x", [{"sku": ["A", "B", "C"], "total": 10}, {"sku": ["D", "E"], "total": 5}]))
    filter = did(("DISTINCT_COUNT", "sku", "EQ", 5), ("SUM", "total", "EQ", 15), ("AVERAGE", "total", "EQ", 7.5),
                 count={"exactly": 2})
    assert await members(gql, store, filter) == ["basket@x"]


async def test_having_reads_the_qualifying_events_only(gql: Any, store: Store) -> None:
    await track(gql,
                event("late@x", ORDER, before(days=40), total=500, channel="web"),
                event("late@x", ORDER, before(days=1), total=20, channel="web"),
                event("app@x", ORDER, before(days=1), total=200, channel="app"),
                event("app@x", ORDER, before(days=2), total=200, channel="web"))
    recent = did(("SUM", "total", "GTE", 100), within={"lastDays": 30})
    assert await members(gql, store, recent) == ["app@x"]
    on_web = did(("SUM", "total", "GTE", 100), where=[{"property": "channel", "op": "EQ", "value": "web"}])
    assert await members(gql, store, on_web) == ["app@x", "late@x"]
    both = {"did": {**recent["did"], "where": on_web["did"]["where"]}}
    assert await members(gql, store, both) == ["app@x"]
    text = {"expression": 'did "Placed Order" with sum of total >= 100 in the last 30 days'}
    assert await members(gql, store, text) == ["app@x"]


async def test_explain_shows_the_figures_with_bound_values(gql: Any) -> None:
    sql = (await gql.data("query($f: SegmentFilter!) { explain(filter: $f) }", {"f": {
        "expression": 'did "Placed Order" with sum of total >= 123.5, distinct count of sku >= 7 yesterday'}}))["explain"]
    assert "GROUP BY" in sql and "HAVING" in sql
    assert "json_each" in sql or "jsonb_array_elements" in sql
    for statement in sql.split("\n\n"):
        text = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        assert "123.5" not in text and "total" not in text  # values and names are bound, never written in


async def test_distinct_count_of_a_key_kept_in_a_column_reads_lists_and_numbers_too(gql: Any, store: Store) -> None:
    """conversation_id and channel strings are read from their columns; other values from the JSON."""
    await orders(gql,
                 ("mixed@x", [{"conversation_id": "c1"}, {"conversation_id": ["c1", "c2"]}, {"conversation_id": 3},
                              {"conversation_id": 3.0}, {"channel": ["SMS", "web"]}, {"channel": "SMS"}]),
                 ("strings@x", [{"conversation_id": "c1"}, {"conversation_id": "c2"}, {"channel": "SMS"}]))
    assert await members(gql, store, did(("DISTINCT_COUNT", "conversation_id", "EQ", 3))) == ["mixed@x"]
    assert await members(gql, store, did(("DISTINCT_COUNT", "conversation_id", "EQ", 2))) == ["strings@x"]
    assert await members(gql, store, did(("DISTINCT_COUNT", "channel", "EQ", 2))) == ["mixed@x"]
