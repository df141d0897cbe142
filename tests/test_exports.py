"""Segment exports for campaign tools: GET /segments/{id}/members.csv|.ndjson and `segmentql export|count`."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import resolvers.exports
from resolvers.audiences import Paging
from resolvers.exports import prepare_export
from resolvers.page_plan import PagePolicy
from server.app import create_app
from server.config import Settings
from store import migrate
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, before, event, iso, record_page_shapes, run_cli, track

HEADER = ["id", "email", "phone_number", "external_id", "first_name", "last_name"]
CREATE = """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"""
UPSERT = """mutation($input: ProfileInput!) { upsertProfile(input: $input) { id } }"""
SEGMENT = """query($id: ID!, $asOf: DateTime, $after: String) {
  segment(id: $id) {
    count(asOf: $asOf)
    members(first: 1000, after: $after, asOf: $asOf) {
      nodes { id email phoneNumber externalId firstName lastName }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""
ORDERED = {"did": {"metric": "Placed Order"}}


async def create_segment(gql: GraphQLClient, filter: dict[str, Any], name: str = "s") -> str:
    data = await gql.data(CREATE, {"input": {"name": name, "filter": filter}})
    return str(data["createSegment"]["id"])


async def graphql_members(gql: GraphQLClient, segment_id: str, as_of: str) -> tuple[int, list[dict[str, Any]]]:
    """Segment.count and every Segment.members node (all pages), both at `as_of`."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        segment = (await gql.data(SEGMENT, {"id": segment_id, "asOf": as_of, "after": after}))["segment"]
        nodes += segment["members"]["nodes"]
        if not segment["members"]["pageInfo"]["hasNextPage"]:
            return segment["count"], nodes
        after = segment["members"]["pageInfo"]["endCursor"]


def as_row(node: dict[str, Any]) -> list[str]:
    """A GraphQL Profile node as the CSV row the export writes (null: empty field)."""
    keys = ["id", "email", "phoneNumber", "externalId", "firstName", "lastName"]
    return [node[key] or "" for key in keys]


def csv_rows(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


def ndjson_objects(body: bytes) -> list[dict[str, Any]]:
    assert body == b"" or body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


async def seed_shoppers(gql: GraphQLClient) -> None:
    """Five who ordered before AS_OF (names that need CSV quoting), one only viewed, one ordered after AS_OF."""
    people = [
        {"email": "ada@x", "phoneNumber": "+15550001", "externalId": "crm-1", "firstName": "Ada", "lastName": "Lovelace"},
        {"email": "comma@x", "firstName": "Smith, Jr.", "lastName": 'The "Quoted" One'},
        {"email": "lines@x", "firstName": "two\nlines", "lastName": "Zoë 🛍"},
        {"email": "viewer@x", "firstName": "Only", "lastName": "Looked"},
    ]
    for person in people:
        await gql.data(UPSERT, {"input": person})
    await track(
        gql,
        event("ada@x", "Placed Order", before(days=3)),
        event("comma@x", "Placed Order", before(hours=5)),
        event("lines@x", "Placed Order", before(days=40)),
        event("bare@x", "Placed Order", before(minutes=1)),
        event("viewer@x", "Viewed Product", before(hours=2)),
        event("late@x", "Placed Order", iso(AS_OF + timedelta(hours=1))),
        event("phone-only@x", "Placed Order", before(days=1)),
    )


async def test_csv_export_has_exactly_the_segment_members_in_id_order(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, ORDERED)

    response = await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(AS_OF)})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="segment-{segment_id}-members.csv"'
    rows = csv_rows(response)
    count, nodes = await graphql_members(gql, segment_id, iso(AS_OF))
    assert rows[0] == HEADER
    assert len(rows) - 1 == count == 5
    assert rows[1:] == [as_row(node) for node in nodes]
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids)
    emails = {row[1] for row in rows[1:]}
    assert emails == {"ada@x", "comma@x", "lines@x", "bare@x", "phone-only@x"}
    by_email = {row[1]: row for row in rows[1:]}
    assert by_email["ada@x"][2:] == ["+15550001", "crm-1", "Ada", "Lovelace"]
    assert by_email["comma@x"][4:] == ["Smith, Jr.", 'The "Quoted" One']
    assert by_email["lines@x"][4:] == ["two\nlines", "Zoë 🛍"]
    assert by_email["bare@x"][2:] == ["", "", "", ""]


async def test_ndjson_export_has_the_same_members_as_json_lines(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, ORDERED)

    response = await client.get(f"/segments/{segment_id}/members.ndjson", params={"asOf": iso(AS_OF)})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == f'attachment; filename="segment-{segment_id}-members.ndjson"'
    objects = ndjson_objects(response.content)
    count, nodes = await graphql_members(gql, segment_id, iso(AS_OF))
    assert len(objects) == count == 5
    assert all(list(obj) == HEADER for obj in objects)
    assert [obj["id"] for obj in objects] == [node["id"] for node in nodes]  # strings, as Profile.id
    assert objects == [
        {"id": n["id"], "email": n["email"], "phone_number": n["phoneNumber"], "external_id": n["externalId"],
         "first_name": n["firstName"], "last_name": n["lastName"]}
        for n in nodes
    ]
    assert next(obj for obj in objects if obj["email"] == "bare@x")["first_name"] is None


async def test_as_of_is_respected_and_defaults_to_now(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, ORDERED)

    at_as_of = csv_rows(await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(AS_OF)}))
    assert "late@x" not in {row[1] for row in at_as_of}  # its only order is an hour after asOf

    later = AS_OF + timedelta(hours=2)
    after_it = csv_rows(await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(later)}))
    assert "late@x" in {row[1] for row in after_it}
    assert len(after_it) - 1 == (await graphql_members(gql, segment_id, iso(later)))[0] == 6

    # The same instant with another offset, and with its '+' left unencoded in the URL (it arrives as a space).
    shifted = iso((AS_OF + timedelta(hours=2)).astimezone(AS_OF.tzinfo)).replace("+00:00", "Z")
    assert csv_rows(await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": shifted})) == after_it
    raw = f"/segments/{segment_id}/members.csv?asOf=2026-11-20T16:00:00+02:00"
    response = await client.get(raw)
    assert response.status_code == 200, response.text
    assert response.headers["x-segmentql-as-of"] == "2026-11-20T14:00:00+00:00"
    assert csv_rows(response) == after_it

    # Without asOf: now, which is later than every event tracked here.
    now = await client.get(f"/segments/{segment_id}/members.csv")
    assert now.status_code == 200
    assert {row[1] for row in csv_rows(now)[1:]} == {row[1] for row in after_it[1:]}


async def test_unknown_segment_is_404_shaped_like_a_graphql_error(client: httpx.AsyncClient) -> None:
    for path in ("/segments/999/members.csv", "/segments/999/members.ndjson", "/segments/abc/members.csv"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert list(body) == ["errors"]
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert "no segment" in error["message"]


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01T00:00:00Z", "2026-11", ""])
async def test_bad_as_of_is_400_shaped_like_a_graphql_error(
    client: httpx.AsyncClient, gql: GraphQLClient, as_of: str
) -> None:
    segment_id = await create_segment(gql, ORDERED)
    for kind in ("csv", "ndjson"):
        response = await client.get(f"/segments/{segment_id}/members.{kind}", params={"asOf": as_of})
        assert response.status_code == 400, response.text
        body = response.json()
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "asOf" in error["message"]


async def test_a_segment_without_members_gives_just_the_header(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, {"did": {"metric": "Never Happened"}})

    response = await client.get(f"/segments/{segment_id}/members.csv", params={"asOf": iso(AS_OF)})
    assert response.status_code == 200
    assert response.content == b"id,email,phone_number,external_id,first_name,last_name\r\n"

    response = await client.get(f"/segments/{segment_id}/members.ndjson", params={"asOf": iso(AS_OF)})
    assert response.status_code == 200
    assert response.content == b""


async def exported_csv(store: Store, segment_id: str, policy: PagePolicy) -> tuple[list[list[str]], int]:
    """The rows of a CSV export run with `policy`, and how many chunks its members came in."""
    export = await prepare_export(store, segment_id, "csv", iso(AS_OF), Paging(policy=policy))
    chunks = [chunk async for chunk in export.chunks()]
    return csv_rows(httpx.Response(200, content=b"".join(chunks))), len(chunks) - 1  # less the header


@pytest.mark.parametrize(("page_size", "chunks", "walk_density", "walks"), [
    (7, 5, 2.0, False), (10, 3, 0.0, True), (30, 1, 0.5, True), (1000, 1, 0.7, False),
])
async def test_the_export_streams_one_statement_in_chunks_without_skipping_or_repeating(
    client: httpx.AsyncClient, gql: GraphQLClient, store: Store, monkeypatch: pytest.MonkeyPatch, page_size: int,
    chunks: int, walk_density: float, walks: bool,
) -> None:
    """Either shape (the probe finds 30 of 45 profiles members: 0.67), chunked or not, gives every member once."""
    # 30 members among 45 profiles, interleaved so that pages skip over non-members.
    events = [
        event(f"p{i:02d}@x", "Placed Order" if i % 3 else "Viewed Product", before(hours=i + 1)) for i in range(45)
    ]
    await track(gql, *events)
    ordered = await create_segment(gql, ORDERED, "ordered")
    did_not = await create_segment(gql, {"didNot": {"metric": "Placed Order"}}, "did not order")
    policy = PagePolicy(export_chunk=page_size, walk_density=walk_density)
    shapes = record_page_shapes(monkeypatch, resolvers.exports)

    rows, chunked = await exported_csv(store, ordered, policy)
    count, nodes = await graphql_members(gql, ordered, iso(AS_OF))
    assert count == 30
    assert len(shapes) == 1 and shapes == [walks]  # one statement
    assert chunked == chunks
    assert rows[1:] == [as_row(node) for node in nodes]
    ids = [int(row[0]) for row in rows[1:]]
    assert len(set(ids)) == len(ids) == 30
    assert ids == sorted(ids)

    # A complement ("didn't"): the 15 others, also across pages.
    objects = ndjson_objects((await client.get(f"/segments/{did_not}/members.ndjson",
                                               params={"asOf": iso(AS_OF)})).content)
    count, nodes = await graphql_members(gql, did_not, iso(AS_OF))
    assert [obj["id"] for obj in objects] == [node["id"] for node in nodes]
    assert len(objects) == count == 15
    assert {obj["email"] for obj in objects} == {f"p{i:02d}@x" for i in range(0, 45, 3)}


@pytest.mark.parametrize(("sample", "walks"), [(10, False), (45, True), (1000, True)])
async def test_the_density_probe_looks_at_the_first_profiles_only(
    gql: GraphQLClient, store: Store, monkeypatch: pytest.MonkeyPatch, sample: int, walks: bool
) -> None:
    """Members are 6 of the first 10 profiles but 30 of all 45: a 0.65 threshold walks only past the first 10."""
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i % 3 else "Viewed Product", before(hours=i + 1))
                       for i in range(45)))
    ordered = await create_segment(gql, ORDERED, "ordered")
    shapes = record_page_shapes(monkeypatch, resolvers.exports)
    rows, _ = await exported_csv(store, ordered, PagePolicy(export_density_sample=sample, walk_density=0.65))
    assert len(rows) - 1 == 30 and shapes == [walks]


# ---------------------------------------------------------------- the command line


@pytest.fixture
async def url_store(store_url: str) -> AsyncIterator[Store]:
    """A store of each kind that its URL alone names, as the command line opens it."""
    store = Store(store_url)
    await migrate.prepare(store)
    yield store
    await store.dispose()


@pytest.fixture
async def url_client(url_store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=url_store.url), store=url_store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


async def test_cli_export_writes_the_same_file_as_the_http_export(
    url_store: Store, url_client: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gql = GraphQLClient(url_client)
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, ORDERED)
    url = url_store.url

    for kind in ("csv", "ndjson"):
        output = tmp_path / f"members.{kind}"
        code = await run_cli("export", "--segment", segment_id, "--format", kind, "--output", str(output),
                             "--as-of", iso(AS_OF), "--database-url", url)
        err = capsys.readouterr().err
        assert code == 0, err
        http = await url_client.get(f"/segments/{segment_id}/members.{kind}", params={"asOf": iso(AS_OF)})
        assert output.read_bytes() == http.content
        # One summary line on stderr: the five members, the segment, the instant (as the HTTP export's
        # X-SegmentQL-As-Of header writes it) and the file.
        assert http.headers["X-SegmentQL-As-Of"] == "2026-11-20T12:00:00+00:00"
        assert err == f"exported 5 members of segment {segment_id} at 2026-11-20T12:00:00+00:00 to {output}\n"
    assert len(csv.reader(io.StringIO((tmp_path / "members.csv").read_text(), newline="")).__next__()) == 6

    capsys.readouterr()
    code = await run_cli("export", "--segment", segment_id, "--format", "ndjson", "--as-of", iso(AS_OF),
                         "--database-url", url)
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.encode() == (tmp_path / "members.ndjson").read_bytes()  # stdout without --output
    # No progress bar when stderr is not a terminal: only the summary line.
    assert captured.err == f"exported 5 members of segment {segment_id} at 2026-11-20T12:00:00+00:00 to standard output\n"


async def test_cli_export_refuses_unknown_segments_and_bad_times(
    url_store: Store, url_client: httpx.AsyncClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gql = GraphQLClient(url_client)
    segment_id = await create_segment(gql, ORDERED)
    output = tmp_path / "out.csv"

    assert await run_cli("export", "--segment", "999", "--output", str(output), "--database-url", url_store.url) == 1
    assert "no segment" in capsys.readouterr().err
    assert not output.exists()

    code = await run_cli("export", "--segment", segment_id, "--as-of", "soon", "--database-url", url_store.url)
    assert code == 2
    assert "asOf is not an ISO 8601 datetime" in capsys.readouterr().err

    missing = tmp_path / "missing.db"
    code = await run_cli("export", "--segment", segment_id, "--database-url", f"sqlite+aiosqlite:///{missing}")
    assert code == 1
    assert "no SQLite store" in capsys.readouterr().err
    assert not missing.exists()


async def test_cli_count_counts_a_text_expression(
    url_store: Store, url_client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    gql = GraphQLClient(url_client)
    await seed_shoppers(gql)
    segment_id = await create_segment(gql, ORDERED)
    url = url_store.url

    assert await run_cli("count", 'did "Placed Order"', "--as-of", iso(AS_OF), "--database-url", url) == 0
    assert capsys.readouterr().out == "5\n"
    expression = f'in segment "{segment_id}" and not did "placed order" in the last 2 days'
    assert await run_cli("count", expression, "--as-of", iso(AS_OF), "--database-url", url) == 0
    assert capsys.readouterr().out == "2\n"  # lines@x (40 days ago) and ada@x (3 days ago)
    assert await run_cli("count", "profile email starts with \"a\" or didn't \"Placed Order\"",
                         "--as-of", iso(AS_OF), "--database-url", url) == 0
    assert capsys.readouterr().out == "3\n"  # ada@x, viewer@x and late@x (ordered only after asOf)


async def test_cli_count_reports_a_syntax_error_with_line_and_column(
    url_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_cli("count", 'did "Placed Order"\n  at lest 2 times', "--database-url", url_store.url)
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 2, column 6" in captured.err
    assert "expected" in captured.err

    code = await run_cli("count", 'in segment "404"', "--database-url", url_store.url)
    assert code == 2
    assert "no saved segment" in capsys.readouterr().err
