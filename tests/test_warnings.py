"""Warnings in `extensions.warnings`: a filter naming a metric with no events answers as before (nobody did
it) and says so, with the closest known metric names; the command line prints the same on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.config import Settings
from store import migrate
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, AUDIENCE, STARTED_NAME, before, event, iso, run_cli, track

MISSPELT = 'no event of metric "Placed Ordr" is stored, so no profile did it; did you mean "Placed Order"?'


def unknown(metric: str, path: list[Any], message: str, *did_you_mean: str) -> dict[str, Any]:
    return {"message": message, "path": path,
            "extensions": {"code": "UNKNOWN_METRIC", "metric": metric, "didYouMean": list(did_you_mean)}}


async def audience(gql: GraphQLClient, filter: dict[str, Any]) -> dict[str, Any]:
    return await gql(AUDIENCE, {"filter": filter, "asOf": iso(AS_OF)})


@pytest.fixture
async def ordered(gql: GraphQLClient) -> None:
    await track(gql, event("a@x", "Placed Order", before(days=1)), event("b@x", "Viewed Product", before(days=2)),
                event("b@x", "Order Refunded", before(days=2)))


async def test_a_misspelt_metric_answers_nobody_and_warns_with_the_closest_names(gql: GraphQLClient, ordered: None) -> None:
    body = await audience(gql, {"did": {"metric": "Placed Ordr"}})
    assert body["data"]["profiles"]["totalCount"] == 0 and "errors" not in body
    assert body["extensions"]["warnings"] == [unknown("Placed Ordr", ["profiles"], MISSPELT, "Placed Order")]
    # Its negation holds for everyone, and warns the same; a name close to nothing suggests nothing.
    body = await audience(gql, {"and": [{"didNot": {"metric": "Placed Ordr"}}, {"didNot": {"metric": "Qwerty"}}]})
    assert body["data"]["profiles"]["totalCount"] == 2
    assert body["extensions"]["warnings"] == [
        unknown("Placed Ordr", ["profiles"], MISSPELT, "Placed Order"),
        unknown("Qwerty", ["profiles"], 'no event of metric "Qwerty" is stored, so no profile did it')]


async def test_known_metrics_in_any_spelling_do_not_warn(gql: GraphQLClient, ordered: None) -> None:
    # Another case, a follow-up, the text language; and an agent metric is known before its first event.
    filters = [{"did": {"metric": "placed ORDER", "followedBy": {"metric": "Viewed Product", "withinHours": 2}}},
               {"expression": 'did "Viewed Product" and not did "ORDER refunded"'},
               {"did": {"metric": STARTED_NAME}}, {"did": {"metric": "STARTED_CONVERSATION"}}]
    for filter in filters:
        body = await audience(gql, filter)
        assert "errors" not in body and "warnings" not in body.get("extensions", {}), (filter, body)


async def test_every_audience_field_warns_at_its_path(gql: GraphQLClient, ordered: None) -> None:
    expression = 'did "Viewed Product" followed by "Placed Ordr" within 2 hours'
    created = await gql("""mutation($f: SegmentFilter!) { createSegment(input: {name: "s", filter: $f}) { id } }""",
                        {"f": {"expression": expression}})
    assert created["extensions"]["warnings"] == [unknown("Placed Ordr", ["createSegment"], MISSPELT, "Placed Order")]
    segment_id = created["data"]["createSegment"]["id"]
    renamed = await gql("""mutation($id: ID!) { updateSegment(id: $id, input: {name: "t"}) { id } }""", {"id": segment_id})
    assert "warnings" not in renamed.get("extensions", {})  # the filter did not change

    read = await gql("""query($id: ID!, $f: SegmentFilter!) {
      segment(id: $id) { count members { totalCount } }
      explain(filter: $f)
      inside: profiles(filter: {inSegment: $id}) { totalCount }
    }""", {"id": segment_id, "f": {"did": {"metric": "Placed Ordr"}}})
    assert "errors" not in read
    # One per field, in the order the fields resolved.
    assert sorted(warning["path"] for warning in read["extensions"]["warnings"]) == [
        ["explain"], ["inside"], ["segment", "count"], ["segment", "members"]]
    # Later events make the metric known: no warning any more.
    await track(gql, event("c@x", "Placed Ordr", before(days=1)))
    body = await audience(gql, {"did": {"metric": "Placed Ordr"}})
    assert body["data"]["profiles"]["totalCount"] == 1 and "extensions" not in body


async def test_count_and_export_print_the_warning_on_stderr(store_url: str, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    store = Store(store_url)
    await migrate.prepare(store)
    app = create_app(Settings(database_url=store_url), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        await track(gql, event("a@x", "Placed Order", before(days=1)))
        created = await gql.data('mutation { createSegment(input: {name: "s", filter: {did: {metric: "Placed Ordr"}}}) { id } }')
    await store.dispose()

    assert await run_cli("count", 'did "Placed Ordr"', "--database-url", store_url) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("0\n", f"warning: {MISSPELT}\n")
    output = tmp_path / "members.csv"
    assert await run_cli("export", "--segment", created["createSegment"]["id"], "--output", str(output),
                         "--database-url", store_url) == 0
    assert capsys.readouterr().err.startswith(f"warning: {MISSPELT}\nexported 0 members")
