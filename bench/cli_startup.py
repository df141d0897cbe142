"""How long the `segmentql` command line takes to answer, from a fresh process to its exit.

Times (median of --runs, each a new process, after one untimed warm-up run) of:

- `segmentql --help`
- `segmentql keys list --database-url <a temporary SQLite store>`
- `segmentql count '<expression>' --database-url <the same store>`

and, for reference, the interpreter alone (`python -c pass`). The store is seeded with seed.py's
demo data (--profiles shoppers, 30 days), so that `count` answers a real question. For each
command it also lists which heavy packages the command imported (from `python -X importtime`).

    .venv/bin/python bench/cli_startup.py [--runs 5] [--profiles 300] [--via-module]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from seed import seed_store  # noqa: E402
from store.engine import Store  # noqa: E402

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EXPRESSION = 'did "Started Conversation with Customer Agent" where channel = "SMS"'
HEAVY = ("strawberry", "graphql", "starlette", "uvicorn", "sqlalchemy", "alembic", "aiosqlite", "asyncpg", "lark", "tqdm")


def segmentql(via_module: bool) -> list[str]:
    """The installed console script next to this interpreter (what a user runs), else `python -m server.cli`
    run from this checkout (which times the checkout this script is in, e.g. an older commit's)."""
    script = Path(sys.executable).with_name("segmentql")
    return [str(script)] if script.is_file() and not via_module else [sys.executable, "-m", "server.cli"]


def run_once(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def heavy_imports(arguments: list[str], env: dict[str, str]) -> list[str]:
    """Which of HEAVY the command imports (top-level packages in `-X importtime`'s report)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "server.cli", *arguments], cwd=ROOT, env=env,
                          capture_output=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")}
    return [name for name in HEAVY if name in imported]


async def seeded(url: str, profiles: int) -> None:
    store = Store(url)
    try:
        await seed_store(store, profiles, 30, 1, END)
    finally:
        await store.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profiles", type=int, default=300)
    parser.add_argument("--via-module", action="store_true",
                        help="run `python -m server.cli` from this checkout instead of the installed `segmentql`: to "
                        "time another checkout, e.g. `git archive COMMIT | tar -x -C DIR` with this script copied in")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEGMENTQL_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{directory}/cli.db"
        asyncio.run(seeded(url, args.profiles))
        store = ["--database-url", url]
        arguments = {  # what follows `segmentql`
            "segmentql --help": ["--help"],
            "segmentql keys list": ["keys", "list", *store],
            "segmentql count": ["count", EXPRESSION, "--as-of", END.isoformat(), *store],
        }
        program = segmentql(args.via_module)
        cases: dict[str, tuple[list[str], list[str] | None]] = {"python -c pass": ([sys.executable, "-c", "pass"], None)}
        cases.update({name: ([*program, *argv], argv) for name, argv in arguments.items()})
        print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"Store: SQLite, seed.py's demo data ({args.profiles} profiles, 30 days, seed 1)")
        print(f"Times: wall clock of a new process, ms, median of {args.runs} after one warm-up run\n")
        print("| command | median | min | max | heavy packages imported |")
        print("|---|--:|--:|--:|---|")
        for name, (command, cli_arguments) in cases.items():
            run_once(command, env)  # warm-up: bytecode compiled, files in the page cache
            runs = [run_once(command, env) for _ in range(args.runs)]
            heavy = (", ".join(heavy_imports(cli_arguments, env)) or "none") if cli_arguments is not None else "-"
            print(f"| `{name}` | {statistics.median(runs) * 1000:.0f} | {min(runs) * 1000:.0f} | "
                  f"{max(runs) * 1000:.0f} | {heavy} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
