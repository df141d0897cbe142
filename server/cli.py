"""The `segmentql` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from server.config import DEFAULT_DATABASE_URL, Settings

# Exit codes: 0 done, 1 the store failed or a segment is not there, 2 bad usage or bad input.
EXIT_FAILED, EXIT_USAGE = 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentql", description="GraphQL segmentation over Customer Agent events.")
    commands = parser.add_subparsers(dest="command", required=True)
    database_help = f"default: $SEGMENTQL_DATABASE_URL or {DEFAULT_DATABASE_URL}"

    serve = commands.add_parser("serve", help="serve GraphQL (GraphiQL in a browser) on /graphql")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", default=None, help=database_help)
    serve.add_argument("--workers", type=int, default=1, help="server processes (use several on PostgreSQL)")

    migrate = commands.add_parser("migrate", help="create or upgrade the store's tables to this version")
    migrate.add_argument("--database-url", default=None, help=database_help)

    export = commands.add_parser("export", help="write every member of a saved segment, in id order")
    export.add_argument("--segment", required=True, metavar="ID", help="the saved segment's id")
    export.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    export.add_argument("--output", "-o", default=None, metavar="FILE", help="default: standard output")
    export.add_argument("--as-of", default=None, metavar="ISO", help="evaluation instant (ISO 8601); default: now")
    export.add_argument("--database-url", default=None, help=database_help)

    count = commands.add_parser("count", help="print how many profiles match a filter in the text form")
    count.add_argument("expression", help="e.g. 'did \"Placed Order\" in the last 7 days'")
    count.add_argument("--as-of", default=None, metavar="ISO", help="evaluation instant (ISO 8601); default: now")
    count.add_argument("--database-url", default=None, help=database_help)

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _run(_migrate(args), args)
    if args.command == "export":
        return _run(_export(args), args)
    if args.command == "count":
        return _run(_count(args), args)
    return EXIT_USAGE


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**({"database_url": args.database_url} if args.database_url else {}))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server import migrate
    from server.store import Store

    settings = _settings(args)
    # Workers are separate processes: they read their settings from the environment.
    os.environ["SEGMENTQL_DATABASE_URL"] = settings.database_url
    store = Store(settings.database_url)
    try:
        asyncio.run(_prepare(store))
    except migrate.StoreOutOfDate as error:
        print(f"segmentql serve: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"SegmentQL on http://{args.host}:{args.port}/graphql  (store: {settings.database_url})", file=sys.stderr)
    uvicorn.run("server.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="info")
    return 0


async def _prepare(store: Any) -> None:
    from server import migrate

    try:
        await migrate.prepare(store)
    finally:
        await store.dispose()


async def _migrate(args: argparse.Namespace) -> int:
    from server import migrate
    from server.store import Store

    store = Store(_settings(args).database_url)
    try:
        before = await migrate.current_revision(store)
        await migrate.upgrade(store)
        after = await migrate.current_revision(store)
    finally:
        await store.dispose()
    print(f"store at revision {after} (was {before or 'empty'})")
    return 0


def _run(command: Any, args: argparse.Namespace) -> int:
    """Run an async command; bad input and a failing store are a message on stderr and an exit code."""
    import sqlalchemy.exc

    from resolvers.errors import NotFoundError, UserInputError

    try:
        return int(asyncio.run(command))
    except BrokenPipeError:  # e.g. `segmentql export … | head`: the reader stopped; stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exit's flush fails silently
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except NotFoundError as error:
        print(f"segmentql {args.command}: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except UserInputError as error:
        print(f"segmentql {args.command}: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as error:
        print(f"segmentql {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED


def _open_store(args: argparse.Namespace) -> Any:
    """The store the arguments name; a SQLite file that does not exist is an error, not a new empty store."""
    from sqlalchemy.engine import make_url

    from server.store import Store

    url = _settings(args).database_url
    parsed = make_url(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if on_disk and not Path(str(parsed.database)).is_file():
        raise FileNotFoundError(f"no SQLite store at {parsed.database}")
    return Store(url)


async def _export(args: argparse.Namespace) -> int:
    from server.exports import prepare_export

    store = _open_store(args)
    try:
        export = await prepare_export(store, args.segment, args.format, args.as_of)
        show_progress = sys.stderr.isatty()
        total = await export.count() if show_progress else None
        with _output(args.output) as out, _progress(total, show_progress) as progress:
            out.write(export.format.header())
            async for page in export.rows():
                out.write(export.format.encode(page))
                progress.update(len(page))
    finally:
        await store.dispose()
    return 0


async def _count(args: argparse.Namespace) -> int:
    from resolvers.audiences import compile_filter, count_members
    from resolvers.filter_input import filter_to_input
    from resolvers.filter_text import parse_filter
    from server.exports import parse_as_of

    root = parse_filter(args.expression)  # a syntax error names its line and column
    as_of = parse_as_of(args.as_of)
    store = _open_store(args)
    try:
        async with store.connect() as connection:
            audience = await compile_filter(connection, store, filter_to_input(root), as_of, ())
        print(await count_members(store, audience))
    finally:
        await store.dispose()
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """The file to write (standard output when None); a file left half-written by a failure is removed."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        with target.open("wb") as out:
            yield out
    except BaseException:
        if target.is_file():
            target.unlink()
        raise


@contextlib.contextmanager
def _progress(total: int | None, enabled: bool) -> Iterator[Any]:
    """A progress bar on stderr (tqdm), shown only on a terminal and only once an export takes a while."""
    from tqdm import tqdm

    with tqdm(total=total, unit=" rows", unit_scale=True, file=sys.stderr, disable=not enabled, delay=0.5) as bar:
        yield bar


if __name__ == "__main__":
    sys.exit(main())
