"""The command line: what each command imports (so that it answers at once), the first-key warning and the
export's summary line. bench/cli_startup.py times the commands; these tests only check what they load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.config import Settings
from store import migrate
from store.engine import Store
from tests.conftest import GraphQLClient
from tests.helpers import AS_OF, before, event, iso, run_cli, track
from tests.server_process import ROOT
from vocabulary.timestamps import parse_datetime

# The packages that made every command take seconds: the GraphQL schema and server, the store, the grammar.
HEAVY = {"strawberry", "graphql", "starlette", "uvicorn", "schema", "sqlalchemy", "alembic", "store", "resolvers", "lark"}
GRAPHQL = {"strawberry", "graphql", "starlette", "uvicorn", "schema"}

# Runs `segmentql ARGV` in a new interpreter, then writes the top-level packages it loaded to the file given.
_LOADED = """
import json, sys
from server import cli
try:
    cli.main(json.loads(sys.argv[1]))
except SystemExit:
    pass
with open(sys.argv[2], "w") as out:
    json.dump(sorted({name.split(".")[0] for name in sys.modules}), out)
"""


def loaded_packages(tmp_path: Path, *argv: str) -> set[str]:
    """The top-level packages a fresh `segmentql ARGV…` process has imported when it is done."""
    report = tmp_path / "loaded.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _LOADED, json.dumps(argv), str(report)], cwd=ROOT, env=env,
                   capture_output=True, check=True, timeout=120)
    return set(json.loads(report.read_text()))


@pytest.mark.parametrize("argv", [["--help"], ["keys", "create", "--help"], ["export", "--help"], []])
def test_the_argument_parser_imports_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    loaded = loaded_packages(tmp_path, *argv)
    assert loaded & HEAVY == set()


async def test_keys_and_count_load_neither_graphql_nor_more_than_they_use(store_url: str, tmp_path: Path) -> None:
    assert await run_cli("migrate", "--database-url", store_url) == 0
    keys = loaded_packages(tmp_path, "keys", "list", "--database-url", store_url)
    assert keys & GRAPHQL == set()
    assert "lark" not in keys  # no filter to parse
    assert {"sqlalchemy", "alembic", "store"} <= keys  # the store, and the revision check before it is read
    count = loaded_packages(tmp_path, "count", 'did "Placed Order"', "--database-url", store_url)
    assert count & GRAPHQL == set()
    assert "alembic" not in count  # the store is read, not prepared
    assert {"sqlalchemy", "lark", "resolvers"} <= count


# ---------------------------------------------------------------- keys


def first_key_warning(seconds: str) -> str:
    return (f"warning: this is the store's first active key, so open access ends: within {seconds} s every running "
            "server refuses requests without a valid key (401), from every client, loopback and GraphiQL included. "
            "Create keys for your own scripts too, and send `Authorization: Bearer KEY`.\n")


async def test_creating_the_first_key_warns_that_every_client_now_needs_one(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTQL_KEY_CACHE_SECONDS", "5")
    url = store_url
    assert await run_cli("keys", "create", "--name", "tool", "--scope", "read", "--database-url", url) == 0
    first = capsys.readouterr()
    prefix = first.out[:12]
    assert first.err == (f"created key 'tool' ({prefix}, scopes: read); it is shown only this once: store it now\n"
                         + first_key_warning("5"))

    assert await run_cli("keys", "create", "--name", "admin", "--scope", "manage", "--database-url", url) == 0
    second = capsys.readouterr()
    assert second.err == f"created key 'admin' ({second.out[:12]}, scopes: manage); it is shown only this once: store it now\n"

    # With every key revoked the server is open again (to loopback clients), so the next key closes it again.
    for name in ("tool", "admin"):
        assert await run_cli("keys", "revoke", name, "--database-url", url) == 0
    capsys.readouterr()
    monkeypatch.delenv("SEGMENTQL_KEY_CACHE_SECONDS")
    assert await run_cli("keys", "create", "--name", "again", "--scope", "track", "--database-url", url) == 0
    assert capsys.readouterr().err.endswith(first_key_warning("2"))

    # A refused key warns of nothing.
    assert await run_cli("keys", "create", "--name", "again", "--scope", "read", "--database-url", url) == 2
    assert "warning" not in capsys.readouterr().err


# ---------------------------------------------------------------- export


@pytest.fixture
async def url_gql(store_url: str) -> AsyncIterator[GraphQLClient]:
    """GraphQL on the store the URL names, the one the command line opens."""
    store = Store(store_url)
    await migrate.prepare(store)
    app = create_app(Settings(database_url=store_url), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield GraphQLClient(http)
    await store.dispose()


CREATE = """mutation($input: CreateSegmentInput!) { createSegment(input: $input) { id } }"""


async def test_a_successful_export_ends_with_one_summary_line_on_stderr(
    store_url: str, url_gql: GraphQLClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await track(url_gql, event("one@x", "Placed Order", before(days=1)), event("two@x", "Viewed Product", before(days=1)))
    ordered = (await url_gql.data(CREATE, {"input": {"name": "ordered", "filter": {"did": {"metric": "Placed Order"}}}}))
    nobody = (await url_gql.data(CREATE, {"input": {"name": "nobody", "filter": {"did": {"metric": "Refunded"}}}}))
    ordered_id, nobody_id = ordered["createSegment"]["id"], nobody["createSegment"]["id"]
    output = tmp_path / "members.csv"

    assert await run_cli("export", "--segment", ordered_id, "--output", str(output), "--as-of", iso(AS_OF),
                         "--database-url", store_url) == 0
    assert capsys.readouterr().err == f"exported 1 member of segment {ordered_id} at 2026-11-20T12:00:00+00:00 to {output}\n"
    assert output.read_text().count("one@x") == 1

    assert await run_cli("export", "--segment", nobody_id, "--format", "ndjson", "--as-of", "2026-11-20T13:00:00+01:00",
                         "--database-url", store_url) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f'warning: no event of metric "Refunded" is stored, so no profile did it\n'
                            f"exported 0 members of segment {nobody_id} at 2026-11-20T12:00:00+00:00 to standard output\n")

    # Without --as-of the line names the instant the export was evaluated at (now), with its offset.
    started = datetime.now().astimezone()
    assert await run_cli("export", "--segment", ordered_id, "--database-url", store_url) == 0
    err = capsys.readouterr().err
    instant = err.removeprefix(f"exported 1 member of segment {ordered_id} at ").removesuffix(" to standard output\n")
    assert instant.endswith("+00:00")
    assert started <= parse_datetime(instant) <= datetime.now().astimezone()


async def test_a_failed_export_prints_no_summary(
    store_url: str, url_gql: GraphQLClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli("export", "--segment", "404", "--output", str(tmp_path / "x.csv"),
                         "--database-url", store_url) == 1
    err = capsys.readouterr().err
    assert err == "segmentql export: no segment with id '404'\n"
