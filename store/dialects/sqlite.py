"""SQLite's differences: JSON1 property access, instr, a single writer, pages read as one row, and the
SQLAlchemy dialects of a Store's engines, which render FROM hints.

SQLite's INDEXED BY and NOT INDEXED are table hints, written `select(...).with_hint(table, "INDEXED BY ix",
"sqlite")`; SQLAlchemy's SQLite compiler drops every FROM hint. The dialects below compile with one that
renders them as given. They are registered with SQLAlchemy under drivers of their own
(`sqlite+segmentql_aiosqlite://`, `sqlite+segmentql_pysqlite://`), which only a Store's engines name
(`store.dialects.store_url`): any other engine in the process compiles as SQLAlchemy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import registry, sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.sql.elements import ColumnElement

from store.dialects.base import ListItems, Predicate, StoreDialect, json_numbers


class SQLiteDialect(StoreDialect):
    """SQLite: JSON1 (json_type / json_extract on a quoted-label path), instr, one writer at a time."""

    name = "sqlite"
    pages_in_one_row = True
    inserts_by_executemany = True
    inserts_by_copy = False
    list_chunk = 500
    writes_side_by_side = False
    finishes_csv_lines = False
    max_segment_uses = 2048  # keeps its parsing well under a second (docs/performance.md)

    def substring_found(self, text: Any, part: Any) -> Predicate:
        return sa.func.instr(text, part) > 0

    def code_point_order(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text  # SQLite's BINARY collation is code-point order

    def json_object_text(self, pairs: Sequence[Any]) -> ColumnElement[str]:
        return sa.func.json_object(*pairs, type_=sa.Text)

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)


    @staticmethod
    def _path(key: str) -> Any:
        return sa.literal(f'$."{key}"', sa.String)

    def _type(self, doc: Any, key: str) -> Any:
        return sa.func.json_type(doc, self._path(key))

    def _value(self, doc: Any, key: str) -> Any:
        return sa.func.json_extract(doc, self._path(key))

    def exists(self, doc: Any, key: str) -> Predicate:
        kind = self._type(doc, key)
        return sa.and_(kind.is_not(None), kind != "null")

    @staticmethod
    def _mentions(doc: Any, text: str) -> Predicate:
        """A cheap necessary condition: the document's JSON text holds `text` JSON-escaped.

        Documents are written by orjson (store/engine.py), which escapes a string character by
        character, so a string value, and any piece of one, appears escaped in the stored text.
        """
        return sa.func.instr(doc, sa.literal(orjson.dumps(text).decode()[1:-1], sa.String)) > 0

    def equals_any(self, doc: Any, key: str, values: list[Any]) -> Predicate:
        kind, value = self._type(doc, key), self._value(doc, key)
        strings = [v for v in values if isinstance(v, str)]
        numbers = json_numbers(values)
        booleans = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
        options: list[Predicate] = []
        if strings == values and len(strings) == 1 and strings[0]:
            return sa.and_(self._mentions(doc, strings[0]), kind == "text", value == strings[0])
        if strings:
            options.append(sa.and_(kind == "text", value.in_(strings)))
        if numbers:
            options.append(sa.and_(kind.in_(["integer", "real"]), value.in_(numbers)))
        if booleans:
            options.append(kind.in_(booleans))
        return sa.or_(*options).self_group()

    def contains(self, doc: Any, key: str, value: Any) -> Predicate:
        items = sa.func.json_each(doc, self._path(key)).table_valued("key", "value", "type").alias("items")
        if isinstance(value, str):
            # json_each yields a list's items (integer keys) and a string itself (no key): a string
            # equal to the value contains it, so one pass over the JSON answers both common cases;
            # an object's members (text keys) never count. Other strings: the substring test.
            equal_item = sa.and_(items.c.type == "text", items.c.value == value, sa.func.typeof(items.c.key) != "text")
            in_text = sa.and_(self._type(doc, key) == "text", sa.func.instr(self._value(doc, key), value) > 0)
            either = sa.or_(sa.exists().select_from(items).where(equal_item), in_text).self_group()
            return sa.and_(self._mentions(doc, value), either) if value else either
        if isinstance(value, bool):
            item_matches = items.c.type == ("true" if value else "false")
        else:
            item_matches = sa.and_(items.c.type.in_(["integer", "real"]), items.c.value == value)
        return sa.and_(self._type(doc, key) == "array", sa.exists().select_from(items).where(item_matches))

    def text_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        return sa.case((self._type(doc, key) == "text", self._value(doc, key)))

    def number_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        return sa.case((self._type(doc, key).in_(["integer", "real"]), self._value(doc, key)))

    def same_value(self, doc: Any, other: Any, key: str) -> Predicate:
        kind, other_kind = self._type(doc, key), self._type(other, key)
        numeric = ["integer", "real"]
        same_kind = sa.or_(kind == other_kind, sa.and_(kind.in_(numeric), other_kind.in_(numeric)))
        return sa.and_(kind != "null", same_kind, self._value(doc, key) == self._value(other, key))

    def number_double(self, doc: Any, key: str) -> ColumnElement[Any]:
        return sa.case((self._type(doc, key).in_(["integer", "real"]), sa.cast(self._value(doc, key), sa.Float)))

    def rounded(self, figure: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.func.round(figure, 6, type_=sa.Float)  # halves away from zero

    def list_items(self, doc: Any, key: str, name: str, promoted: Any = None) -> ListItems:
        is_list = self._type(doc, key) == "array"
        value: ColumnElement[Any] = sa.case((is_list, None), else_=self._distinct(self._type(doc, key), self._value(doc, key)))
        if promoted is not None:
            # A string is in its column: the JSON is read only when the column is NULL.
            is_list, value = sa.and_(promoted.is_(None), is_list), sa.func.coalesce(promoted, value)
        # json_each is given the document only when the value is a list: other events pass no JSON to it.
        items = sa.func.json_each(sa.case((is_list, doc)), self._path(key)).table_valued("key", "value", "type").alias(name)
        value = sa.func.coalesce(self._distinct(items.c.type, items.c.value), value)
        return ListItems(source=items, on=sa.true(), value=value, first=sa.or_(items.c.key.is_(None), items.c.key == 0))

    @staticmethod
    def _distinct(kind: Any, value: Any) -> ColumnElement[Any]:
        """A value told apart by its JSON type as SQLite compares: numbers as numbers (1 = 1.0), strings as text,
        booleans and nested lists or objects as blobs (never equal to a number or a string)."""
        return sa.case(
            (kind.in_(["integer", "real", "text"]), value),
            (kind == "true", sa.literal(b"\x01", sa.LargeBinary)),
            (kind == "false", sa.literal(b"\x00", sa.LargeBinary)),
            (kind.in_(["array", "object"]), sa.cast(value, sa.LargeBinary)),
        )

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        kind, value = self._type(doc, key), self._value(doc, key)
        return sa.case(
            (kind == "text", value),
            (kind == "integer", sa.cast(value, sa.String)),
            (kind.in_(["true", "false"]), kind),
        )


# ---------------------------------------------------------------- SQLAlchemy dialects of a Store

ASYNC_DRIVER = "segmentql_aiosqlite"
SYNC_DRIVER = "segmentql_pysqlite"


class HintedSQLiteCompiler(SQLiteCompiler):
    """SQLite's statement compiler, with FROM hints (INDEXED BY, NOT INDEXED) written after their table."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


class AioSQLiteDialect(SQLiteDialect_aiosqlite):
    """aiosqlite, compiling with HintedSQLiteCompiler: the async engines of a SQLite store."""

    statement_compiler = HintedSQLiteCompiler
    supports_statement_cache = True


class PySQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, compiling with HintedSQLiteCompiler: the worker threads' engine of a SQLite file."""

    statement_compiler = HintedSQLiteCompiler
    supports_statement_cache = True


registry.register(f"sqlite.{ASYNC_DRIVER}", __name__, AioSQLiteDialect.__name__)
registry.register(f"sqlite.{SYNC_DRIVER}", __name__, PySQLiteDialect.__name__)
