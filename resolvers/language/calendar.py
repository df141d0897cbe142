"""Calendar windows as instants: whole days, ISO weeks or months in an IANA time zone (SEMANTICS.md, calendar).

A period starts at its first day's local midnight; a midnight lost to a DST gap is the first instant after
the gap, an ambiguous one its first occurrence. Period 0 is the one whose [start, next start) holds asOf.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from resolvers.errors import UserInputError
from resolvers.language import ast as ast

U = ast.CalendarUnit


@functools.lru_cache(maxsize=256)
def time_zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; an unknown name is a UserInputError that names it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserInputError(f"unknown time zone {name!r}: give an IANA name such as \"Europe/Paris\"") from None


def calendar_bounds(window: ast.Calendar, as_of: datetime) -> tuple[datetime, datetime | None]:
    """The window's first instant and the instant it ends (exclusive; None past year 9999), in UTC."""
    zone = time_zone(window.timezone)
    try:
        current = _period_holding(window.unit, zone, as_of)
        start = _start(window.unit, zone, current - window.offset - window.count + 1)
    except (OverflowError, ValueError):
        raise UserInputError("a calendar window may not start before 0001-01-01") from None
    try:
        end: datetime | None = _start(window.unit, zone, current - window.offset + 1)
    except (OverflowError, ValueError):
        end = None
    return start, end


def _period_holding(unit: ast.CalendarUnit, zone: ZoneInfo, as_of: datetime) -> int:
    """The index of the period whose [start, next start) holds `as_of`."""
    index = _index(unit, as_of.astimezone(zone).date())
    # The local date is right but where a backward shift crosses midnight: then step to the period that holds it.
    while True:
        try:
            if _start(unit, zone, index + 1) > as_of:
                break
        except (OverflowError, ValueError):
            break
        index += 1
    while _start(unit, zone, index) > as_of:
        index -= 1
    return index


def _index(unit: ast.CalendarUnit, day: date) -> int:
    """Periods numbered in order: days and weeks by ordinal (0001-01-01 was a Monday), months by year * 12."""
    if unit is U.DAY:
        return day.toordinal()
    if unit is U.WEEK:
        return (day.toordinal() - 1) // 7
    return day.year * 12 + day.month - 1


def _first_day(unit: ast.CalendarUnit, index: int) -> date:
    if unit is U.DAY:
        return date.fromordinal(index)
    if unit is U.WEEK:
        return date.fromordinal(index * 7 + 1)
    return date(index // 12, index % 12 + 1, 1)


def _start(unit: ast.CalendarUnit, zone: ZoneInfo, index: int) -> datetime:
    return local_midnight(zone, _first_day(unit, index))


def local_midnight(zone: ZoneInfo, day: date) -> datetime:
    """The instant (UTC) a local day starts: its midnight, or the first instant after a gap that skips it."""
    wall = datetime(day.year, day.month, day.day, tzinfo=zone)  # fold=0: an ambiguous time's first occurrence
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # In a gap, fold=0 reads the wall clock with the offset before the shift (an instant after the gap) and
    # fold=1 with the one after it (before the gap): the shift lies between; shifts fall on whole seconds.
    before, after = wall.replace(fold=1).astimezone(UTC), instant
    offset_after = instant.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before) // timedelta(seconds=2))
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


def period_starts(unit: ast.CalendarUnit, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """The instants in (after, until] at which a period of `unit` starts in the zone, in order."""
    zone = time_zone(timezone)
    found: list[datetime] = []
    index = _period_holding(unit, zone, after) + 1
    while True:
        try:
            start = _start(unit, zone, index)
        except (OverflowError, ValueError):  # past year 9999
            return found
        if start > until:
            return found
        found.append(start)
        index += 1
