"""Calendar windows (SEMANTICS.md, calendar): periods in a time zone across DST gaps and folds, month ends and
leap days, as instants, and the audiences they make on both stores in both shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resolvers.language import ast as ast
from resolvers.language.calendar import calendar_bounds
from store.engine import Store
from tests.helpers import audience_emails, event, iso, track
from tests.shapes import members_in_both_shapes

D, W, M = ast.CalendarUnit.DAY, ast.CalendarUnit.WEEK, ast.CalendarUnit.MONTH


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# (case, zone, asOf, unit, offset, count, first instant, end): the ends worked out by hand from the zone's rules.
BOUNDS = [
    ("Paris spring forward: a 23-hour day", "Europe/Paris", utc(2026, 3, 29, 20), D, 0, 1,
     utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),
    ("Paris fall back: a 25-hour day", "Europe/Paris", utc(2026, 10, 25, 20), D, 0, 1,
     utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),
    ("New York: yesterday was 23 hours", "America/New_York", utc(2026, 3, 9, 4, 30), D, 1, 1,
     utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)),
    ("New York: last month, asOf late on the last day of February", "America/New_York", utc(2026, 3, 1, 3), M, 1, 1,
     utc(2026, 1, 1, 5), utc(2026, 2, 1, 5)),
    ("Lord Howe: a 23.5-hour day (30-minute shift)", "Australia/Lord_Howe", utc(2026, 10, 4, 5), D, 0, 1,
     datetime(2026, 10, 3, 13, 30, tzinfo=UTC), utc(2026, 10, 4, 13)),
    ("Lord Howe: a 24.5-hour day", "Australia/Lord_Howe", utc(2026, 4, 5, 5), D, 0, 1,
     utc(2026, 4, 4, 13), datetime(2026, 4, 5, 13, 30, tzinfo=UTC)),
    ("Santiago: midnight lost to the gap starts the day at the first instant after it", "America/Santiago",
     utc(2026, 9, 6, 16), D, 0, 1, utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)),
    ("Santiago: the day before the gap", "America/Santiago", utc(2026, 9, 6, 16), D, 1, 1,
     utc(2026, 9, 5, 4), utc(2026, 9, 6, 4)),
    ("Santiago: a 25-hour day", "America/Santiago", utc(2026, 4, 5, 16), D, 1, 1, utc(2026, 4, 4, 3), utc(2026, 4, 5, 4)),
    ("Beirut: midnight lost to the gap", "Asia/Beirut", utc(2026, 3, 29, 12), D, 0, 1,
     utc(2026, 3, 28, 22), utc(2026, 3, 29, 21)),
    ("Havana: an ambiguous midnight is its first occurrence", "America/Havana", utc(2026, 11, 1, 12), D, 0, 1,
     utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)),
    ("Havana: asOf in the repeated hour is still that day", "America/Havana", utc(2026, 11, 1, 5, 30), D, 0, 1,
     utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)),
    ("leap day: today", "UTC", utc(2028, 2, 29, 12), D, 0, 1, utc(2028, 2, 29), utc(2028, 3, 1)),
    ("leap year: this month is 29 days", "UTC", utc(2028, 2, 29, 12), M, 0, 1, utc(2028, 2, 1), utc(2028, 3, 1)),
    ("yesterday was a leap day", "UTC", utc(2028, 3, 1, 5), D, 1, 1, utc(2028, 2, 29), utc(2028, 3, 1)),
    ("month end: last month from the 31st", "UTC", utc(2026, 3, 31, 23, 59), M, 1, 1, utc(2026, 2, 1), utc(2026, 3, 1)),
    ("months 1 to 12 ago across a year end", "Europe/Paris", utc(2026, 1, 15), M, 1, 12,
     utc(2024, 12, 31, 23), utc(2025, 12, 31, 23)),
    ("ISO weeks start on Monday", "UTC", utc(2026, 11, 20, 12), W, 0, 1, utc(2026, 11, 16), utc(2026, 11, 23)),
    ("last week, Sunday night in Paris", "Europe/Paris", utc(2026, 11, 22, 22, 30), W, 1, 1,
     utc(2026, 11, 8, 23), utc(2026, 11, 15, 23)),
    ("the last 7 calendar days include today", "UTC", utc(2026, 11, 20, 12), D, 0, 7, utc(2026, 11, 14), utc(2026, 11, 21)),
    ("a period begins exactly at asOf", "UTC", utc(2026, 11, 20), D, 0, 1, utc(2026, 11, 20), utc(2026, 11, 21)),
]


@pytest.mark.parametrize(("case", "zone", "as_of", "unit", "offset", "count", "first", "end"), BOUNDS,
                         ids=[b[0] for b in BOUNDS])
def test_calendar_bounds(case: str, zone: str, as_of: datetime, unit: ast.CalendarUnit, offset: int, count: int,
                         first: datetime, end: datetime) -> None:
    assert calendar_bounds(ast.Calendar(unit, offset, count, zone), as_of) == (first, end)


def test_a_skipped_day_is_empty() -> None:
    """Samoa skipped 2011-12-30: that day starts where the next one does."""
    as_of = utc(2011, 12, 31, 12)  # 2012-01-01 02:00 in Apia
    yesterday = calendar_bounds(ast.Calendar(D, 1, 1, "Pacific/Apia"), as_of)
    before_it = calendar_bounds(ast.Calendar(D, 2, 1, "Pacific/Apia"), as_of)
    assert yesterday[0] == yesterday[1] - timedelta(days=1)
    assert before_it == (yesterday[0], yesterday[0])  # 2011-12-30: [start, start)


def calendar(unit: str, zone: str, offset: int = 0, count: int = 1) -> dict[str, Any]:
    return {"did": {"metric": "Placed Order",
                    "within": {"calendar": {"unit": unit, "offset": offset, "count": count, "timezone": zone}}}}


async def members(gql: Any, store: Store, filter: dict[str, Any], as_of: datetime) -> list[str]:
    through_api = await audience_emails(gql, filter, as_of)
    assert await members_in_both_shapes(store, filter, as_of) == through_api, filter
    return through_api


async def test_days_across_a_gap_at_midnight(gql: Any, store: Store) -> None:
    """Santiago, 2026-09-06: midnight does not exist; the day starts at 01:00 local (04:00Z)."""
    await track(gql,
                event("before-gap@x", "Placed Order", iso(utc(2026, 9, 6, 3, 59, 59))),  # 23:59:59 on the 5th
                event("after-gap@x", "Placed Order", iso(utc(2026, 9, 6, 4))),  # 01:00 on the 6th
                event("tonight@x", "Placed Order", iso(utc(2026, 9, 7, 2, 59))))  # 23:59 on the 6th, after asOf
    as_of = utc(2026, 9, 6, 16)
    assert await members(gql, store, calendar("DAY", "America/Santiago"), as_of) == ["after-gap@x"]
    assert await members(gql, store, calendar("DAY", "America/Santiago", offset=1), as_of) == ["before-gap@x"]
    assert await members(gql, store, calendar("DAY", "America/Santiago"), utc(2026, 9, 7, 2, 59)) == [
        "after-gap@x", "tonight@x"]
    text = {"expression": 'did "Placed Order" yesterday in time zone "America/Santiago"'}
    assert await members(gql, store, text, as_of) == ["before-gap@x"]


async def test_a_23_hour_day_and_a_25_hour_day_in_paris(gql: Any, store: Store) -> None:
    await track(gql,
                event("early@x", "Placed Order", iso(utc(2026, 3, 28, 23))),  # midnight, 29 March
                event("late@x", "Placed Order", iso(utc(2026, 3, 29, 21, 59))),  # 23:59 (CEST)
                event("fall-start@x", "Placed Order", iso(utc(2026, 10, 24, 22))),  # midnight (CEST), 25 October
                event("fall@x", "Placed Order", iso(utc(2026, 10, 25, 22, 59))))  # 23:59 (CET) on 25 October
    assert await members(gql, store, calendar("DAY", "Europe/Paris"), utc(2026, 3, 29, 22) - timedelta(microseconds=1)) == [
        "early@x", "late@x"]
    assert await members(gql, store, calendar("DAY", "Europe/Paris", offset=1), utc(2026, 3, 29, 22)) == ["early@x", "late@x"]
    # A UTC day is not the Paris day.
    assert await members(gql, store, calendar("DAY", "UTC", offset=1), utc(2026, 3, 29, 22)) == ["early@x"]
    assert await members(gql, store, calendar("DAY", "Europe/Paris"), utc(2026, 10, 25, 22, 59, 30)) == [
        "fall-start@x", "fall@x"]
    assert await members(gql, store, calendar("DAY", "Europe/Paris"), utc(2026, 10, 25, 23)) == []


async def test_lord_howe_and_an_ambiguous_midnight(gql: Any, store: Store) -> None:
    await track(gql,
                event("howe@x", "Placed Order", iso(datetime(2026, 10, 3, 13, 30, tzinfo=UTC))),  # midnight, 4 Oct
                event("howe-before@x", "Placed Order", iso(datetime(2026, 10, 3, 13, 29, 59, tzinfo=UTC))),
                event("havana-first@x", "Placed Order", iso(utc(2026, 11, 1, 4))),  # the first 00:00 on 1 November
                event("havana-before@x", "Placed Order", iso(utc(2026, 11, 1, 3, 59))))
    assert await members(gql, store, calendar("DAY", "Australia/Lord_Howe"), utc(2026, 10, 4, 5)) == ["howe@x"]
    assert await members(gql, store, calendar("DAY", "America/Havana"), utc(2026, 11, 1, 5, 30)) == ["havana-first@x"]


async def test_month_ends_and_leap_days(gql: Any, store: Store) -> None:
    await track(gql,
                event("jan31@x", "Placed Order", iso(utc(2028, 1, 31, 23, 59))),
                event("feb29@x", "Placed Order", iso(utc(2028, 2, 29, 12))),
                event("mar1@x", "Placed Order", iso(utc(2028, 3, 1, 0, 0))))
    as_of = utc(2028, 3, 1, 5)
    assert await members(gql, store, calendar("DAY", "UTC", offset=1), as_of) == ["feb29@x"]
    assert await members(gql, store, calendar("MONTH", "UTC", offset=1), as_of) == ["feb29@x"]
    assert await members(gql, store, calendar("MONTH", "UTC", count=2), as_of) == ["feb29@x", "mar1@x"]
    assert await members(gql, store, calendar("MONTH", "UTC", offset=1, count=2), as_of) == ["feb29@x", "jan31@x"]
    # In New York, 23:59 UTC on 31 January is still January, and midnight UTC on 1 March is February.
    assert await members(gql, store, calendar("MONTH", "America/New_York", offset=1), as_of) == ["feb29@x", "mar1@x"]


async def test_metric_count_takes_a_calendar_window(gql: Any) -> None:
    now = datetime.now(UTC)
    await track(gql, event("a@x", "Placed Order", iso(now - timedelta(seconds=1))),
                event("b@x", "Placed Order", iso(now - timedelta(days=40))))
    data = await gql.data('{ metric(name: "Placed Order") { count(within: {calendar: {unit: DAY, count: 2}}) '
                          "all: count } }")
    assert data["metric"] == {"count": 1, "all": 2}
