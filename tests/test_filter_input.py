"""The structured input shape ↔ the filter tree: what a saved segment stores is what it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers.errors import UserInputError
from resolvers.language import ast as ast
from resolvers.language.limits import check_filter
from resolvers.language.structured import filter_from_input, filter_to_input
from tests.filter_strategies import datetimes, filters, json_scalars

metric_names = st.sampled_from(["Placed Order", "Started Conversation with Customer Agent", "Viewed Product"])
property_names = st.sampled_from(["channel", "n", "tags", "loyalty tier", "conversation_id"])


@settings(deadline=None)
@given(st.data())
def test_input_then_tree_gives_back_the_tree(data: st.DataObject) -> None:
    metrics = data.draw(st.lists(metric_names, min_size=1, max_size=3), label="metrics")
    properties = data.draw(st.lists(property_names, min_size=1, max_size=4, unique=True), label="properties")
    tree = data.draw(filters(metrics, properties, json_scalars(), ["1", "42"], max_leaves=8,
                             profile_properties=[*properties, *ast.PROFILE_BUILTINS], times=datetimes(1, 9998)), label="tree")
    assert filter_from_input(filter_to_input(tree)) == tree


def test_having_and_calendar_in_the_input_shape() -> None:
    given = {"did": {"metric": "Placed Order", "having": [{"function": "SUM", "property": "total", "op": "GTE", "value": 100}],
                     "within": {"calendar": {"unit": "MONTH", "offset": 1, "count": 1, "timezone": "America/New_York"}}}}
    tree = filter_from_input(given)
    assert tree == ast.Did(ast.EventCondition(
        "Placed Order", having=(ast.AggregateCondition(ast.AggregateFunction.SUM, "total", ast.NumberOp.GTE, 100.0),),
        within=ast.Calendar(ast.CalendarUnit.MONTH, offset=1, timezone="America/New_York")))
    # Stored with the defaults left out; the value is a float as GraphQL's Float gives it.
    assert filter_to_input(tree) == {"did": {
        "metric": "Placed Order", "having": [{"function": "SUM", "property": "total", "op": "GTE", "value": 100.0}],
        "within": {"calendar": {"unit": "MONTH", "offset": 1, "timezone": "America/New_York"}}}}
    assert filter_from_input({"did": {"metric": "A", "within": {"calendar": {"unit": "DAY", "offset": None}}}}) == ast.Did(
        ast.EventCondition("A", within=ast.Calendar(ast.CalendarUnit.DAY)))


def test_a_non_finite_having_value_is_refused() -> None:
    for value in (float("inf"), float("nan"), 10**400):
        tree = filter_from_input({"did": {"metric": "A", "having": [
            {"function": "MAX", "property": "x", "op": "GT", "value": value}]}})
        try:
            check_filter(tree, ("filter",))
        except UserInputError as error:
            assert error.input_path == ("filter", "did", "having", 0, "value")
            assert "finite" in error.message
        else:
            raise AssertionError(f"{value} was accepted")
