"""Small helpers shared by the HTTP tests: tracking events and asking for audiences."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from server import cli
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, RESOLVED, STARTED

AS_OF = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
STARTED_NAME, RESOLVED_NAME, ESCALATED_NAME, RECOMMENDED_NAME = STARTED.name, RESOLVED.name, ESCALATED.name, RECOMMENDED.name

TRACK = """mutation($events: [TrackEventInput!]!) { trackEvents(events: $events) { accepted duplicates } }"""
AUDIENCE = """query($filter: SegmentFilter, $asOf: DateTime, $first: Int, $after: String) {
  profiles(filter: $filter, asOf: $asOf, first: $first, after: $after) {
    totalCount nodes { id email } pageInfo { hasNextPage endCursor }
  }
}"""


def iso(moment: datetime) -> str:
    return moment.isoformat()


def before(**delta: float) -> str:
    """AS_OF minus a timedelta, as ISO text."""
    return iso(AS_OF - timedelta(**delta))


def event(email: str, metric: str, occurred_at: str, **properties: Any) -> dict[str, Any]:
    return {"metric": metric, "profile": {"email": email}, "occurredAt": occurred_at, "properties": properties}


async def track(gql: Any, *events: dict[str, Any]) -> dict[str, Any]:
    data = await gql.data(TRACK, {"events": list(events)})
    return data["trackEvents"]  # type: ignore[no-any-return]


async def audience_emails(gql: Any, filter: dict[str, Any] | None, as_of: datetime = AS_OF) -> list[str]:
    """Emails of the audience (all pages), checking totalCount against them."""
    emails: list[str] = []
    after = None
    total = None
    while True:
        data = await gql.data(AUDIENCE, {"filter": filter, "asOf": iso(as_of), "first": 2, "after": after})
        page = data["profiles"]
        total = page["totalCount"]
        emails.extend(node["email"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert total == len(emails)
    return sorted(emails)


def record_page_shapes(monkeypatch: Any, module: Any) -> list[bool]:
    """Make `module.page_statement` record, for each statement it builds, whether it walks (else the set shape)."""
    shapes: list[bool] = []
    real = module.page_statement

    def recording(*args: Any, **kwargs: Any) -> Any:
        shapes.append(kwargs.get("walk", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "page_statement", recording)
    return shapes


async def run_cli(*argv: str) -> int:
    """`segmentql ARGV…` in this process; in a thread, since the command runs its own event loop as from a shell."""
    return await asyncio.to_thread(cli.main, list(argv))
