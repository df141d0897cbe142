"""What every SQL dialect of the store provides: JSON property access and the few SQL spellings that
differ. One subclass per dialect (store/dialects/sqlite.py, postgresql.py) holds all of its differences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

Predicate = ColumnElement[bool]


class StoreDialect:
    """One dialect's SQL where SQLite and PostgreSQL differ. Keys and values are always bind parameters."""

    name: str
    # A page whose nodes the database writes as JSON comes as one row (SQLite: see resolvers/audiences.py).
    pages_in_one_row: bool
    # A batch of events is inserted by one executemany counted by its rowcount (SQLite), else with
    # RETURNING its ids (asyncpg reports no rowcount for an executemany).
    inserts_by_executemany: bool
    # A batch of events is copied (COPY) into a temporary table and inserted from there in one statement
    # that also merges the first times it brings (PostgreSQL: see resolvers/ingest.py).
    inserts_by_copy: bool
    # How many values one statement binds for a list (`among`): SQLite's bound parameters are limited;
    # None: any number (one array).
    list_chunk: int | None
    # Writes run side by side, so they take locks where SQLite's single writer needs none.
    writes_side_by_side: bool
    # CSV lines are finished by the database (else separated fields are finished per chunk in Python).
    finishes_csv_lines: bool
    # How many uses of saved segments' named subqueries a statement may make: SQLite copies a named
    # subquery into each place that uses it while it parses, so that segments reached along many
    # paths cost it time exponential in their nesting (PostgreSQL plans each once: no bound).
    max_segment_uses: int | None

    # ------------------------------------------------------------ text and rows

    def substring_found(self, text: Any, part: Any) -> Predicate:
        """Whether `part` occurs in `text`."""
        raise NotImplementedError

    def code_point_order(self, text: ColumnElement[Any]) -> ColumnElement[Any]:
        """`text` compared in code-point order, as Python and SQLite compare strings."""
        raise NotImplementedError

    def json_object_text(self, pairs: Sequence[Any]) -> ColumnElement[str]:
        """The text of a JSON object of alternating keys and values."""
        raise NotImplementedError

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that knows ON CONFLICT."""
        raise NotImplementedError

    def among(self, column: Any, name: str, item_type: Any) -> Predicate:
        """`column` equals one of the list bound as `name` (at most `list_chunk` values)."""
        return column.in_(sa.bindparam(name, expanding=True))

    def copy_rows(self, connection: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Copy `rows` into `table` in the connection's transaction, the database's bulk path (`inserts_by_copy`)."""
        raise NotImplementedError

    # ------------------------------------------------------------ JSON properties

    def exists(self, doc: Any, key: str) -> Predicate:
        """The document holds the key with a value other than null."""
        raise NotImplementedError

    def equals_any(self, doc: Any, key: str, values: list[Any]) -> Predicate:
        """The key's value equals one of `values` (same JSON type; numbers by value)."""
        raise NotImplementedError

    def contains(self, doc: Any, key: str, value: Any) -> Predicate:
        """The key's value is a list holding `value`, or a string holding the string `value`."""
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

    # ------------------------------------------------------------ figures over events (having)

    def number_double(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The value as a double when it is a JSON number, else NULL (booleans, strings, lists, absent)."""
        raise NotImplementedError

    def rounded(self, figure: ColumnElement[Any]) -> ColumnElement[Any]:
        """A double rounded to 6 decimal places, halves away from zero, as a double."""
        raise NotImplementedError

    def list_items(self, doc: Any, key: str, name: str, promoted: Any = None) -> ListItems:
        """What to LEFT JOIN to an event's row to read the key's list items, one row per item (one row of
        NULLs when the value is no list or an empty one). `promoted`: a column holding the value when it is
        a string (else NULL), which a dialect may read instead of the JSON."""
        raise NotImplementedError

    def group_text(self, doc: Any, key: str) -> ColumnElement[Any]:
        """The value as text for grouping: strings as they are, integers in decimal, booleans as
        true/false; NULL when absent, null, a fractional number, a list or an object."""
        raise NotImplementedError


@dataclass(frozen=True)
class ListItems:
    """A key's list items joined to its event: `source` LEFT JOIN … ON `on`; `value` is the row's distinct
    value (an item, or the value itself when it is no list; NULL for null and absent, and 1 and 1.0 one
    value, "1" and 1 two); `first` holds on exactly one row of each event."""

    source: Any
    on: ColumnElement[bool]
    value: ColumnElement[Any]
    first: ColumnElement[bool]


def json_numbers(values: list[Any]) -> list[Any]:
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
