"""The contract's scalars: DateTime (ISO 8601, always output in UTC with an offset) and JSON."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from vocabulary.timestamps import format_datetime, parse_datetime


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string")
    try:
        return parse_datetime(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 datetime: {value!r}") from None


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO 8601; a value without an offset is UTC; output always UTC with an offset.",
    serialize=format_datetime,
    parse_value=_parse,
)

__all__ = ["JSON", "DateTime"]
