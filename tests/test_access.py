"""API keys and scopes: every root field and export against every scope, open loopback mode, the key store, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from schema import schema
from server import auth, cli
from server.app import create_app
from server.config import Settings
from store.engine import Store
from store.tables import api_keys
from tests.helpers import AS_OF, iso, run_cli
from vocabulary.agent_metrics import AGENT_METRICS, STARTED

ROOT = Path(__file__).resolve().parents[1]
PLACED = {"metric": "Placed Order", "profile": {"email": "a@x"}, "occurredAt": iso(AS_OF)}
FILTER = {"did": {"metric": "Placed Order"}}

# One request per root field, each valid, with the scope it needs.
ROOT_FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("profile", auth.READ, 'query { profile(id: "1") { id } }', {}),
    ("profileByKey", auth.READ, 'query { profileByKey(key: {email: "a@x"}) { id } }', {}),
    ("profiles", auth.READ, "query { profiles(first: 5) { totalCount nodes { id } } }", {}),
    ("explain", auth.READ, "query($f: SegmentFilter!) { explain(filter: $f) }", {"f": FILTER}),
    ("explainMembership", auth.READ,
     'query($f: SegmentFilter!, $a: DateTime) { explainMembership(profile: "1", filter: $f, asOf: $a) { member } }',
     {"f": FILTER, "a": iso(AS_OF)}),
    ("audienceChanges", auth.READ, "query($f: SegmentFilter!, $s: DateTime!, $a: DateTime) { "
     "audienceChanges(filter: $f, since: $s, asOf: $a) { totalCount } }",
     {"f": FILTER, "s": iso(AS_OF - timedelta(days=1)), "a": iso(AS_OF)}),
    ("segment", auth.READ, 'query { segment(id: "1") { id } }', {}),
    ("segments", auth.READ, "query { segments { id } }", {}),
    ("conversation", auth.READ, 'query { conversation(id: "c1") { id } }', {}),
    ("conversations", auth.READ, "query { conversations { totalCount } }", {}),
    ("metrics", auth.READ, "query { metrics { name } }", {}),
    ("metric", auth.READ, 'query { metric(name: "Placed Order") { name } }', {}),
    ("events", auth.READ, "query { events(first: 5) { nodes { id } } }", {}),
    ("trackEvent", auth.TRACK, "mutation($e: TrackEventInput!) { trackEvent(input: $e) { id } }", {"e": PLACED}),
    ("trackEvents", auth.TRACK, "mutation($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted } }",
     {"e": [PLACED]}),
    ("upsertProfile", auth.TRACK, 'mutation { upsertProfile(input: {email: "b@x", firstName: "B"}) { id } }', {}),
    ("createSegment", auth.MANAGE, "mutation($f: SegmentFilter!) { createSegment(input: {name: \"s\", filter: $f}) { id } }",
     {"f": FILTER}),
    ("updateSegment", auth.MANAGE, 'mutation { updateSegment(id: "1", input: {name: "t"}) { id } }', {}),
    ("deleteSegment", auth.MANAGE, 'mutation { deleteSegment(id: "1") }', {}),
]

# What each field answers, with the scope it needs, over the store the `keys` fixture prepares: profile 1
# (a@x) with an order at AS_OF and conversation c1 an hour earlier, and segment 1. Nullable fields find
# what they look for: a null would pass for a field that failed to read anything.
AGENT_METRIC_NAMES = [{"name": m.name} for m in AGENT_METRICS]
EXPECTED_DATA: dict[str, Any] = {
    "profile": {"id": "1"},
    "profileByKey": {"id": "1"},
    "profiles": {"totalCount": 1, "nodes": [{"id": "1"}]},
    "explainMembership": {"member": True},
    "audienceChanges": {"totalCount": 1},
    "segment": {"id": "1"},
    "segments": [{"id": "1"}],
    "conversation": {"id": "c1"},
    "conversations": {"totalCount": 1},
    "metrics": [*AGENT_METRIC_NAMES, {"name": "Placed Order"}],
    "metric": {"name": "Placed Order"},
    "events": {"nodes": [{"id": "1"}, {"id": "2"}]},
    "trackEvent": {"id": "3"},
    "trackEvents": {"accepted": 1},
    "upsertProfile": {"id": "2"},
    "createSegment": {"id": "2"},
    "updateSegment": {"id": "1"},
    "deleteSegment": True,
}
STARTED_C1 = {"metric": STARTED.name, "profile": {"email": "a@x"}, "occurredAt": iso(AS_OF - timedelta(hours=1)),
              "properties": {"conversation_id": "c1"}}


class Keys:
    """Keys of each single scope, one of all scopes, and the HTTP client of an app that asks for them."""

    def __init__(self, http: httpx.AsyncClient, store: Store, by_scope: dict[str, str]) -> None:
        self.http = http
        self.store = store
        self.by_scope = by_scope

    def headers(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_scope[scope]}"}

    async def post(self, query: str, variables: dict[str, Any] | None = None, scope: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        sent = {**(self.headers(scope) if scope else {}), **(headers or {})}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)


@pytest.fixture
async def keys(store: Store) -> AsyncIterator[Keys]:
    by_scope = {scope: (await auth.create_key(store, scope, [scope]))[1] for scope in auth.SCOPES}
    by_scope["all"] = (await auth.create_key(store, "all", auth.SCOPES))[1]
    app = create_app(Settings(database_url=store.url, key_cache_seconds=0), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        # A segment with id 1 for the segment fields to find (created with the key that may).
        response = await Keys(http, store, by_scope).post(
            'mutation($f: SegmentFilter!) { createSegment(input: {name: "s1", filter: $f}) { id } }', {"f": FILTER}, "all")
        assert response.json()["data"]["createSegment"]["id"] == "1"
        tracked = await Keys(http, store, by_scope).post(
            "mutation($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted } }", {"e": [PLACED, STARTED_C1]}, "all")
        assert tracked.json() == {"data": {"trackEvents": {"accepted": 2}}}
        yield Keys(http, store, by_scope)


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code
    assert error["message"]
    return error


async def event_count(store: Store) -> int:
    async with store.connect() as connection:
        return int(await connection.scalar(sa.text("SELECT count(*) FROM events")))


@pytest.mark.parametrize(("field", "needed", "query", "variables"), ROOT_FIELDS, ids=[f[0] for f in ROOT_FIELDS])
async def test_each_root_field_needs_its_scope(keys: Keys, field: str, needed: str, query: str,
                                               variables: dict[str, Any]) -> None:
    for scope in auth.SCOPES:
        response = await keys.post(query, variables, scope)
        if scope == needed:
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body
            if field == "explain":
                assert body["data"][field].startswith("-- "), body
            else:
                assert body["data"] == {field: EXPECTED_DATA[field]}
        else:
            error = assert_refused(response, 403, "FORBIDDEN")
            assert needed in error["message"] and field in error["message"]
    assert (await keys.post(query, variables, "all")).status_code == 200
    assert_refused(await keys.post(query, variables), 401, "UNAUTHENTICATED")


async def test_every_mutation_has_a_scope() -> None:
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    assert set(mutation_type.fields) == set(auth.MUTATION_SCOPES)
    assert {f for f, scope, _, _ in ROOT_FIELDS} == set(mutation_type.fields) | set(schema._schema.query_type.fields)


async def test_a_mixed_request_runs_whole_or_not_at_all(keys: Keys) -> None:
    mixed = """mutation($e: [TrackEventInput!]!, $f: SegmentFilter!) {
      trackEvents(events: $e) { accepted }
      createSegment(input: {name: "x", filter: $f}) { id }
    }"""
    variables = {"e": [PLACED], "f": FILTER}
    error = assert_refused(await keys.post(mixed, variables, auth.TRACK), 403, "FORBIDDEN")
    assert "manage" in error["message"] and "createSegment" in error["message"]
    assert await event_count(keys.store) == 2  # the fixture's two: trackEvents did not run either
    assert_refused(await keys.post("query { metrics { name } segments { id } }", None, auth.TRACK), 403, "FORBIDDEN")
    both = await keys.post(mixed, variables, "all")
    assert both.json()["data"]["trackEvents"] == {"accepted": 1}


async def test_fragments_and_named_operations_are_checked(keys: Keys) -> None:
    spread = "query { ...Reads } fragment Reads on Query { metrics { name } }"
    assert_refused(await keys.post(spread, None, auth.TRACK), 403, "FORBIDDEN")
    inline = "mutation { ... on Mutation { deleteSegment(id: \"9\") } }"
    assert_refused(await keys.post(inline, None, auth.TRACK), 403, "FORBIDDEN")
    document = ("query Q { metrics { name } } "
                "mutation M($e: [TrackEventInput!]!) { trackEvents(events: $e) { accepted } }")
    named = {"query": document, "variables": {"e": [PLACED]}}
    as_m = await keys.http.post("/graphql", json={**named, "operationName": "M"}, headers=keys.headers(auth.TRACK))
    assert as_m.json()["data"]["trackEvents"] == {"accepted": 1}
    as_q = await keys.http.post("/graphql", json={**named, "operationName": "Q"}, headers=keys.headers(auth.TRACK))
    assert_refused(as_q, 403, "FORBIDDEN")
    # Without a name the operation is ambiguous: every operation of the document counts.
    assert_refused(await keys.http.post("/graphql", json=named, headers=keys.headers(auth.TRACK)), 403, "FORBIDDEN")
    typename = await keys.post("mutation { __typename }", None, auth.READ)
    assert typename.json() == {"data": {"__typename": "Mutation"}}


async def test_keys_are_checked_before_anything_else(keys: Keys) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer not-a-key"},
                    {"Authorization": "Bearer " + keys.by_scope["read"][:-1] + "x"},
                    {"Authorization": "Bearer sqk_00000000_" + "A" * 43}):
        response = await keys.http.post("/graphql", json={"query": "{ metrics { name } }"}, headers=headers)
        assert_refused(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == "Bearer"
    # A syntax error or a bad body from someone without a key is still a 401: nothing is parsed first.
    assert_refused(await keys.http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}),
                   401, "UNAUTHENTICATED")
    assert_refused(await keys.post("{ metrics {", None), 401, "UNAUTHENTICATED")
    # The scheme is case-insensitive.
    lower = await keys.post("{ metrics { name } }", headers={"Authorization": "bearer " + keys.by_scope["read"]})
    assert lower.status_code == 200


async def test_queries_by_get_need_read_and_graphiql_is_served_to_anyone(keys: Keys) -> None:
    page = await keys.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    params = {"query": "{ metrics { name } }"}
    assert_refused(await keys.http.get("/graphql", params=params), 401, "UNAUTHENTICATED")
    assert_refused(await keys.http.get("/graphql", params=params, headers=keys.headers(auth.TRACK)), 403, "FORBIDDEN")
    ok = await keys.http.get("/graphql", params=params, headers=keys.headers(auth.READ))
    assert ok.status_code == 200 and ok.json()["data"]["metrics"]


async def test_exports_need_read(keys: Keys) -> None:
    since = "?since=" + iso(AS_OF - timedelta(days=1)).replace("+", "%2B")
    for suffix in ("members.csv", "members.ndjson", "changes.ndjson" + since):
        path = f"/segments/1/{suffix}"
        assert_refused(await keys.http.get(path), 401, "UNAUTHENTICATED")
        assert_refused(await keys.http.get(path, headers={"Authorization": "Bearer nope"}), 401, "UNAUTHENTICATED")
        for scope in (auth.TRACK, auth.MANAGE):
            assert_refused(await keys.http.get(path, headers=keys.headers(scope)), 403, "FORBIDDEN")
        allowed = await keys.http.get(path, headers=keys.headers(auth.READ))
        assert allowed.status_code == 200, allowed.text
        # Access is checked before the segment is looked up: no key learns nothing about segment ids.
        assert_refused(await keys.http.get(f"/segments/404/{suffix}"), 401, "UNAUTHENTICATED")
        assert (await keys.http.get(f"/segments/404/{suffix}", headers=keys.headers(auth.READ))).status_code == 404


async def test_healthz_stays_open(keys: Keys) -> None:
    response = await keys.http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_revoked_keys_are_refused_and_the_last_revocation_closes_the_server(keys: Keys) -> None:
    assert (await keys.post("{ metrics { name } }", None, auth.READ)).status_code == 200
    revoked = await auth.revoke_key(keys.store, "read")  # by name
    assert [k.name for k in revoked] == ["read"] and revoked[0].revoked_at is not None
    assert_refused(await keys.post("{ metrics { name } }", None, auth.READ), 401, "UNAUTHENTICATED")
    for record in await auth.list_keys(keys.store):
        if record.revoked_at is None:
            await auth.revoke_key(keys.store, record.prefix)  # by prefix
    # No active key is open mode again, and the test client is a loopback client.
    assert (await keys.post("{ metrics { name } }")).status_code == 200


async def test_a_key_can_be_revoked_by_itself(store: Store) -> None:
    _, key = await auth.create_key(store, "pasted", ["read"])
    assert [k.name for k in await auth.revoke_key(store, key)] == ["pasted"]
    assert await auth.verify_key(store, key) is None
    assert await auth.revoke_key(store, key) == []


async def test_keys_are_stored_as_hashes(store: Store) -> None:
    record, key = await auth.create_key(store, "campaign tool", ["read", "track", "read"])
    assert record.scopes == ("read", "track")
    assert key.startswith(record.prefix + "_") and len(key) == len(record.prefix) + 1 + 43
    async with store.connect() as connection:
        row = (await connection.execute(sa.select(api_keys))).one()
    assert row.prefix == record.prefix and row.scopes == "read track"
    secret = key[len(record.prefix) + 1:]
    assert secret not in row.key_hash and row.key_hash.startswith("sha256:") and len(row.key_hash) == 7 + 64
    assert await auth.verify_key(store, key) == record
    assert await auth.verify_key(store, key + "x") is None
    with pytest.raises(ValueError, match="already named"):
        await auth.create_key(store, "campaign tool", ["read"])
    with pytest.raises(ValueError, match="scopes"):
        await auth.create_key(store, "other", ["write"])
    with pytest.raises(ValueError, match="scopes"):
        await auth.create_key(store, "other", [])


async def test_the_key_cache_is_brief(store: Store) -> None:
    _, key = await auth.create_key(store, "k", ["read"])
    keyring = auth.Keyring(store, cache_seconds=60)
    assert (await keyring.authenticate(f"Bearer {key}", "10.1.2.3")).scopes == {"read"}
    await auth.revoke_key(store, "k")
    assert (await keyring.authenticate(f"Bearer {key}", "10.1.2.3")).name == "k"  # cached
    keyring.forget()
    with pytest.raises(auth.AccessError) as refused:
        await keyring.authenticate(f"Bearer {key}", "10.1.2.3")
    assert refused.value.status == 401  # no key left: open mode, but not for a remote client


async def test_open_mode_serves_loopback_clients_only(store: Store) -> None:
    app = create_app(Settings(database_url=store.url, key_cache_seconds=0), store=store)
    for client, allowed in ((("127.0.0.1", 5000), True), (("::1", 5000), True), (("10.0.0.7", 5000), False),
                            (("192.168.1.20", 5000), False)):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/graphql", json={"query": "{ metrics { name } }"})
            if allowed:
                assert response.status_code == 200
            else:
                error = assert_refused(response, 401, "UNAUTHENTICATED")
                assert "keys create" in error["message"]


def test_is_loopback() -> None:
    assert all(auth.is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(auth.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", "", None))


async def test_keys_command_line(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = store_url
    assert await run_cli("keys", "create", "--name", "tool", "--scope", "read", "track", "--database-url", url) == 0
    key = capsys.readouterr().out.strip()
    assert auth.KEY_PATTERN.match(key)
    assert await run_cli("keys", "create", "--name", "tool", "--scope", "read", "--database-url", url) == cli.EXIT_USAGE
    assert "already named" in capsys.readouterr().err
    assert await run_cli("keys", "create", "--name", "admin", "--scope", "manage", "--scope", "read",
                         "--database-url", url) == 0
    capsys.readouterr()
    assert await run_cli("keys", "list", "--database-url", url) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["NAME", "PREFIX", "SCOPES"]
    assert listing[1].split()[:4] == ["tool", key[:12], "read", "track"]
    assert listing[1].endswith("-") and listing[2].split()[:4] == ["admin", listing[2].split()[1], "manage", "read"]
    assert key[12:] not in "\n".join(listing)
    assert await run_cli("keys", "revoke", key[:12], "--database-url", url) == 0
    assert "revoked 'tool'" in capsys.readouterr().out
    assert await run_cli("keys", "revoke", "tool", "--database-url", url) == cli.EXIT_FAILED
    missing = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    assert await run_cli("keys", "list", "--database-url", missing) == cli.EXIT_FAILED


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5"])
def test_serve_refuses_to_listen_openly_beyond_loopback(host: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'open.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    refused = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", host, "--port", "1",
                              "--database-url", url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == cli.EXIT_USAGE
    assert "no API keys" in refused.stderr and "segmentql keys create" in refused.stderr
    assert "Uvicorn running" not in refused.stderr
