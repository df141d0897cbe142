"""The command line: what each command imports, so that it answers at once. bench/cli_startup.py times the
commands; these tests only check what they load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.server_process import ROOT

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
