"""The `segmentql` command line.

The argument parser imports nothing beyond the standard library and the settings, so that
`segmentql --help` answers at once; each command imports what it needs when it runs (`keys` and
`count` never load GraphQL, `serve` loads the app). bench/cli_startup.py times them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import IO, Any

from server.config import DEFAULT_DATABASE_URL, Settings
from server.scopes import SCOPES

# Exit codes: 0 done, 1 the store failed or a segment is not there, 2 bad usage or bad input.
EXIT_FAILED, EXIT_USAGE = 1, 2

AsyncCommand = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    command: AsyncCommand = {
        "keys": _keys, "migrate": _migrate, "rebuild-summaries": _rebuild_summaries,
        "rebuild-conversations": _rebuild_summaries, "export": _export, "count": _count,
        "changes": _changes,
    }[args.command]
    return _run(command, args)


def parser() -> argparse.ArgumentParser:
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

    rebuild = commands.add_parser(
        "rebuild-summaries", aliases=["rebuild-conversations"],
        help="recompute the tables derived from the stored events (conversations, each profile's first "
        "time of each metric), after an older version wrote events beside this one, e.g. during an upgrade")
    rebuild.add_argument("--database-url", default=None, help=database_help)

    export = commands.add_parser("export", help="write every member of a saved segment, in id order; "
                                 "a summary line (members, file, asOf) on stderr when done")
    export.add_argument("--segment", required=True, metavar="ID", help="the saved segment's id")
    export.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    export.add_argument("--output", "-o", default=None, metavar="FILE", help="default: standard output")
    export.add_argument("--as-of", default=None, metavar="ISO", help="evaluation instant (ISO 8601); default: now")
    export.add_argument("--database-url", default=None, help=database_help)

    changes = commands.add_parser("changes", help="write who entered and who left a saved segment between two "
                                  "instants, as JSON lines in id order (the member's fields and \"change\": "
                                  "\"entered\" or \"exited\"); a summary line on stderr when done")
    changes.add_argument("--segment", required=True, metavar="ID", help="the saved segment's id")
    changes.add_argument("--since", required=True, metavar="ISO", help="the earlier instant, e.g. the last sync's asOf")
    changes.add_argument("--as-of", default=None, metavar="ISO", help="the later instant (ISO 8601); default: now")
    changes.add_argument("--output", "-o", default=None, metavar="FILE", help="default: standard output")
    changes.add_argument("--database-url", default=None, help=database_help)

    count = commands.add_parser("count", help="print how many profiles match a filter in the text form")
    count.add_argument("expression", help="e.g. 'did \"Placed Order\" in the last 7 days'")
    count.add_argument("--as-of", default=None, metavar="ISO", help="evaluation instant (ISO 8601); default: now")
    count.add_argument("--database-url", default=None, help=database_help)

    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it (once: only its hash is stored); "
                                     "the first key closes open access: every client then needs one")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'campaign-tool'")
    create.add_argument("--scope", required=True, action="extend", nargs="+", choices=SCOPES, dest="scopes",
                        help="read (queries, exports), track (ingest), manage (segments); repeatable")
    create.add_argument("--database-url", default=None, help=database_help)
    listing = key_commands.add_parser("list", help="list keys: name, prefix, scopes, created, revoked")
    listing.add_argument("--database-url", default=None, help=database_help)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its prefix (sqk_…), the key itself, or its name")
    revoke.add_argument("key", metavar="PREFIX_OR_NAME")
    revoke.add_argument("--database-url", default=None, help=database_help)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(**({"database_url": args.database_url} if args.database_url else {}))


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from server.auth import is_loopback
    from server.malloc_arenas import use_one_arena
    from store import migrate
    from store.engine import Store

    use_one_arena()  # before any thread allocates
    settings = _settings(args)
    # Workers are separate processes: they read their settings from the environment.
    os.environ["SEGMENTQL_DATABASE_URL"] = settings.database_url
    store = Store(settings.database_url)
    try:
        keys_exist = asyncio.run(_prepare(store))
    except migrate.StoreOutOfDate as error:
        print(f"segmentql serve: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not keys_exist and not is_loopback(args.host):
        print(f"segmentql serve: refusing to serve openly on {args.host}: this store has no API keys. Create one "
              "first (`segmentql keys create --name NAME --scope read`), or serve on 127.0.0.1.", file=sys.stderr)
        return EXIT_USAGE
    print(f"SegmentQL on http://{args.host}:{args.port}/graphql  (store: {store.safe_url})", file=sys.stderr)
    uvicorn.run("server.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="info", log_config=_log_config())
    return 0


def _log_config() -> dict[str, Any]:
    """Uvicorn's logging, with SegmentQL's own logger (warnings, failed requests) on the same stderr."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["segmentql"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


async def _prepare(store: Any) -> bool:
    """Create a new store's tables (refusing an out-of-date store); whether any API key is active."""
    from server.auth import has_active_keys
    from store import migrate

    try:
        await migrate.prepare(store)
        return await has_active_keys(store)
    finally:
        await store.dispose()


async def _keys(args: argparse.Namespace) -> int:
    from server import keys
    from store import migrate
    from store.engine import Store

    settings = _settings(args)
    store = Store(settings.database_url) if args.keys_command == "create" else _open_store(args)
    try:
        await migrate.prepare(store)
        if args.keys_command == "create":
            first = not await keys.has_active_keys(store)
            try:
                record, key = await keys.create_key(store, args.name, args.scopes)
            except ValueError as error:
                print(f"segmentql keys create: {error}", file=sys.stderr)
                return EXIT_USAGE
            print(key)
            print(f"created key {record.name!r} ({record.prefix}, scopes: {' '.join(record.scopes)}); "
                  "it is shown only this once: store it now", file=sys.stderr)
            if first:
                print(_first_key_warning(settings.key_cache_seconds), file=sys.stderr)
        elif args.keys_command == "list":
            _print_keys(await keys.list_keys(store))
        else:
            revoked = await keys.revoke_key(store, args.key)
            if not revoked:
                print(f"segmentql keys revoke: no active key has the prefix or name {args.key!r}", file=sys.stderr)
                return EXIT_FAILED
            for record in revoked:
                print(f"revoked {record.name!r} ({record.prefix})")
    finally:
        await store.dispose()
    return 0


def _first_key_warning(cache_seconds: float) -> str:
    return (f"warning: this is the store's first active key, so open access ends: within {cache_seconds:g} s every "
            "running server refuses requests without a valid key (401), from every client, loopback and GraphiQL "
            "included. Create keys for your own scripts too, and send `Authorization: Bearer KEY`.")


def _print_keys(records: list[Any]) -> None:
    from vocabulary.timestamps import format_datetime, from_micros

    def when(micros: int | None) -> str:
        return format_datetime(from_micros(micros))[:19].replace("T", " ") if micros is not None else "-"

    rows = [("NAME", "PREFIX", "SCOPES", "CREATED (UTC)", "REVOKED (UTC)")]
    rows += [(r.name, r.prefix, " ".join(r.scopes), when(r.created_at), when(r.revoked_at)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


async def _migrate(args: argparse.Namespace) -> int:
    from store import migrate
    from store.engine import Store

    store = Store(_settings(args).database_url)
    try:
        before = await migrate.current_revision(store)
        await migrate.upgrade(store)
        after = await migrate.current_revision(store)
    finally:
        await store.dispose()
    print(f"store at revision {after} (was {before or 'empty'})")
    return 0


async def _rebuild_summaries(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from resolvers.ingest import rebuild_derived_tables
    from store import migrate
    from store.engine import Store
    from store.tables import conversations, profile_metrics

    store = Store(_settings(args).database_url)
    try:
        await migrate.prepare(store)
        await store.write(rebuild_derived_tables)
        counts = sa.select(*(sa.select(sa.func.count()).select_from(table).scalar_subquery()
                             for table in (conversations, profile_metrics)))
        ((conversation_count, profile_metric_count),) = await store.fetch(counts, replica=False)
    finally:
        await store.dispose()
    print(f"{conversation_count:,} conversations and {profile_metric_count:,} (profile, metric) first times"
          " recomputed from the events")
    return 0


def _run(command: AsyncCommand, args: argparse.Namespace) -> int:
    """Run an async command; bad input and a failing store are a message on stderr and an exit code."""
    import asyncio

    import sqlalchemy.exc

    from resolvers.errors import NotFoundError, UserInputError
    from store.migrate import StoreOutOfDate

    try:
        return int(asyncio.run(command(args)))
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
    except StoreOutOfDate as error:
        print(f"segmentql {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as error:
        print(f"segmentql {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED


def _open_store(args: argparse.Namespace) -> Any:
    """The store the arguments name; a SQLite file that does not exist is an error, not a new empty store."""
    from sqlalchemy.engine import make_url

    from store.engine import Store

    url = _settings(args).database_url
    parsed = make_url(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if on_disk and not Path(str(parsed.database)).is_file():
        raise FileNotFoundError(f"no SQLite store at {parsed.database}")
    return Store(url)


async def _export(args: argparse.Namespace) -> int:
    from resolvers.exports import prepare_export
    from vocabulary.timestamps import format_datetime

    store = _open_store(args)
    try:
        export = await prepare_export(store, args.segment, args.format, args.as_of)
        await _warn_of_unknown_metrics(store, export.audience.metric_names)
        show_progress = sys.stderr.isatty()
        total = await export.count() if show_progress else None
        written = 0
        with _output(args.output) as out, _progress(total, show_progress) as progress:
            out.write(export.format.header)
            async for page in export.rows():
                out.write(export.encode(page))
                written += len(page)
                progress.update(len(page))
    finally:
        await store.dispose()
    print(export_summary(written, export.segment_id, format_datetime(export.as_of), args.output), file=sys.stderr)
    return 0


def export_summary(members: int, segment_id: int, as_of: str, output: str | None) -> str:
    """The line a successful export ends with on stderr, e.g.
    `exported 30 members of segment 1 at 2026-11-20T12:00:00+00:00 to members.csv`."""
    noun = "member" if members == 1 else "members"
    return f"exported {members:,} {noun} of segment {segment_id} at {as_of} to {output or 'standard output'}"


async def _changes(args: argparse.Namespace) -> int:
    from resolvers.changes import prepare_change_export
    from vocabulary.timestamps import format_datetime

    store = _open_store(args)
    try:
        export = await prepare_change_export(store, args.segment, args.since, args.as_of)
        moved = {"entered": 0, "exited": 0}
        with _output(args.output) as out:
            async for page in export.rows():
                out.write(export.encode(page))
                for row in page:
                    moved[row[1]] += 1
    finally:
        await store.dispose()
    changes = export.changes
    print(f"{moved['entered']:,} entered and {moved['exited']:,} exited segment {export.segment_id} between "
          f"{format_datetime(changes.since)} and {format_datetime(changes.as_of)}; wrote them to "
          f"{args.output or 'standard output'}", file=sys.stderr)
    return 0


async def _count(args: argparse.Namespace) -> int:
    from resolvers.audiences import compile_filter, count_members
    from resolvers.exports import parse_as_of
    from resolvers.language.structured import filter_to_input
    from resolvers.language.text import parse_filter

    root = parse_filter(args.expression)  # a syntax error names its line and column
    as_of = parse_as_of(args.as_of)
    store = _open_store(args)
    try:
        audience = await compile_filter(store, filter_to_input(root), as_of, ())
        await _warn_of_unknown_metrics(store, audience.metric_names)
        print(await count_members(store, audience))
    finally:
        await store.dispose()
    return 0


async def _warn_of_unknown_metrics(store: Any, names: tuple[str, ...]) -> None:
    """Print a warning on stderr for each metric named that has no events, as GraphQL's `extensions.warnings`."""
    from resolvers.metrics import KnownMetrics

    for unknown in await KnownMetrics().unknown(store, names):
        print(f"warning: {unknown.message}", file=sys.stderr)


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
