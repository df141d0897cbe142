"""The text form of the filter language: SEMANTICS.md's examples, precedence, printing, round trips, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolvers.errors import UserInputError
from resolvers.language import ast as ast
from resolvers.language.limits import check_filter
from resolvers.language.text import KEYWORDS, parse_filter, print_filter
from tests.filter_strategies import datetimes, filters, json_scalars
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, STARTED, canonical_metric_name

P = ast.PropertyOp
F, N, U = ast.AggregateFunction, ast.NumberOp, ast.CalendarUnit


def did(metric: str, **fields: Any) -> ast.Did:
    return ast.Did(ast.EventCondition(metric, **fields))


def where(*conditions: tuple[str, ast.PropertyOp, Any]) -> tuple[ast.PropertyCondition, ...]:
    return tuple(ast.PropertyCondition(*c) for c in conditions)


def profile(name: str, op: ast.PropertyOp, value: Any = None) -> ast.ProfileMatch:
    return ast.ProfileMatch(ast.PropertyCondition(name, op, value))


A, B, C = did("A"), did("B"), did("C")

# Every example of SEMANTICS.md's "Text form", with the AST it means.
SEMANTICS_EXAMPLES = [
    (
        f'did "{RECOMMENDED.name}" in the last 7 days\n  and not did "Placed Order" in the last 7 days',
        ast.And((
            did(RECOMMENDED.name, within=ast.LastDays(7)),
            ast.Not(did("Placed Order", within=ast.LastDays(7))),
        )),
    ),
    (
        f'did "{ESCALATED.name}" at least 2 times in the last 30 days',
        did(ESCALATED.name, count=ast.AtLeast(2), within=ast.LastDays(30)),
    ),
    (
        f'did "{STARTED.name}" where channel = "SMS", initial_skill = "Order tracking" since 2026-11-01T00:00:00Z',
        did(STARTED.name, where=where(("channel", P.EQ, "SMS"), ("initial_skill", P.EQ, "Order tracking")),
            within=ast.Since(datetime(2026, 11, 1, tzinfo=UTC))),
    ),
    (
        f'did "{RECOMMENDED.name}" in the last 7 days not followed by "Placed Order" within 48 hours',
        did(RECOMMENDED.name, within=ast.LastDays(7), not_followed_by=ast.FollowUp("Placed Order", 48)),
    ),
    (
        f'did "{STARTED.name}" followed by "{ESCALATED.name}" within 2 hours with the same conversation_id',
        did(STARTED.name, followed_by=ast.FollowUp(ESCALATED.name, 2, same_properties=("conversation_id",))),
    ),
    (
        f"didn't \"{STARTED.name}\"",
        ast.DidNot(ast.EventCondition(STARTED.name)),
    ),
    (
        'profile email starts with "vip" or profile `loyalty tier` in ["gold", "platinum"]',
        ast.Or((profile("email", P.STARTS_WITH, "vip"), profile("loyalty tier", P.IN, ["gold", "platinum"]))),
    ),
    (
        'in segment "42"',
        ast.InSegment("42"),
    ),
    (
        'did "Placed Order" at least 2 times with sum of value >= 100 in the last 30 days',
        did("Placed Order", count=ast.AtLeast(2), within=ast.LastDays(30),
            having=(ast.AggregateCondition(F.SUM, "value", N.GTE, 100.0),)),
    ),
    (
        f'did "{STARTED.name}" with distinct count of conversation_id >= 3',
        did(STARTED.name, having=(ast.AggregateCondition(F.DISTINCT_COUNT, "conversation_id", N.GTE, 3.0),)),
    ),
    (
        'did "Placed Order" last month in time zone "America/New_York"',
        did("Placed Order", within=ast.Calendar(U.MONTH, offset=1, timezone="America/New_York")),
    ),
]

# The other phrases SEMANTICS.md names, each with the AST it means and the text the printer writes for it.
HAVING_AND_CALENDAR = [
    ('did "A" with sum of total >= 100, distinct count of sku >= 2',
     did("A", having=(ast.AggregateCondition(F.SUM, "total", N.GTE, 100.0),
                      ast.AggregateCondition(F.DISTINCT_COUNT, "sku", N.GTE, 2.0))),
     None),
    ('did "A" with average of x = 1.5, min of y != -2, max of z > 0.25, sum of w < 1e-7, sum of v <= 1e300',
     did("A", having=(ast.AggregateCondition(F.AVERAGE, "x", N.EQ, 1.5), ast.AggregateCondition(F.MIN, "y", N.NEQ, -2.0),
                      ast.AggregateCondition(F.MAX, "z", N.GT, 0.25), ast.AggregateCondition(F.SUM, "w", N.LT, 1e-7),
                      ast.AggregateCondition(F.SUM, "v", N.LTE, 1e300))),
     'did "A" with average of x = 1.5, min of y != -2, max of z > 0.25, sum of w < 1e-07, sum of v <= 1e+300'),
    ('did "A" today', did("A", within=ast.Calendar(U.DAY)), None),
    ('did "A" yesterday', did("A", within=ast.Calendar(U.DAY, offset=1)), None),
    ('did "A" this week', did("A", within=ast.Calendar(U.WEEK)), None),
    ('did "A" this month in time zone "Europe/Paris"', did("A", within=ast.Calendar(U.MONTH, timezone="Europe/Paris")), None),
    ('did "A" last week', did("A", within=ast.Calendar(U.WEEK, offset=1)), None),
    ('did "A" in the last 7 calendar days', did("A", within=ast.Calendar(U.DAY, count=7)), None),
    ('did "A" in the last 1 calendar month', did("A", within=ast.Calendar(U.MONTH)), 'did "A" this month'),
    ('did "A" in calendar days 1 to 7 ago', did("A", within=ast.Calendar(U.DAY, offset=1, count=7)), None),
    ('did "A" in calendar weeks 2 to 2 ago in time zone "UTC"', did("A", within=ast.Calendar(U.WEEK, offset=2)), None),
    ('did "A" in calendar days 1 to 1 ago', did("A", within=ast.Calendar(U.DAY, offset=1)), 'did "A" yesterday'),
    ('did "A" in calendar months 0 to 2 ago', did("A", within=ast.Calendar(U.MONTH, count=3)),
     'did "A" in the last 3 calendar months'),
    # Every part in its place, and the window first.
    ('did "A" where k = 1 at least 2 times with sum of `count` > 3 yesterday in time zone "Asia/Beirut"'
     ' followed by "B" within 2 hours not followed by "C" within 1 hour',
     did("A", where=where(("k", P.EQ, 1)), count=ast.AtLeast(2), having=(ast.AggregateCondition(F.SUM, "count", N.GT, 3.0),),
         within=ast.Calendar(U.DAY, offset=1, timezone="Asia/Beirut"), followed_by=ast.FollowUp("B", 2),
         not_followed_by=ast.FollowUp("C", 1)),
     None),
    ('did "A" today at most 2 times with max of x < 5', did("A", count=ast.AtMost(2), within=ast.Calendar(U.DAY),
                                                            having=(ast.AggregateCondition(F.MAX, "x", N.LT, 5.0),)),
     'did "A" at most 2 times with max of x < 5 today'),
    ('all(did "A" with sum of x > 1, min of y < 2, did "B" TODAY In Time Zone "Europe/Paris")',
     ast.And((did("A", having=(ast.AggregateCondition(F.SUM, "x", N.GT, 1.0), ast.AggregateCondition(F.MIN, "y", N.LT, 2.0))),
              did("B", within=ast.Calendar(U.DAY, timezone="Europe/Paris")))),
     'did "A" with sum of x > 1, min of y < 2 and did "B" today in time zone "Europe/Paris"'),
]


@pytest.mark.parametrize(("text", "expected", "printed"), HAVING_AND_CALENDAR)
def test_having_and_calendar_phrases(text: str, expected: ast.Filter, printed: str | None) -> None:
    assert parse_filter(text) == expected
    assert print_filter(expected) == (printed or text.replace(' in time zone "UTC"', ""))
    assert parse_filter(print_filter(expected)) == expected


@pytest.mark.parametrize(("text", "expected"), SEMANTICS_EXAMPLES)
def test_semantics_examples_parse_and_print_back(text: str, expected: ast.Filter) -> None:
    assert parse_filter(text) == expected
    assert print_filter(expected) == text.replace("\n  ", " ")


@pytest.mark.parametrize(("text", "expected"), [
    ('did "A" or did "B" and not did "C"', ast.Or((A, ast.And((B, ast.Not(C)))))),
    ('not did "A" and did "B"', ast.And((ast.Not(A), B))),
    ('not (did "A" and did "B")', ast.Not(ast.And((A, B)))),
    ('not not did "A"', ast.Not(ast.Not(A))),
    ('did "A" and did "B" and did "C"', ast.And((A, B, C))),
    ('(did "A" and did "B") and did "C"', ast.And((ast.And((A, B)), C))),
    ('did "A" and (did "B" and did "C")', ast.And((A, ast.And((B, C))))),
    ('(did "A" or did "B") and did "C"', ast.And((ast.Or((A, B)), C))),
    ('((did "A"))', A),
    ("all()", ast.And(())),
    ("any()", ast.Or(())),
    ('all(did "A")', ast.And((A,))),
    ('any(did "A", did "B" or did "C")', ast.Or((A, ast.Or((B, C))))),
    ('did not "A"', ast.DidNot(ast.EventCondition("A"))),
    ("didn’t \"A\"", ast.DidNot(ast.EventCondition("A"))),
    ('not did "A"', ast.Not(A)),
])
def test_boolean_structure(text: str, expected: ast.Filter) -> None:
    assert parse_filter(text) == expected
    assert parse_filter(print_filter(expected)) == expected


def test_printer_adds_only_needed_parentheses() -> None:
    assert print_filter(ast.Or((A, ast.And((B, C))))) == 'did "A" or did "B" and did "C"'
    assert print_filter(ast.And((ast.Or((A, B)), C))) == '(did "A" or did "B") and did "C"'
    assert print_filter(ast.And((ast.And((A, B)), C))) == '(did "A" and did "B") and did "C"'
    assert print_filter(ast.Not(ast.Or((A, B)))) == 'not (did "A" or did "B")'
    assert print_filter(ast.Or((ast.Not(A), ast.And(()), ast.Or((B,))))) == 'not did "A" or all() or any(did "B")'


@pytest.mark.parametrize(("text", "expected"), [
    ('did "A" zero times', ast.EventCondition("A", count=ast.Exactly(0))),
    ('did "A" exactly 1 time', ast.EventCondition("A", count=ast.Exactly(1))),
    ('did "A" at most 3 times', ast.EventCondition("A", count=ast.AtMost(3))),
    ('did "A" at least 1 times', ast.EventCondition("A")),
    ('did "A" in the last 1 day at least 2 times', ast.EventCondition("A", count=ast.AtLeast(2), within=ast.LastDays(1))),
    ('did "A" in the last 36 hours', ast.EventCondition("A", within=ast.LastHours(36))),
    ('did "A" before 2026-01-02T03:04:05.5+01:00',
     ast.EventCondition("A", within=ast.Before(datetime(2026, 1, 2, 2, 4, 5, 500000, tzinfo=UTC)))),
    ('did "A" between 2026-01-01 and 2026-02-01T00:00',
     ast.EventCondition("A", within=ast.Between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)))),
    ('did "A" where x exists, `y z` not exists, n >= 2.0, m < -1e3, t contains "a", u not contains 1',
     ast.EventCondition("A", where=where(("x", P.EXISTS, None), ("y z", P.NOT_EXISTS, None), ("n", P.GTE, 2.0),
                                         ("m", P.LT, -1000.0), ("t", P.CONTAINS, "a"), ("u", P.NOT_CONTAINS, 1)))),
    ('did "A" where v != true, w not in [1, 2.5, "x", false], o = {"k": [null]}, p <= 0, q > 1',
     ast.EventCondition("A", where=where(("v", P.NEQ, True), ("w", P.NOT_IN, [1, 2.5, "x", False]),
                                         ("o", P.EQ, {"k": [None]}), ("p", P.LTE, 0), ("q", P.GT, 1)))),
    ('did "A" followed by "B" where k = 1, j = 2 within 1 hour with the same k, `j`'
     ' not followed by "C" within 3 hours',
     ast.EventCondition("A", followed_by=ast.FollowUp("B", 1, where(("k", P.EQ, 1), ("j", P.EQ, 2)), ("k", "j")),
                        not_followed_by=ast.FollowUp("C", 3))),
])
def test_event_conditions(text: str, expected: ast.EventCondition) -> None:
    assert parse_filter(text) == ast.Did(expected)


def test_numbers_keep_int_or_float() -> None:
    parsed = parse_filter("profile n in [1, 1.0, 1e2, -0, 12345678901234567890]")
    assert isinstance(parsed, ast.ProfileMatch)
    assert [type(v) for v in parsed.condition.value] == [int, float, float, int, int]
    assert print_filter(parsed) == "profile n in [1, 1.0, 100.0, 0, 12345678901234567890]"


def test_metric_names_are_canonical() -> None:
    assert parse_filter('did "started_conversation"') == did(STARTED.name)
    assert parse_filter('did "  Placed   Order "') == did("Placed Order")


def test_datetimes_print_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    node = did("A", within=ast.Between(datetime(2026, 11, 1, 2, tzinfo=plus_two), datetime(2026, 11, 2, 0, 0, 0, 1, UTC)))
    assert print_filter(node) == 'did "A" between 2026-11-01T00:00:00Z and 2026-11-02T00:00:00.000001Z'


def test_keywords_are_case_insensitive() -> None:
    lower = parse_filter('did "A" where x not in [1] at least 2 times in the last 3 days and not did "B" or all()')
    upper = parse_filter('DID "A" WHERE x NOT IN [1] AT LEAST 2 TIMES IN THE LAST 3 DAYS AND NOT DID "B" OR ALL()')
    mixed = parse_filter('Did "A" Where x Not In [1] At Least 2 Times In The Last 3 Days And Not Did "B" Or All()')
    assert lower == upper == mixed
    assert parse_filter('Profile e Starts With "x" OR In Segment "1"') == parse_filter(
        'profile e starts with "x" or in segment "1"')


def test_backticked_property_names() -> None:
    assert parse_filter('profile `loyalty tier` = "gold"') == profile("loyalty tier", P.EQ, "gold")
    assert parse_filter("profile `in` exists") == profile("in", P.EXISTS)
    assert parse_filter('profile `a.b "c"` = 1') == profile('a.b "c"', P.EQ, 1)
    assert parse_filter("profile `naïve ✓` = 1") == profile("naïve ✓", P.EQ, 1)
    assert parse_filter("profile `plain` = 1") == profile("plain", P.EQ, 1)
    assert print_filter(profile("in", P.EQ, 1)) == "profile `in` = 1"
    assert print_filter(profile("Where", P.EQ, 1)) == "profile `Where` = 1"
    assert print_filter(profile("a.b", P.EQ, 1)) == "profile `a.b` = 1"
    assert print_filter(profile("index_2", P.EQ, 1)) == "profile index_2 = 1"


def test_where_lists_inside_all_and_any() -> None:
    text = 'all(did "A" where a = 1, b = 2, did "B" where `c` = 3, profile d exists, any(did "C"))'
    assert parse_filter(text) == ast.And((
        did("A", where=where(("a", P.EQ, 1), ("b", P.EQ, 2))),
        did("B", where=where(("c", P.EQ, 3))),
        profile("d", P.EXISTS),
        ast.Or((C,)),
    ))
    text = 'any(did "A" followed by "B" within 2 hours with the same k, `l`, not did "C")'
    assert parse_filter(text) == ast.Or((did("A", followed_by=ast.FollowUp("B", 2, same_properties=("k", "l"))),
                                         ast.Not(C)))


# ---------------------------------------------------------------- round trips over random trees

metric_names = st.text(min_size=1, max_size=12).map(canonical_metric_name).filter(bool)
property_names = st.one_of(
    st.sampled_from(sorted(KEYWORDS)),
    st.sampled_from(sorted(KEYWORDS)).map(str.upper),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,8}", fullmatch=True),
    st.text(st.characters(exclude_characters='"`\\'), min_size=1, max_size=10),
)
nasty_strings = st.text(st.one_of(st.sampled_from('"\\\n\t\'`,()[] ’'), st.characters()), max_size=10)
wide_values = st.one_of(json_scalars(), nasty_strings)


@settings(deadline=None)
@given(st.data())
def test_print_then_parse_gives_back_the_tree(data: st.DataObject) -> None:
    metrics = data.draw(st.lists(metric_names, min_size=1, max_size=4), label="metrics")
    properties = data.draw(st.lists(property_names, min_size=1, max_size=5, unique=True), label="properties")
    segment_ids = data.draw(st.lists(nasty_strings, max_size=3), label="segment_ids")
    times = datetimes(1, 9998)
    tree = data.draw(filters(metrics, properties, wide_values, segment_ids, max_leaves=8, times=times), label="tree")
    check_filter(tree)
    text = print_filter(tree)
    assert parse_filter(text) == tree, text


@given(filters(["Placed Order", STARTED.name], ["channel", "n"], st.sampled_from(["SMS", "", 0, 1.5, True]),
               ["1"], profile_properties=ast.PROFILE_BUILTINS))
def test_small_vocabulary_trees_are_valid_and_round_trip(tree: ast.Filter) -> None:
    check_filter(tree)
    assert parse_filter(print_filter(tree)) == tree


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "line", "column", "says"), [
    ("did foo", 1, 5, "expected a metric name in double quotes or 'not', got 'foo'"),
    ('did "A" in last 7 days', 1, 12, "expected 'the' or 'calendar', got 'last'"),
    ('did "A" in the last 7 dayz', 1, 23, "expected 'days', 'day', 'hours', 'hour' or 'calendar', got 'dayz'"),
    ('did "A"\n  and profile x = \n', 2, 18, "expected a JSON value"),
    ('did "A"\nand\n  profile x ~ 1', 3, 13, "expected an operator (=, !="),
    ('did "A" where x = 1,\n  did "B"', 1, 20, "expected a property name after ','"),
    ('did "A" where in = 1', 1, 15, "'in' is a keyword: write `in`"),
    ('(did "A"', 1, 9, "expected 'where', a count such as"),
    ('did "A" at least -1 times', 1, 18, "expected a whole number, got '-1'"),
    ('did "A" since yesterday', 1, 15, "expected a datetime such as 2026-11-01T00:00:00Z, got 'yesterday'"),
    ('did "A" since 2026-02-30', 1, 15, "2026-02-30 is not a valid datetime"),
    ('did "A" followed by "B"', 1, 24, "expected 'where' or 'within', got the end of the text"),
    ('did "A" where x = "open\n"', 1, 19, "not closed on its line"),
    ('did ""', 1, 5, "a metric name cannot be empty"),
    ("", 1, 1, "got the end of the text"),
    ('did "A" did "B"', 1, 9, "'followed by', 'not followed by', 'with', 'and', 'or' or the end of the text, got 'did'"),
    ("all(,)", 1, 5, "got ','"),
    ("profile x = 1e400", 1, 13, "too large"),
    ('did "A" with sum of x >= 1e400', 1, 26, "too large"),
    ('did "A" with sum of x >= "1"', 1, 26, "expected a number, got '\"1\"'"),
    ('did "A" with sum of x in [1]', 1, 23, "expected a comparison (=, !=, >, >=, <, <=), got 'in'"),
    ('did "A" with total >= 1', 1, 14, "expected 'sum', 'average', 'min', 'max' or 'distinct'"),
    ('did "A" with sum of count >= 1', 1, 21, "'count' is a keyword: write `count`"),
    ('did "A" in calendar days 7 to 1 ago', 1, 31, "write the smaller number first"),
    ('did "A" today in time zone Europe/Paris', 1, 28,
     'expected a time zone name in double quotes such as "Europe/Paris", got \'Europe\''),
    ('did "A" in the last 7 days with sum of x > 1', 1, 28, "got 'with'"),
])
def test_syntax_errors_name_line_column_and_what_was_expected(text: str, line: int, column: int, says: str) -> None:
    with pytest.raises(UserInputError) as raised:
        parse_filter(text)
    assert raised.value.message.startswith(f"line {line}, column {column}: "), raised.value.message
    assert says in raised.value.message
    assert raised.value.details == {"line": line, "column": column}


def test_unprintable_property_names_are_refused() -> None:
    with pytest.raises(ValueError):
        print_filter(profile("a`b", P.EQ, 1))
    with pytest.raises(ValueError):
        print_filter(profile("n", P.EQ, float("nan")))
