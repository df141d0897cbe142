"""Export rows rendered as lines of text by the database: one column per member, one string per row.

Fetching six columns and quoting them in the csv module was slower, the reading thread and the
sending loop sharing one interpreter lock (docs/performance.md). How far the database goes depends
on the dialect:
- PostgreSQL renders finished CSV and JSON lines (in its own process, beside ours);
- SQLite renders JSON lines, but evaluates the CSV quoting tests slower than Python, so it joins
  the fields with U+0000 (which no stored text holds: the API refuses it) and each chunk is
  finished at once, quoting only in chunks that hold a character that needs it.
The output equals what the csv module (RFC 4180, minimal quoting, CRLF) and a JSON encoder would
write: tests/test_export_lines.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from store.dialects import dialect_named

CSV_SPECIALS = (",", '"', "\r", "\n")
"""Characters that make the csv module quote a field (delimiter, quote, line terminator)."""


class _needs_csv_quotes(FunctionElement[bool]):
    """Whether a text holds one of CSV_SPECIALS: instr() on SQLite, strpos() on PostgreSQL."""

    type = sa.Boolean()
    inherit_cache = True


def _any_position(function: str, element: _needs_csv_quotes, compiler: SQLCompiler, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    found = (f"{function}({text}, {compiler.process(sa.literal(special), **kw)}) > 0" for special in CSV_SPECIALS)
    return f"({' OR '.join(found)})"


@compiles(_needs_csv_quotes)
def _needs_csv_quotes_sqlite(element: _needs_csv_quotes, compiler: SQLCompiler, **kw: Any) -> str:
    return _any_position("instr", element, compiler, **kw)


@compiles(_needs_csv_quotes, "postgresql")
def _needs_csv_quotes_postgresql(element: _needs_csv_quotes, compiler: SQLCompiler, **kw: Any) -> str:
    return _any_position("strpos", element, compiler, **kw)


class _json_object_text(FunctionElement[str]):
    """A JSON object of (key, value, key, value, …) as text: json_object() / json_build_object()::text."""

    type = sa.Text()
    inherit_cache = True


@compiles(_json_object_text)
def _json_object_sqlite(element: _json_object_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(_json_object_text, "postgresql")
def _json_object_postgresql(element: _json_object_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(json_build_object({compiler.process(element.clauses, **kw)}) AS TEXT)"


def _text(value: ColumnElement[Any]) -> ColumnElement[str]:
    return value if isinstance(value.type, sa.String) else sa.cast(value, sa.Text)


def _csv_field(value: ColumnElement[Any]) -> ColumnElement[str]:
    if not isinstance(value.type, sa.String):  # numbers: never quoted
        return sa.func.coalesce(sa.cast(value, sa.Text), sa.literal(""))
    quoted = sa.literal('"') + sa.func.replace(value, sa.literal('"'), sa.literal('""')) + sa.literal('"')
    return sa.case((value.is_(None), sa.literal("")), (_needs_csv_quotes(value), quoted), else_=value)


def _joined(fields: Sequence[ColumnElement[str]], separator: str) -> ColumnElement[str]:
    line = fields[0]
    for field in fields[1:]:
        line = line + sa.literal(separator) + field
    return line


def csv_line(columns: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    """One CSV record with its CRLF: NULL is an empty field, fields quoted only where needed."""
    return _joined([_csv_field(column) for column in columns], ",") + sa.literal("\r\n")


def json_line(names: Sequence[str], columns: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    """One JSON object with its newline: every value as a string (ids too, as Profile.id), NULL as null."""
    pairs = [part for name, column in zip(names, columns, strict=True) for part in (sa.literal(name), _text(column))]
    return _json_object_text(*pairs) + sa.literal("\n")


def join_lines(rows: Sequence[Sequence[str]]) -> bytes:
    """The lines of one chunk (rows of one rendered column) as the bytes to send."""
    return "".join([row[0] for row in rows]).encode()


FIELD_SEPARATOR = "\x00"


def separated_fields(columns: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    """The fields of one record joined by FIELD_SEPARATOR, NULL as empty (as CSV writes it)."""
    return _joined([sa.func.coalesce(_text(column), sa.literal("")) for column in columns], FIELD_SEPARATOR)


def finish_csv(rows: Sequence[Sequence[str]]) -> bytes:
    """A chunk of `separated_fields` rows (records of two or more fields) as CSV: whole-string
    operations, unless a field in the chunk needs quotes."""
    records = [row[0] for row in rows]
    if not records:
        return b""
    chunk = FIELD_SEPARATOR.join(records)
    if not any(special in chunk for special in CSV_SPECIALS):
        return ("\r\n".join(records).replace(FIELD_SEPARATOR, ",") + "\r\n").encode()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(record.split(FIELD_SEPARATOR) for record in records)
    return buffer.getvalue().encode()


class Rendering(NamedTuple):
    """How one export format is produced on one dialect: the SQL line of a member, and a chunk's bytes."""

    line: ColumnElement[str]
    finish: Callable[[Sequence[Sequence[str]]], bytes]


def csv_rendering(columns: Sequence[ColumnElement[Any]], dialect: str) -> Rendering:
    """CSV: finished lines from PostgreSQL; separated fields finished per chunk on SQLite."""
    if dialect_named(dialect).finishes_csv_lines:
        return Rendering(csv_line(columns), join_lines)
    return Rendering(separated_fields(columns), finish_csv)


def json_rendering(names: Sequence[str], columns: Sequence[ColumnElement[Any]], dialect: str) -> Rendering:
    """JSON lines, finished by the database on either dialect."""
    return Rendering(json_line(names, columns), join_lines)
