"""PropertyCondition → SQL predicate over a JSON object column, from the store dialect's JSON primitives.

Every predicate here is a positive op (EQ, IN, CONTAINS, ordering, EXISTS, STARTS_WITH) and
false, never NULL-true, when the key is absent; negated ops are `not` of these (see `matches`).
Keys and values are always bind parameters.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from resolvers.language.ast import NEGATED_OPS, PropertyCondition, PropertyOp
from store.dialects import StoreDialect

Predicate = ColumnElement[bool]
ORDERING = {
    PropertyOp.GT: "__gt__", PropertyOp.GTE: "__ge__", PropertyOp.LT: "__lt__", PropertyOp.LTE: "__le__",
}


def matches(
    dialect: StoreDialect, doc: Any, condition: PropertyCondition, promoted: dict[str, Any] | None = None
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
        inner = positive(dialect, doc, condition.property, op, condition.value)
    if op is condition.op:
        return inner
    return sa.not_(sa.func.coalesce(inner, sa.false()))


def positive(dialect: StoreDialect, doc: Any, key: str, op: PropertyOp, value: Any) -> Predicate:
    """The predicate of a positive op on the document's key."""
    if op is PropertyOp.EXISTS:
        return dialect.exists(doc, key)
    if op is PropertyOp.EQ:
        return dialect.equals_any(doc, key, [value])
    if op is PropertyOp.IN:
        return dialect.equals_any(doc, key, list(value)) if value else sa.false()
    if op is PropertyOp.CONTAINS:
        return dialect.contains(doc, key, value)
    if op is PropertyOp.STARTS_WITH:
        text = dialect.text_value(doc, key)
        return sa.and_(text.is_not(None), sa.func.substr(text, 1, len(value)) == sa.literal(value))
    compare = ORDERING[op]
    if isinstance(value, str):
        return getattr(dialect.text_value(doc, key), compare)(sa.literal(value)).self_group()
    return getattr(dialect.number_value(doc, key), compare)(sa.literal(value)).self_group()
