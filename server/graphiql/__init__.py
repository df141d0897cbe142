"""GraphiQL served by SegmentQL itself, so that it works offline and under a strict policy: the page, the
pinned files it loads (static/, with their licenses; refresh.sh fetches them from npm) and its CSP."""

from __future__ import annotations

import functools
from pathlib import Path

STATIC = Path(__file__).parent / "static"
# Where the page finds its files (relative to /graphql, so the app may be mounted under a prefix).
STATIC_ROUTE = "/graphiql"
# Nothing from elsewhere: scripts, styles and requests from this server only; fonts and icons are
# data: URIs inside graphiql.min.css. Styles allow inline attributes, which React and CodeMirror set.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "font-src 'self' data:", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
])


@functools.cache
def page() -> str:
    return (Path(__file__).parent / "page.html").read_text(encoding="utf-8")
