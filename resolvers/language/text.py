"""The text form of the segment filter language: `parse_filter` text → AST, `print_filter` AST → text.

The grammar, with comments that document the language, is grammar.lark beside this file.
Printing any AST and parsing the text gives back an equal AST.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from resolvers.errors import UserInputError
from resolvers.language import ast as ast
from vocabulary.agent_metrics import canonical_metric_name
from vocabulary.timestamps import parse_datetime

P = ast.PropertyOp
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _error(line: int, column: int, message: str) -> UserInputError:
    return UserInputError(f"line {line}, column {column}: {message}", details={"line": line, "column": column})


def _token_error(token: Token, message: str) -> UserInputError:
    return _error(token.line or 1, token.column or 1, message)


@v_args(inline=True)
class _Build(Transformer[Token, ast.Filter]):
    """Builds AST nodes while the LALR parser reduces (lark's inline transformer)."""

    def start(self, node: ast.Filter) -> ast.Filter:
        return node

    def all_of(self, *items: ast.Filter) -> ast.Filter:
        return ast.And(items)

    def any_of(self, *items: ast.Filter) -> ast.Filter:
        return ast.Or(items)

    def negation(self, item: ast.Filter) -> ast.Filter:
        return ast.Not(item)

    def profile(self, condition: ast.PropertyCondition) -> ast.Filter:
        return ast.ProfileMatch(condition)

    def in_segment(self, token: Token) -> ast.Filter:
        return ast.InSegment(json.loads(token))

    def did(self, condition: ast.EventCondition) -> ast.Filter:
        return ast.Did(condition)

    def did_not(self, condition: ast.EventCondition) -> ast.Filter:
        return ast.DidNot(condition)

    def event_condition(
        self, metric: Token, where: Any, count: Any, having: Any, window: Any, followed_by: Any, not_followed_by: Any
    ) -> ast.EventCondition:
        return ast.EventCondition(self._metric(metric), where or (), count or ast.AtLeast(1), window, followed_by,
                                  not_followed_by, having or ())

    def window_first(
        self, metric: Token, where: Any, window: Any, count: Any, having: Any, followed_by: Any, not_followed_by: Any
    ) -> ast.EventCondition:
        return self.event_condition(metric, where, count, having, window, followed_by, not_followed_by)

    def having(self, *aggregates: ast.AggregateCondition) -> tuple[ast.AggregateCondition, ...]:
        return aggregates

    def aggregate(self, function: ast.AggregateFunction, name: str, op: ast.NumberOp, value: Token) -> ast.AggregateCondition:
        return ast.AggregateCondition(function, name, op, float(self.number(value)))

    def function(self, *words: Token) -> ast.AggregateFunction:
        return _FUNCTIONS_BY_WORDS[" ".join(words).lower()]

    def number_op(self, word: Token) -> ast.NumberOp:
        return _NUMBER_OPS_BY_WORDS[str(word)]

    def today(self, zone: str | None) -> ast.Window:
        return _calendar(ast.CalendarUnit.DAY, 0, 1, zone)

    def yesterday(self, zone: str | None) -> ast.Window:
        return _calendar(ast.CalendarUnit.DAY, 1, 1, zone)

    def this_period(self, unit: ast.CalendarUnit, zone: str | None) -> ast.Window:
        return _calendar(unit, 0, 1, zone)

    def last_period(self, unit: ast.CalendarUnit, zone: str | None) -> ast.Window:
        return _calendar(unit, 1, 1, zone)

    def last_periods(self, n: Token, unit: ast.CalendarUnit, zone: str | None) -> ast.Window:
        return _calendar(unit, 0, self._int(n), zone)

    def periods_ago(self, unit: ast.CalendarUnit, first: Token, last: Token, zone: str | None) -> ast.Window:
        if self._int(last) < self._int(first):
            raise _token_error(last, f"'{first} to {last} ago' counts back from {first}: write the smaller number first")
        return _calendar(unit, self._int(first), self._int(last) - self._int(first) + 1, zone)

    def day(self) -> ast.CalendarUnit:
        return ast.CalendarUnit.DAY

    def week(self) -> ast.CalendarUnit:
        return ast.CalendarUnit.WEEK

    def month(self) -> ast.CalendarUnit:
        return ast.CalendarUnit.MONTH

    def time_zone(self, token: Token) -> str:
        return json.loads(token)  # type: ignore[no-any-return]

    def follow_up(self, metric: Token, where: Any, hours: Token, same: Any) -> ast.FollowUp:
        return ast.FollowUp(self._metric(metric), self._int(hours), where or (), same or ())

    def followed_by(self, follow_up: ast.FollowUp) -> ast.FollowUp:
        return follow_up

    not_followed_by = followed_by

    def where(self, *conditions: ast.PropertyCondition) -> tuple[ast.PropertyCondition, ...]:
        return conditions

    def same_properties(self, *names: str) -> tuple[str, ...]:
        return names

    def at_least(self, n: Token) -> ast.Count:
        return ast.AtLeast(self._int(n))

    def at_most(self, n: Token) -> ast.Count:
        return ast.AtMost(self._int(n))

    def exactly(self, n: Token) -> ast.Count:
        return ast.Exactly(self._int(n))

    def zero_times(self) -> ast.Count:
        return ast.Exactly(0)

    def last_days(self, n: Token) -> ast.Window:
        return ast.LastDays(self._int(n))

    def last_hours(self, n: Token) -> ast.Window:
        return ast.LastHours(self._int(n))

    def since(self, at: Token) -> ast.Window:
        return ast.Since(self._datetime(at))

    def before(self, at: Token) -> ast.Window:
        return ast.Before(self._datetime(at))

    def between(self, start: Token, end: Token) -> ast.Window:
        return ast.Between(self._datetime(start), self._datetime(end))

    def property_condition(self, name: str, op: ast.PropertyOp, value: Any = None) -> ast.PropertyCondition:
        return ast.PropertyCondition(name, op, value)

    def op(self, *words: Token) -> ast.PropertyOp:
        return _OPS_BY_WORDS[" ".join(words).lower()]

    valueless_op = op

    def property_name(self, token: Token) -> str:
        if token.type == "QUOTED_NAME":
            return token[1:-1]
        if token.lower() in KEYWORDS:
            raise _token_error(token, f"'{token}' is a keyword: write `{token}` to use it as a property name")
        return str(token)

    def string(self, token: Token) -> str:
        return json.loads(token)  # type: ignore[no-any-return]

    def number(self, token: Token) -> int | float:
        try:
            number = json.loads(token)
        except ValueError:  # more digits than Python converts
            number = math.inf
        if isinstance(number, float) and math.isinf(number):
            raise _token_error(token, f"the number {_quote(token)} is too large")
        return number  # type: ignore[no-any-return]

    def true(self) -> bool:
        return True

    def false(self) -> bool:
        return False

    def null(self) -> None:
        return None

    def array(self, *items: Any) -> list[Any]:
        return list(items)

    def object(self, *pairs: tuple[str, Any]) -> dict[str, Any]:
        return dict(pairs)

    def pair(self, key: Token, value: Any) -> tuple[str, Any]:
        return json.loads(key), value

    @staticmethod
    def _metric(token: Token) -> str:
        name = canonical_metric_name(json.loads(token))
        if not name:
            raise _token_error(token, "a metric name cannot be empty")
        return name

    @staticmethod
    def _int(token: Token) -> int:
        try:
            return int(token)
        except ValueError:  # more digits than Python converts
            raise _token_error(token, f"the number {_quote(token)} is too large") from None

    @staticmethod
    def _datetime(token: Token) -> Any:
        try:
            return parse_datetime(str(token))
        except ValueError as error:
            raise _token_error(token, f"{token} is not a valid datetime ({error})") from None


def _calendar(unit: ast.CalendarUnit, offset: int, count: int, zone: str | None) -> ast.Calendar:
    return ast.Calendar(unit, offset, count, "UTC" if zone is None else zone)


_GRAMMAR = (Path(__file__).parent / "grammar.lark").read_text()
_PARSER = Lark(_GRAMMAR, parser="lalr", transformer=_Build(), maybe_placeholders=True)
_TERMINALS = {t.name: t for t in _PARSER.terminals}
# Every keyword is a terminal /word\b/i; the printer writes property names that are keywords in backticks.
KEYWORDS = frozenset(m.group(1) for t in _PARSER.terminals if (m := re.fullmatch(r"([a-z]+)\\b", t.pattern.value)))


def parse_filter(text: str) -> ast.Filter:
    """The AST of a filter in the text form; a syntax error is a UserInputError naming line and column."""
    try:
        return _PARSER.parse(text)  # type: ignore[return-value]
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None


# ---------------------------------------------------------------- syntax errors

# Expected tokens said as one phrase, when the first of them is expected.
_GROUPS = [
    # Keyed by a token only that context takes: a property condition's operator and value, a figure's comparison.
    (("_CONTAINS", "_EQ", "_NE", "_GT", "_GE", "_LT", "_LE", "_IN", "_NOT", "_STARTS", "_EXISTS"),
     "an operator (=, !=, >, >=, <, <=, in, not in, contains, not contains, starts with, exists, not exists)"),
    (("_EQ", "_NE", "_GT", "_GE", "_LT", "_LE"), "a comparison (=, !=, >, >=, <, <=)"),
    (("STRING", "NUMBER", "_TRUE", "_FALSE", "_NULL", "_LSQB", "_LBRACE"),
     "a JSON value (a string in double quotes, a number, true, false, null or a [list])"),
    (("_SINCE", "_IN", "_BEFORE", "_BETWEEN", "_TODAY", "_YESTERDAY", "_THIS", "_LAST"),
     "a time window such as 'in the last 7 days', 'since 2026-11-01' or 'yesterday'"),
    (("_EXACTLY", "_AT", "_ZERO"), "a count such as 'at least 2 times' or 'zero times'"),
]
_PHRASES = {
    "METRIC": "a metric name in double quotes",
    "SEGMENT_ID": "a segment id in double quotes",
    "ZONE_NAME": 'a time zone name in double quotes such as "Europe/Paris"',
    "NAME": "a property name",
    "QUOTED_NAME": "a property name",
    "STRING": "a string in double quotes",
    "INT": "a whole number",
    "NUMBER": "a number",
    "DATETIME": "a datetime such as 2026-11-01T00:00:00Z",
    "_DIDNT": "'didn't'",
    "_IN": "'in segment'",
    "_FOLLOWED": "'followed by'",
    "_NEXT": "','",
    "$END": "the end of the text",
}
_ORDER = {name: i for i, name in enumerate(re.findall(r"^(\w+)(?:\.\d+)?:", _GRAMMAR, re.M)) if name in _TERMINALS}


def _syntax_error(text: str, error: UnexpectedInput) -> UserInputError:
    expected = _acceptable(text, error)
    line, column = error.line, error.column
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":  # lark puts it on the last token
        line, column, got = error.token.end_line or 1, error.token.end_column or 1, _PHRASES["$END"]
    elif isinstance(error, UnexpectedToken):
        if error.token.type == "_COMMA" and "_NEXT" in expected:
            return _error(line, column, "expected a property name after ','")
        got = _quote(error.token)
    elif isinstance(error, UnexpectedCharacters):
        got = {'"': "a string in double quotes that is not closed on its line or has a bad escape",
               "`": "a backtick that is not closed"}.get(error.char, _quote(error.char))
    else:  # pragma: no cover - lark's LALR parser raises only the two above
        got = "something else"
    return _error(line, column, f"expected {_expected_words(expected)}, got {got}")


def _acceptable(text: str, error: UnexpectedInput) -> set[str]:
    """The tokens the parser takes where it failed (LALR's own sets in errors are approximate)."""
    stop = error.token.start_pos if isinstance(error, UnexpectedToken) and error.token.type != "$END" else None
    parser = _PARSER.parse_interactive(text)
    try:
        for token in parser.iter_parse():
            if token.start_pos == stop:
                break
    except UnexpectedInput:
        pass
    return set(parser.accepts())


def _expected_words(expected: set[str]) -> str:
    left, ranked = set(expected), list[tuple[float, str]]()
    for tokens, phrase in _GROUPS:
        if tokens[0] in left:
            ranked.append((_ORDER[tokens[0]], phrase))
            left -= set(tokens)
    if "_NOT" in left and "_AND" in left:  # after a whole condition, `not` starts `not followed by`
        ranked.append((_ORDER["_FOLLOWED"] + 0.5, "'not followed by'"))
        left.remove("_NOT")
    ranked += [(_ORDER.get(name, math.inf), _phrase(name)) for name in left]
    phrases = list(dict.fromkeys(phrase for _, phrase in sorted(ranked)))
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _phrase(name: str) -> str:
    if name in _PHRASES:
        return _PHRASES[name]
    return "'" + _TERMINALS[name].pattern.value.removesuffix("\\b") + "'"


def _quote(text: str) -> str:
    return f"'{text}'" if len(text) <= 40 else f"'{text[:40]}…'"


# ---------------------------------------------------------------- printing


def print_filter(node: ast.Filter) -> str:
    """The text form of an AST; `parse_filter` of it gives back an equal AST."""
    return _print(node, 0)


# Binding levels: 0 any expression, 1 an operand of `or`, 2 of `and`, 3 of `not`.
def _print(node: ast.Filter, level: int) -> str:
    match node:
        case ast.Or(items) if len(items) >= 2:
            text = " or ".join(_print(item, 1) for item in items)
            return f"({text})" if level >= 1 else text
        case ast.And(items) if len(items) >= 2:
            text = " and ".join(_print(item, 2) for item in items)
            return f"({text})" if level >= 2 else text
        case ast.And(items) | ast.Or(items):
            name = "all" if isinstance(node, ast.And) else "any"
            return f"{name}({', '.join(_print(item, 0) for item in items)})"
        case ast.Not(item):
            return f"not {_print(item, 3)}"
        case ast.Did(condition):
            return f"did {_event(condition)}"
        case ast.DidNot(condition):
            return f"didn't {_event(condition)}"
        case ast.ProfileMatch(condition):
            return f"profile {_condition(condition)}"
        case ast.InSegment(segment_id):
            return f"in segment {_json(segment_id)}"
    raise TypeError(f"not a filter node: {node!r}")


def _event(c: ast.EventCondition) -> str:
    parts = [_json(c.metric), _where(c.where)]
    match c.count:
        case ast.Exactly(0):
            parts.append(" zero times")
        case ast.AtLeast(1):
            pass
        case ast.AtLeast(n) | ast.AtMost(n) | ast.Exactly(n):
            how = {ast.AtLeast: "at least", ast.AtMost: "at most", ast.Exactly: "exactly"}[type(c.count)]
            parts.append(f" {how} {_plural(n, 'time')}")
    if c.having:
        parts.append(" with " + ", ".join(
            f"{_FUNCTIONS[h.function]} of {_name(h.property)} {_NUMBER_OPS[h.op]} {_number(h.value)}" for h in c.having))
    match c.within:
        case ast.LastDays(n):
            parts.append(f" in the last {_plural(n, 'day')}")
        case ast.LastHours(n):
            parts.append(f" in the last {_plural(n, 'hour')}")
        case ast.Since(at):
            parts.append(f" since {_datetime(at)}")
        case ast.Before(at):
            parts.append(f" before {_datetime(at)}")
        case ast.Between(start, end):
            parts.append(f" between {_datetime(start)} and {_datetime(end)}")
        case ast.Calendar() as calendar:
            parts.append(f" {_calendar_phrase(calendar)}")
    for keyword, follow_up in (("followed by", c.followed_by), ("not followed by", c.not_followed_by)):
        if follow_up is not None:
            same = ", ".join(_name(k) for k in follow_up.same_properties)
            parts.append(f" {keyword} {_json(follow_up.metric)}{_where(follow_up.where)}"
                         f" within {_plural(follow_up.within_hours, 'hour')}{f' with the same {same}' if same else ''}")
    return "".join(parts)


_OPS = {P.EQ: "=", P.NEQ: "!=", P.IN: "in", P.NOT_IN: "not in", P.CONTAINS: "contains", P.NOT_CONTAINS: "not contains",
        P.GT: ">", P.GTE: ">=", P.LT: "<", P.LTE: "<=", P.STARTS_WITH: "starts with", P.EXISTS: "exists",
        P.NOT_EXISTS: "not exists"}
_OPS_BY_WORDS = {words: op for op, words in _OPS.items()}
F, N = ast.AggregateFunction, ast.NumberOp
_FUNCTIONS = {F.SUM: "sum", F.AVERAGE: "average", F.MIN: "min", F.MAX: "max", F.DISTINCT_COUNT: "distinct count"}
_FUNCTIONS_BY_WORDS = {words: function for function, words in _FUNCTIONS.items()}
_NUMBER_OPS = {N.EQ: "=", N.NEQ: "!=", N.GT: ">", N.GTE: ">=", N.LT: "<", N.LTE: "<="}
_NUMBER_OPS_BY_WORDS = {words: op for op, words in _NUMBER_OPS.items()}
_UNITS = {ast.CalendarUnit.DAY: "day", ast.CalendarUnit.WEEK: "week", ast.CalendarUnit.MONTH: "month"}


def _calendar_phrase(window: ast.Calendar) -> str:
    """The shortest phrase for a calendar window: today, last week, in the last 7 calendar days, …"""
    unit = _UNITS[window.unit]
    if window.count == 1 and window.offset in (0, 1):
        if window.unit is ast.CalendarUnit.DAY:
            phrase = "today" if window.offset == 0 else "yesterday"
        else:
            phrase = f"{'this' if window.offset == 0 else 'last'} {unit}"
    elif window.offset == 0:
        phrase = f"in the last {window.count} calendar {unit}s"
    else:
        phrase = f"in calendar {unit}s {window.offset} to {window.offset + window.count - 1} ago"
    return phrase if window.timezone == "UTC" else f"{phrase} in time zone {_json(window.timezone)}"


def _number(value: float) -> str:
    """A having value as the shortest text that reads back as the same float (100, not 100.0)."""
    if not math.isfinite(value):
        raise ValueError(f"a having value must be finite, got {value}")
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _condition(c: ast.PropertyCondition) -> str:
    if c.op in (P.EXISTS, P.NOT_EXISTS):
        return f"{_name(c.property)} {_OPS[c.op]}"
    return f"{_name(c.property)} {_OPS[c.op]} {_json(c.value)}"


def _where(conditions: tuple[ast.PropertyCondition, ...]) -> str:
    return f" where {', '.join(_condition(c) for c in conditions)}" if conditions else ""


def _name(name: str) -> str:
    if _BARE_NAME.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    if not name or "`" in name:
        raise ValueError(f"property name {name!r} cannot be written in the text form")
    return f"`{name}`"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _datetime(at: Any) -> str:
    return parse_datetime(at).replace(tzinfo=None).isoformat() + "Z"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
