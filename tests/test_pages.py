"""Audience pages over GraphQL: the first page's shape follows the audience's density, every member comes once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from graphql import GraphQLID, GraphQLObjectType, GraphQLString, get_named_type

import resolvers.audiences
from resolvers.audiences import PROFILE_CURSOR, Paging, compile_filter, walks_from_the_start
from resolvers.compiler import Audience
from resolvers.cursors import decode_cursor
from resolvers.page_plan import PagePolicy
from server.app import create_app
from server.config import Settings
from store.engine import Store
from store.prefetch import Prefetches
from store.tables import profiles
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, before, event, iso, track

PAGES = """query($f: SegmentFilter!, $after: String, $asOf: DateTime) {
  profiles(filter: $f, first: 4, after: $after, asOf: $asOf) { nodes { email } pageInfo { hasNextPage endCursor } }
}"""
ORDERED = {"did": {"metric": "Placed Order"}}


async def paged_nodes(gql: Any, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of `query`'s `profiles` pages, following the cursors."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql.data(query, {**variables, "after": after}))["profiles"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def paged_emails(gql: Any, filter: dict[str, Any]) -> list[str]:
    return [node["email"] for node in await paged_nodes(gql, PAGES, {"f": filter, "asOf": iso(AS_OF)})]


@pytest.fixture
def columns_read(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The columns each page asked profile_row for (None: all)."""
    read: list[Any] = []
    real = resolvers.audiences.profile_row
    monkeypatch.setattr(resolvers.audiences, "profile_row", lambda columns: read.append(columns) or real(columns))
    return read


@pytest.fixture
def nodes_as_json(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The (key, column) pairs of each page whose nodes the database wrote as JSON."""
    written: list[Any] = []
    real = resolvers.audiences.profile_json
    monkeypatch.setattr(resolvers.audiences, "profile_json",
                        lambda dialect, fields, type_name: written.append(fields) or real(dialect, fields, type_name))
    return written


async def ordered_audience(store: Store) -> Audience:
    return await compile_filter(store, ORDERED, AS_OF, ())


async def next_shapes(gql: Any, filter: dict[str, Any]) -> tuple[list[str], list[bool]]:
    """The members, page after page, and whether each page after the first walks, as its cursor says."""
    emails, walked = [], []
    after = None
    while True:
        page = (await gql.data(PAGES, {"f": filter, "asOf": iso(AS_OF), "after": after}))["profiles"]
        emails += [node["email"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return emails, walked
        after = page["pageInfo"]["endCursor"]
        walked.append(decode_cursor(after, PROFILE_CURSOR, int, int)[1] > 0)


@pytest.fixture
def gql_with(store: Store) -> Callable[[PagePolicy], AbstractAsyncContextManager[GraphQLClient]]:
    """A client of an app over `store` whose pages follow the given policy."""

    @contextlib.asynccontextmanager
    async def client(policy: PagePolicy) -> AsyncIterator[GraphQLClient]:
        app = create_app(Settings(database_url=store.url), store=store, paging=Paging(policy=policy))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            yield GraphQLClient(http)

    return client


@pytest.mark.parametrize(("ordering", "first_walks"), [
    (range(0, 20, 5), False),  # 4 of 20: a fifth of the profiles, below the walk density
    (range(0, 20, 2), True),  # 10 of 20
    (range(20), True),
])
async def test_a_first_page_walks_when_the_audience_is_dense(
    gql: Any, store: Store, ordering: range, first_walks: bool
) -> None:
    ordered = set(ordering)
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i in ordered else "Viewed Product", before(hours=i + 1))
                       for i in range(20)))
    policy = PagePolicy()
    assert await walks_from_the_start(store, await ordered_audience(store), policy.page_density_sample, policy) is first_walks
    emails, later_walks = await next_shapes(gql, ORDERED)
    assert emails == [f"p{i:02d}@x" for i in sorted(ordered)]
    if first_walks:  # a dense audience's later pages walk too: each costs a page
        assert later_walks and all(later_walks)


async def test_the_density_sample_is_the_first_profiles(gql: Any, store: Store) -> None:
    """Members are the first 6 profiles of 20: a sample of 6 finds them dense, a sample of 20 does not."""
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i < 6 else "Viewed Product", before(hours=i + 1))
                       for i in range(20)))
    audience = await ordered_audience(store)
    half = PagePolicy(walk_density=0.5)
    assert await walks_from_the_start(store, audience, 6, half)
    assert not await walks_from_the_start(store, audience, 20, half)


async def test_a_complement_walks_without_sampling(gql: Any, store: Store) -> None:
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i % 4 else "Viewed Product", before(hours=i + 1))
                       for i in range(20)))
    complement = await compile_filter(store, {"didNot": ORDERED["did"]}, AS_OF, ())
    assert await walks_from_the_start(store, complement, 0, PagePolicy(walk_density=2.0))  # no sample could say so
    emails, later_walks = await next_shapes(gql, {"didNot": ORDERED["did"]})
    assert emails == [f"p{i:02d}@x" for i in range(0, 20, 4)]
    assert later_walks and all(later_walks)


async def test_walking_pages_turn_to_the_set_shape_where_members_thin_out(gql: Any, gql_with: Any) -> None:
    """The first 6 of 40 profiles are members, then 4 more far apart: the sample says walk, page 2 finds
    4 members over 34 profiles (below the walk density) and page 3 takes the set shape."""
    members = [*range(6), 29, 37, 38, 39]
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i in members else "Viewed Product", before(hours=i + 1))
                       for i in range(40)))
    async with gql_with(PagePolicy(page_density_sample=6)) as sampled:
        assert await next_shapes(sampled, ORDERED) == ([f"p{i:02d}@x" for i in members], [True, False])


@pytest.mark.parametrize(("seconds_per_profile", "later_pages_walk"), [(1e-12, True), (1.0, False)])
async def test_set_pages_turn_to_walking_when_walking_is_cheaper_and_stay(
    gql: Any, gql_with: Any, seconds_per_profile: float, later_pages_walk: bool
) -> None:
    """A fifth of 60 profiles are members: the sample says the set shape. Where walking a page's span
    costs less than that set-shape page took, the next pages walk, however sparse (no return to the
    set shape while walking stays cheaper); where it costs more, they keep the set shape."""
    members = list(range(0, 60, 5))
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i in members else "Viewed Product", before(hours=i + 1))
                       for i in range(60)))
    async with gql_with(PagePolicy(walk_seconds_per_profile=seconds_per_profile)) as timed:
        assert await next_shapes(timed, ORDERED) == ([f"p{i:02d}@x" for i in members], [later_pages_walk] * 2)


SELECTIONS = {
    "nodes": "nodes { email createdAt }",
    "edges and fragments": "edges { cursor node { ...Names ... on Profile { properties } } }",
    "aliases and times": "nodes { mail: email createdAt updatedAt __typename id }",
    "no profiles": "totalCount",
}
NAMES = "fragment Names on Profile { firstName lastName }"
# What each selection reads besides the id, as profile_row names them.
EXPECTED_COLUMNS = {
    "nodes": {"email", "created_at"},
    "edges and fragments": {"first_name", "last_name", "properties"},
    "aliases and times": {"email", "created_at", "updated_at"},
    "no profiles": set(),
}


@pytest.mark.parametrize("name", SELECTIONS)
async def test_a_page_reads_only_the_columns_its_selection_needs(gql: Any, columns_read: list[Any], name: str) -> None:
    await gql.data('mutation { upsertProfile(input: {email: "a@x", firstName: "Ann", lastName: "Lee", '
                   'properties: {plan: "pro"}}) { id } }')
    fragments = NAMES if "...Names" in SELECTIONS[name] else ""
    page = (await gql.data(f"query {{ profiles(first: 5) {{ {SELECTIONS[name]} }} }} {fragments}"))["profiles"]
    assert columns_read == [EXPECTED_COLUMNS[name]]
    if name == "edges and fragments":
        assert page["edges"][0]["node"] == {"firstName": "Ann", "lastName": "Lee", "properties": {"plan": "pro"}}
    if name == "aliases and times":
        node = page["nodes"][0]
        assert node["mail"] == "a@x" and node["createdAt"] and node["updatedAt"] and node["__typename"] == "Profile"


async def test_a_page_reads_every_column_for_a_field_it_does_not_know(
    gql: Any, columns_read: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Profile field missing from the map (one added later, say) makes the page read everything."""
    from schema import types

    await gql.data('mutation { upsertProfile(input: {email: "a@x", lastName: "Lee"}) { id } }')
    monkeypatch.delitem(types.PROFILE_FIELD_COLUMNS, "lastName")
    page = (await gql.data("{ profiles(first: 5) { edges { node { email lastName } } } }"))["profiles"]
    assert columns_read == [None]
    assert page["edges"] == [{"node": {"email": "a@x", "lastName": "Lee"}}]


# Text JSON writers disagree on: escapes, control characters, non-ASCII, characters JavaScript treats as line ends.
AWKWARD_NAMES = ["plain", 'a "quote" and a \\ backslash', "line\nbreak\ttab\x01\x1f\x7f", "ünïcödé — 漢字 🛒",
                 "</script>", "", "\u2028\u2029", "   "]
JSON_NODES = "nodes { id email name: firstName lastName phoneNumber externalId __typename }"
UPSERT = "mutation($input: ProfileInput!) { upsertProfile(input: $input) { id } }"


async def test_plain_nodes_are_written_by_the_database_as_graphql_would_write_them(
    gql: Any, nodes_as_json: list[Any]
) -> None:
    for i, name in enumerate(AWKWARD_NAMES):
        await gql.data(UPSERT, {"input": {"email": f"p{i}@x", "firstName": name, "phoneNumber": f"+1555000{i:04d}"}})
    written = (await gql.data(f"{{ profiles(first: 50) {{ {JSON_NODES} pageInfo {{ endCursor }} totalCount }} }}"))
    assert nodes_as_json == [(("id", "id"), ("email", "email"), ("name", "first_name"), ("lastName", "last_name"),
                              ("phoneNumber", "phone_number"), ("externalId", "external_id"), ("__typename", None))]
    built = await gql.data(f"{{ profiles(first: 50) {{ edges {{ node {{ {JSON_NODES[len('nodes { '):-2]} }} }} }} }}")
    nodes = written["profiles"]["nodes"]
    assert nodes == [edge["node"] for edge in built["profiles"]["edges"]]
    assert [node["name"] for node in nodes] == AWKWARD_NAMES
    assert list(nodes[0]) == ["id", "email", "name", "lastName", "phoneNumber", "externalId", "__typename"]
    assert nodes[0]["lastName"] is None and nodes[0]["__typename"] == "Profile" and isinstance(nodes[0]["id"], str)
    assert written["profiles"]["totalCount"] == len(AWKWARD_NAMES)
    # Pages of 2: each page's text is cut before the next page's first node (SQLite aggregates first + 1).
    pages_of_two = (f"query($after: String) {{ profiles(first: 2, after: $after) {{ {JSON_NODES} "
                    "pageInfo { hasNextPage endCursor } } }")
    assert await paged_nodes(gql, pages_of_two, {}) == nodes


@pytest.mark.parametrize("selection", [
    "nodes { email @include(if: true) }",
    "nodes { ... on Profile { email } }",
    "... on ProfileConnection { nodes { email } }",
    "nodes { email } edges { cursor }",
    "nodes { email createdAt }",
    "nodes { email } again: nodes { email }",
    "nodes { email same: email same: email }",
])
async def test_other_node_selections_build_profile_objects(gql: Any, nodes_as_json: list[Any], selection: str) -> None:
    await gql.data(UPSERT, {"input": {"email": "a@x"}})
    page = (await gql.data(f"{{ profiles(first: 5) {{ {selection} }} }}"))["profiles"]
    assert nodes_as_json == []
    assert page["nodes"][0]["email"] == "a@x"


@pytest.fixture
def prefetched(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each page that looked for a read started ahead, whether it found one."""
    found: list[bool] = []
    real = Prefetches.take

    def take(self: Prefetches[Any], key: Any, generation: int) -> Any:
        task = real(self, key, generation)
        found.append(task is not None)
        return task

    monkeypatch.setattr(Prefetches, "take", take)
    return found


async def test_pages_after_a_cursor_at_an_explicit_instant_read_the_next_page_while_they_are_sent(
    gql: Any, prefetched: list[bool]
) -> None:
    """A first page reads nothing ahead (many clients want only it); page 2 reads page 3 ahead."""
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order", before(hours=i + 1)) for i in range(10)))
    assert await paged_emails(gql, ORDERED) == [f"p{i:02d}@x" for i in range(10)]
    assert prefetched == [False, False, True]  # pages of 4, 4 and 2


async def test_pages_as_of_now_are_not_read_ahead(gql: Any, store: Store) -> None:
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order", before(hours=i + 1)) for i in range(10)))
    query = """query($f: SegmentFilter!, $after: String) {
      profiles(filter: $f, first: 4, after: $after) { nodes { email } pageInfo { endCursor } } }"""
    first = (await gql.data(query, {"f": ORDERED}))["profiles"]
    second = (await gql.data(query, {"f": ORDERED, "after": first["pageInfo"]["endCursor"]}))["profiles"]
    assert len(second["nodes"]) == 4 and store.prefetches.pending() == []


@pytest.mark.parametrize("write", ["trackEvents", "updateSegment"])
async def test_a_write_between_pages_is_seen_by_the_next_page(
    gql: Any, store: Store, prefetched: list[bool], write: str
) -> None:
    """Page 3 was read ahead before the write; the write makes that read stale, and page 3 is read again."""
    members = [0, 1, 3, 5, 6, 8]
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order" if i in members else "Viewed Product", before(hours=i + 1))
                       for i in range(10)))
    segment = (await gql.data('mutation { createSegment(input: {name: "buyers", filter: {did: {metric: "Placed Order"}}}) '
                              "{ id } }"))["createSegment"]["id"]
    query = """query($f: SegmentFilter!, $after: String, $asOf: DateTime) {
      profiles(filter: $f, first: 2, after: $after, asOf: $asOf) { nodes { email } pageInfo { endCursor } } }"""
    variables = {"f": {"inSegment": segment}, "asOf": iso(AS_OF)}
    after = None
    for expected in (["p00@x", "p01@x"], ["p03@x", "p05@x"]):
        page = (await gql.data(query, {**variables, "after": after}))["profiles"]
        assert [node["email"] for node in page["nodes"]] == expected
        after = page["pageInfo"]["endCursor"]
    ahead = store.prefetches.pending()
    assert len(ahead) == 1
    await asyncio.wait(ahead)  # page 3 has been read: [p06, p08]
    if write == "trackEvents":
        await track(gql, event("p07@x", "Placed Order", before(hours=30)))
        expected = ["p06@x", "p07@x"]
    else:
        await gql.data("mutation($id: ID!) { updateSegment(id: $id, input: {filter: {did: {metric: \"Viewed Product\"}}}) "
                       "{ id } }", {"id": segment})
        expected = ["p07@x", "p09@x"]
    third = (await gql.data(query, {**variables, "after": after}))["profiles"]
    assert [node["email"] for node in third["nodes"]] == expected
    assert prefetched == [False, False, False]


async def test_an_audience_at_an_explicit_instant_is_compiled_once_for_all_its_pages(
    gql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[Any] = []
    real = resolvers.audiences.compile_prepared
    monkeypatch.setattr(resolvers.audiences, "compile_prepared", lambda *args: compiled.append(args[1]) or real(*args))
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order", before(hours=i + 1)) for i in range(10)))
    assert len(await paged_emails(gql, ORDERED)) == 10
    assert len(compiled) == 1
    await gql.data("{ profiles(first: 4) { nodes { email } } }")  # as of now: compiled each time
    await gql.data("{ profiles(first: 4) { nodes { email } } }")
    assert len(compiled) == 3


async def test_a_page_sqlite_aggregated_out_of_id_order_is_read_again_row_by_row(
    gql: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite promises no order to group_concat: nodes aggregated out of order must not reach a client."""
    if store.dialect != "sqlite":
        pytest.skip("only SQLite pages aggregate their nodes")
    real = resolvers.audiences.aggregated_page_statement
    monkeypatch.setattr(resolvers.audiences, "aggregated_page_statement",
                        lambda members: real(members.order_by(None).order_by(profiles.c.id.desc())))
    await track(gql, *(event(f"p{i:02d}@x", "Placed Order", before(hours=i + 1)) for i in range(10)))
    assert await paged_emails(gql, ORDERED) == [f"p{i:02d}@x" for i in range(10)]


def test_the_fields_written_as_json_are_plain_text_attributes_of_profile() -> None:
    """What the database writes for a field must be what GraphQL would answer: the field reads its
    attribute as it is (no resolver of its own) and is an ID or a String."""
    from schema import build_schema, types

    profile = build_schema()._schema.get_type("Profile")
    assert isinstance(profile, GraphQLObjectType)
    for name, column in types.PROFILE_JSON_FIELDS.items():
        if column is None:
            assert name == "__typename"
            continue
        field = profile.fields[name]
        assert getattr(field.resolve, "_is_default", False), name
        assert get_named_type(field.type) in (GraphQLID, GraphQLString), name
        assert types.PROFILE_FIELD_COLUMNS[name] in ((), (column,)), name


@pytest.mark.parametrize(("ids", "lengths", "nodes"), [
    ("1,3,2", "8,8,8", '{"id":1},{"id":3},{"id":2}'),  # out of id order
    ("1,2,3", "8,8,8", '{"id":1},{"id":2},{"id":33}'),  # longer than the lengths say
    ("1,2,3", "8,8", '{"id":1},{"id":2},{"id":3}'),  # a length missing
])
def test_an_aggregated_page_that_does_not_hold_together_is_refused(ids: str, lengths: str, nodes: str) -> None:
    with pytest.raises(resolvers.audiences._Unaligned):
        resolvers.audiences._members([(ids, lengths, nodes)], 2, None, aggregated=True)
    assert resolvers.audiences._members([("1,2,3", "8,8,8", '{"id":1},{"id":2},{"id":3}')], 2, None, aggregated=True) == (
        [1, 2], [], '[{"id":1},{"id":2}]', True)
