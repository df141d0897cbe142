"""explain: the statements that run, with every untrusted value bound as a parameter."""

from __future__ import annotations

from typing import Any

from store.engine import Store

EXPLAIN = "query($f: SegmentFilter!) { explain(filter: $f) }"
SNEAKY = "x'); DROP TABLE events; --"


async def test_explain_shows_the_probe_both_shapes_and_binds_names_and_values(gql: Any, store: Store) -> None:
    filter = {"did": {"metric": SNEAKY, "where": [{"property": SNEAKY, "op": "EQ", "value": SNEAKY}]}}
    text = (await gql.data(EXPLAIN, {"f": filter}))["explain"]
    statements = text.split("\n\n")
    assert [s.splitlines()[0] for s in statements] == [
        "-- density probe before a first page: a dense audience walks",
        "-- pages in the set shape: a sparse audience's pages",
        "-- pages in the walk shape: a dense audience's pages, and later pages where walking is cheaper",
        "-- pages whose nodes select plain text fields (here `nodes { id }`): the database writes each node's JSON",
        "-- totalCount",
    ]
    for statement in statements:
        sql = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        assert "SELECT" in sql
        assert "DROP TABLE" not in sql  # metric name, property name and value are parameters
        assert "DROP TABLE" in statement.splitlines()[-1]  # … listed after the statement
    json_pages = statements[3]
    if store.dialect == "sqlite":
        assert "json_object(" in json_pages and "group_concat(" in json_pages
    else:
        assert "json_build_object(" in json_pages


async def test_explain_shows_a_complement_walking(gql: Any) -> None:
    text = (await gql.data(EXPLAIN, {"f": {"didNot": {"metric": "Placed Order"}}}))["explain"]
    assert [s.splitlines()[0] for s in text.split("\n\n")] == [
        "-- pages in the walk shape: every page of a complement",
        "-- pages whose nodes select plain text fields (here `nodes { id }`): the database writes each node's JSON",
        "-- totalCount",
    ]
    assert "EXISTS" in text.split("\n\n")[0]
