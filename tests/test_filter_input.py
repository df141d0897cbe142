"""The structured input shape ↔ the filter tree: what a saved segment stores is what it was given."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers.language import ast as ast
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
