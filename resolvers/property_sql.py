"""PropertyCondition → SQL predicate over a JSON object column, one generator per dialect.

Every predicate here is a positive op (EQ, IN, CONTAINS, ordering, EXISTS, STARTS_WITH) and
false, never NULL-true, when the key is absent; negated ops are `not` of these (see `matches`).
Keys and values are always bind parameters.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from resolvers.language.ast import NEGATED_OPS, PropertyCondition, PropertyOp

Predicate = ColumnElement[bool]
ORDERING = {
    PropertyOp.GT: "__gt__", PropertyOp.GTE: "__ge__", PropertyOp.LT: "__lt__", PropertyOp.LTE: "__le__",
}


def matches(
    dialect: PropertyDialect, doc: Any, condition: PropertyCondition, promoted: dict[str, Any] | None = None
) -> Predicate:
    """The predicate of any op: negated ops hold exactly where their positive twin does not.

    `promoted` maps property keys to columns holding their string values, used for string equality.
    """
    op = NEGATED_OPS.get(condition.op, condition.op)
    values = condition.value if op is PropertyOp.IN else [condition.value]
    column = (promoted or {}).get(condition.property)
    if column is not None and op in (PropertyOp.EQ, PropertyOp.IN) and all(isinstance(v, str) for v in values):
        inner: Predicate = column.in_(values) if values else sa.false()
    else:
        inner = dialect.positive(doc, condition.property, op, condition.value)
    if op is condition.op:
        return inner
    return sa.not_(sa.func.coalesce(inner, sa.false()))


def _numbers(values: list[Any]) -> list[Any]:
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


class PropertyDialect:
    """One SQL dialect's JSON access; subclasses give the primitives."""

    def positive(self, doc: Any, key: str, op: PropertyOp, value: Any) -> Predicate:
        if op is PropertyOp.EXISTS:
            return self.exists(doc, key)
        if op is PropertyOp.EQ:
            return self.equals_any(doc, key, [value])
        if op is PropertyOp.IN:
            return self.equals_any(doc, key, list(value)) if value else sa.false()
        if op is PropertyOp.CONTAINS:
            return self.contains(doc, key, value)
        if op is PropertyOp.STARTS_WITH:
            text = self.text_value(doc, key)
            return sa.and_(text.is_not(None), sa.func.substr(text, 1, len(value)) == sa.literal(value))
        compare = ORDERING[op]
        if isinstance(value, str):
            return getattr(self.text_value(doc, key), compare)(sa.literal(value)).self_group()
        return getattr(self.number_value(doc, key), compare)(sa.literal(value)).self_group()

    def exists(self, doc: Any, key: str) -> Predicate:
        raise NotImplementedError

    def equals_any(self, doc: Any, key: str, values: list[Any]) -> Predicate:
        raise NotImplementedError

    def contains(self, doc: Any, key: str, value: Any) -> Predicate:
        raise NotImplementedError

    def text_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The value when it is a JSON string, else NULL."""
        raise NotImplementedError

    def number_value(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The value when it is a JSON number, else NULL."""
        raise NotImplementedError

    def same_value(self, doc: Any, other: Any, key: str) -> Predicate:
        """Both documents hold the key, not null, with equal values."""
        raise NotImplementedError

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The value as text for grouping: strings as they are, integers in decimal, booleans as
        true/false; NULL when absent, null, a fractional number, a list or an object."""
        raise NotImplementedError


class SQLiteProperties(PropertyDialect):
    """SQLite's JSON1: json_type / json_extract on a quoted-label path."""

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
        numbers = _numbers(values)
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

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        kind, value = self._type(doc, key), self._value(doc, key)
        return sa.case(
            (kind == "text", value),
            (kind == "integer", sa.cast(value, sa.String)),
            (kind.in_(["true", "false"]), kind),
        )


class PostgresProperties(PropertyDialect):
    """PostgreSQL's jsonb: ->, ->>, jsonb_typeof and containment."""

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


def property_dialect(name: str) -> PropertyDialect:
    return PostgresProperties() if name == "postgresql" else SQLiteProperties()
