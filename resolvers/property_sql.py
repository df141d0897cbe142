"""PropertyCondition → SQL predicate over a JSON object column, from the store dialect's JSON primitives.

Every predicate here is a positive op (EQ, IN, CONTAINS, ordering, EXISTS, STARTS_WITH) and
false, never NULL-true, when the key is absent; negated ops are `not` of these (see `matches`).
Keys and values are always bind parameters.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from resolvers.language.ast import NEGATED_OPS, AggregateCondition, AggregateFunction, NumberOp, PropertyCondition, PropertyOp
from store.dialects import StoreDialect
from store.dialects.base import ListItems

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
    return sa.not_(sa.func.coalesce(inner, sa.false(), type_=sa.Boolean))  # a jsonb test is typed jsonb


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


NUMBER_OPS = {
    NumberOp.EQ: "__eq__", NumberOp.NEQ: "__ne__", NumberOp.GT: "__gt__", NumberOp.GTE: "__ge__",
    NumberOp.LT: "__lt__", NumberOp.LTE: "__le__",
}


def figure(
    dialect: StoreDialect, doc: Any, aggregate: AggregateCondition, first: Predicate | None, items: ListItems | None
) -> ColumnElement[Any]:
    """An aggregate over a group of event rows (possibly repeated once per list item: `first` holds on one row
    of each event), rounded to 6 decimal places; NULL when it has no value (AVERAGE, MIN, MAX of no numbers)."""
    if aggregate.function is AggregateFunction.DISTINCT_COUNT:
        assert items is not None
        return sa.func.count(sa.distinct(items.value))  # a whole number: nothing to round
    number = dialect.number_double(doc, aggregate.property)
    if first is not None:
        number = sa.case((first, number))
    found = {
        AggregateFunction.SUM: lambda: sa.func.coalesce(sa.func.sum(number), 0.0),  # the sum of no numbers is 0
        AggregateFunction.AVERAGE: lambda: sa.func.avg(number),
        AggregateFunction.MIN: lambda: sa.func.min(number),
        AggregateFunction.MAX: lambda: sa.func.max(number),
    }[aggregate.function]()
    return dialect.rounded(found)


def figure_holds(aggregate: AggregateCondition, found: ColumnElement[Any]) -> Predicate:
    """The figure compared with the condition's value; false, never NULL, when the figure has no value."""
    compared = getattr(found, NUMBER_OPS[aggregate.op])(sa.literal(aggregate.value, sa.Float))
    return sa.func.coalesce(compared, sa.false())


def figure_at_zero(aggregate: AggregateCondition) -> bool:
    """Whether the condition holds over no events: SUM and DISTINCT_COUNT are 0, the others have no value."""
    if aggregate.function not in (AggregateFunction.SUM, AggregateFunction.DISTINCT_COUNT):
        return False
    return bool(getattr(0.0, NUMBER_OPS[aggregate.op])(aggregate.value))
