"""Datetimes in and out: offsets normalised to UTC, stored as integer microseconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR


def parse_datetime(value: str | datetime) -> datetime:
    """An ISO 8601 datetime as an aware UTC datetime; no offset means UTC. Raises ValueError."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) < 10:
            raise ValueError(f"not an ISO 8601 datetime: {value!r}")
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    else:
        raise ValueError(f"not an ISO 8601 datetime: {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
        raise ValueError(f"datetime out of range: {value!r}") from None


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, e.g. 2026-11-25T10:00:00+00:00."""
    return value.astimezone(UTC).isoformat()


def to_micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def now_utc() -> datetime:
    return datetime.now(UTC)
