"""Runs the graphql-http audit (npm `graphql-http`, pinned in package.json beside this file) against a real
`segmentql serve` on a new SQLite file and exits with its status: 1 on any error or warning. `.ci/run` runs it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.server_process import ServerProcess

HERE = Path(__file__).parent


def main() -> int:
    if not (HERE / "node_modules" / "graphql-http").is_dir():  # node_modules/ is not committed
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True, timeout=300)
    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(f"sqlite+aiosqlite:///{scratch}/audit.db", log=Path(scratch) / "server.log")
        try:
            return subprocess.run(["node", str(HERE / "audit.mjs"), f"{server.base}/graphql"], timeout=300).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
