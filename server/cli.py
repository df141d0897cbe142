"""The `segmentql` command line."""

from __future__ import annotations

import argparse
import sys

from server.config import DEFAULT_DATABASE_URL, Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentql", description="GraphQL segmentation over Customer Agent events.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve GraphQL (GraphiQL in a browser) on /graphql")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", default=None, help=f"default: $SEGMENTQL_DATABASE_URL or {DEFAULT_DATABASE_URL}")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))
    print(f"SegmentQL on http://{args.host}:{args.port}/graphql  (store: {settings.database_url})", file=sys.stderr)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
