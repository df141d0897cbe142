"""PostgreSQL's differences: jsonb property access, strpos, code-point collation, writes side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, registry
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg, PGDialect_asyncpg
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import count as count_function

from store.dialects.base import ListItems, Predicate, StoreDialect


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
        return sa.and_(self._get(doc, key).is_not(None), self._jsonb(values).op("@>", is_comparison=True)(found))

    def contains(self, doc: Any, key: str, value: Any) -> Predicate:
        # Only an array contains an array: `@>` alone tests that the value is a list holding `value`.
        in_list = self._get(doc, key).op("@>", is_comparison=True)(self._jsonb([value]))
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

    def number_double(self, doc: Any, key: str) -> ColumnElement[Any]:
        text = sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)].astext
        return sa.case((self._type(doc, key) == "number", sa.cast(text, postgresql.DOUBLE_PRECISION)))

    def rounded(self, figure: ColumnElement[Any]) -> ColumnElement[Any]:
        # round(numeric, 6) rounds halves away from zero; round(double) takes no places.
        return sa.cast(sa.func.round(sa.cast(figure, sa.Numeric), 6), postgresql.DOUBLE_PRECISION)

    def list_items(self, doc: Any, key: str, name: str, promoted: Any = None) -> ListItems:
        value, kind = self._get(doc, key), self._type(doc, key)
        is_list = kind == "array"
        if promoted is not None:  # a string is in its column: the JSON is read only when the column is NULL
            is_list = sa.and_(promoted.is_(None), is_list)
        elements = sa.func.jsonb_array_elements(sa.case((is_list, value), else_=sa.cast(sa.literal("[]"), postgresql.JSONB)))
        items = elements.table_valued(sa.column("value", postgresql.JSONB), with_ordinality="n").render_derived(name)
        # jsonb equality is JSON equality: numbers by value (1 = 1.0), types apart ("1" is not 1).
        either = sa.case((is_list, items.c.value), else_=value)
        distinct: ColumnElement[Any] = sa.case((sa.func.jsonb_typeof(either) != "null", either))
        if promoted is not None:
            distinct = sa.case((promoted.is_not(None), sa.func.to_jsonb(promoted, type_=postgresql.JSONB)), else_=distinct)
        return ListItems(source=items, on=sa.true(), value=distinct, first=sa.or_(items.c.n.is_(None), items.c.n == 1))

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        kind = self._type(doc, key)
        text = sa.type_coerce(doc, postgresql.JSONB)[sa.literal(key, sa.String)].astext
        return sa.case(
            (kind.in_(["string", "boolean"]), text),
            (sa.and_(kind == "number", text.op("~")("^-?[0-9]+$")), text),
        )


# ---------------------------------------------------------------- the SQLAlchemy dialect of a Store

ASYNCPG_DRIVER = "segmentql_asyncpg"


class SetOperandsPGCompiler(PGCompiler_asyncpg):
    """PostgreSQL's statement compiler with two rewrites of redundant DISTINCTs (docs/performance.md): none in a
    SELECT that is an operand of UNION, INTERSECT or EXCEPT, which remove duplicates themselves; and
    `count(*) FROM (SELECT DISTINCT c …)` as `count(DISTINCT c) FROM (SELECT c …)`, which plans better."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self._counted_distinct: set[int] = set()  # the ids of SELECTs whose DISTINCT a count(DISTINCT) does
        super().__init__(*args, **kw)

    def visit_select(self, select_stmt: Any, *args: Any, **kw: Any) -> Any:
        return super().visit_select(self._distinct_count(select_stmt), *args, **kw)

    def get_select_precolumns(self, select: Any, **kw: Any) -> str:
        if select._distinct and not select._distinct_on and (
                id(select) in self._counted_distinct or self._operand_of_a_set_operation(select)):
            return ""
        return str(super().get_select_precolumns(select, **kw))

    def _distinct_count(self, select: Any) -> Any:
        """`select` as `count(DISTINCT c)` over its subquery without DISTINCT, when it counts a DISTINCT c; else itself."""
        columns = list(select.selected_columns)
        if len(columns) != 1 or not isinstance(columns[0], count_function) or select._where_criteria or select._group_by_clauses:
            return select
        froms = select.get_final_froms()  # costly on a large statement (it compiles): only for a count's SELECT
        if len(froms) != 1:
            return select
        counted, source = columns[0], froms[0]
        inner = source.element if isinstance(source, sa.Subquery) else None
        if not (str(counted) == "count(*)" and isinstance(inner, sa.Select)
                and inner._distinct and not inner._distinct_on and len(inner.selected_columns) == 1
                and inner._limit_clause is None and inner._offset_clause is None and not inner._group_by_clauses):
            return select
        self._counted_distinct.add(id(inner))
        return sa.select(sa.func.count(sa.distinct(source.c[0]))).select_from(source)

    def _operand_of_a_set_operation(self, select: Any) -> bool:
        enclosing = self.stack[-2]["selectable"] if len(self.stack) > 1 else None
        return (isinstance(enclosing, sa.CompoundSelect) and enclosing.keyword.name in ("UNION", "INTERSECT", "EXCEPT")
                and select._limit_clause is None and select._offset_clause is None)


class SegmentQLAsyncpgDialect(PGDialect_asyncpg):
    """asyncpg, compiling with SetOperandsPGCompiler: the engines of a PostgreSQL store."""

    statement_compiler = SetOperandsPGCompiler
    supports_statement_cache = True


registry.register(f"postgresql.{ASYNCPG_DRIVER}", __name__, "SegmentQLAsyncpgDialect")
