"""PostgreSQL's differences: jsonb property access, strpos, code-point collation, writes side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.sql.elements import ColumnElement

from store.dialects.base import Predicate, StoreDialect


class PostgreSQLDialect(StoreDialect):
    """PostgreSQL: jsonb (->, ->>, jsonb_typeof and containment), strpos, COLLATE "C", writes side by side."""

    name = "postgresql"
    pages_in_one_row = False
    inserts_by_executemany = False
    inserts_by_copy = True
    list_chunk = None
    writes_side_by_side = True
    finishes_csv_lines = True
    max_segment_uses = None

    def substring_found(self, text: Any, part: Any) -> Predicate:
        return sa.func.strpos(text, part) > 0

    def code_point_order(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        return text.collate("C")

    def json_object_text(self, pairs: Sequence[Any]) -> ColumnElement[str]:
        return sa.cast(sa.func.json_build_object(*pairs), sa.Text)

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def among(self, column: Any, name: str, item_type: Any) -> Predicate:
        # One array parameter: an IN list of a thousand values was a thousand parameters, each rendered with a cast.
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(item_type)))

    def copy_rows(self, connection: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        # asyncpg's binary COPY, on the driver's connection inside the transaction SQLAlchemy began on it.
        driver = cast(AdaptedConnection, connection.connection.dbapi_connection)
        driver.run_async(lambda asyncpg: asyncpg.copy_records_to_table(table, records=rows, columns=list(columns)))


    @staticmethod
    def _get(doc: Any, key: str) -> Any:
        return sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)]

    @staticmethod
    def _jsonb(value: Any) -> Any:
        return sa.cast(sa.literal(orjson.dumps(value).decode(), sa.String), postgresql.JSONB)

    def _type(self, doc: Any, key: str) -> Any:
        return sa.func.jsonb_typeof(self._get(doc, key))

    def exists(self, doc: Any, key: str) -> Predicate:
        kind = self._type(doc, key)
        return sa.and_(kind.is_not(None), kind != "null")

    def equals_any(self, doc: Any, key: str, values: list[Any]) -> Predicate:
        # A list of scalars contains [v] exactly when v equals one of them (numbers by value).
        found = sa.func.jsonb_build_array(self._get(doc, key))
        return sa.and_(self._get(doc, key).is_not(None), self._jsonb(values).op("@>")(found))

    def contains(self, doc: Any, key: str, value: Any) -> Predicate:
        element = self._get(doc, key)
        in_list = sa.and_(
            sa.func.jsonb_typeof(element) == "array",
            element.op("@>")(sa.func.jsonb_build_array(self._jsonb(value))),
        )
        if not isinstance(value, str):
            return in_list
        in_text = sa.func.strpos(self.text_value(doc, key), sa.literal(value, sa.String)) > 0
        return sa.or_(in_list, in_text).self_group()

    def text_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        # COLLATE "C" compares code points, as SQLite and Python do.
        text = sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)].astext
        return sa.case((self._type(doc, key) == "string", text)).collate("C")

    def number_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        text = sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)].astext
        return sa.case((self._type(doc, key) == "number", sa.cast(text, sa.Numeric)))

    def same_value(self, doc: Any, other: Any, key: str) -> Predicate:
        return sa.and_(self._type(doc, key) != "null", self._get(doc, key) == self._get(other, key))

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        kind = self._type(doc, key)
        text = sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)].astext
        return sa.case(
            (kind.in_(["string", "boolean"]), text),
            (sa.and_(kind == "number", text.op("~")("^-?[0-9]+$")), text),
        )
