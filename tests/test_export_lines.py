"""Export lines rendered by the database equal what the csv module and a JSON encoder write, on both stores."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resolvers.export_lines import csv_line, csv_rendering, finish_csv, join_lines, json_line

NAMES = ("id", "email", "first_name")
# Whatever a profile field can hold through the API: any text but U+0000 (refused before any SQL),
# with the characters that decide CSV quoting made frequent.
field_texts = st.text(
    alphabet=st.one_of(st.sampled_from(',"\r\n \'é🛍\t;'),
                       st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
    max_size=12,
)
records = st.tuples(st.integers(min_value=1, max_value=2**53), st.none() | field_texts, st.none() | field_texts)


def _columns(record: tuple[int, str | None, str | None]) -> list[Any]:
    identifier, email, first_name = record
    return [sa.literal(identifier, sa.BigInteger), sa.literal(email, sa.String), sa.literal(first_name, sa.String)]


def _python_csv(records: list[tuple[int, str | None, str | None]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(records)  # None is an empty field, as the export writes NULL
    return buffer.getvalue().encode()


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=4))
@example([(1, special, f"a{special}b") for special in (",", '"', "\r", "\n")] + [(2, "", None)])
@example([(1, "a\rb", None), (2, "plain", "")])  # one special alone in a chunk: each must be noticed
@example([(1, "a\nb", None), (2, "plain", "")])
@example([(1, 'a"b', None), (2, "plain", "")])
@example([(1, "a,b", None), (2, "plain", "")])
def test_rendered_lines_equal_the_csv_module_and_json(
    runner_and_store: Any, chosen: list[tuple[int, str | None, str | None]]
) -> None:
    """Every rendering on this store (its own CSV one, the SQL-only CSV line, JSON) for a chunk of records."""
    runner, store = runner_and_store
    own_csv = [csv_rendering(_columns(record), store.dialect) for record in chosen]
    rendered = [
        sa.select(sa.literal(n).label("n"), rendering.line, csv_line(_columns(record)), json_line(NAMES, _columns(record)))
        for n, (rendering, record) in enumerate(zip(own_csv, chosen, strict=True))
    ]
    rows = runner.run(store.fetch(sa.union_all(*rendered).order_by("n")))

    expected_csv = _python_csv(chosen)
    assert own_csv[0].finish([(row[1],) for row in rows]) == expected_csv
    assert join_lines([(row[2],) for row in rows]) == expected_csv
    lines = join_lines([(row[3],) for row in rows])
    assert lines.endswith(b"\n") and lines.count(b"\n") == len(chosen)  # one object per line
    assert [orjson.loads(line) for line in lines.splitlines()] == [
        {"id": str(identifier), "email": email, "first_name": first_name} for identifier, email, first_name in chosen
    ]


def test_an_empty_chunk_is_empty() -> None:
    assert finish_csv([]) == join_lines([]) == b""
