"""Golden SQL: every shape the filter compiler chooses between, and every reference segment of the bench, as the
SQL each dialect receives, kept in readable files so that a change to the SQL shows as a diff in review.

Each case is a filter (bench/segments.py's inputs, else the text form of the language) evaluated at a fixed asOf;
tests/fixtures/sql/<dialect>/<case>.sql holds a header (the filter in its canonical text, the saved segments it
names, the asOf, what the compiler made of it) and then the statements `explain` shows for it
(resolvers/audiences.py's `explain_sql`: density probe, set-shape and walk-shape pages, the JSON-node page,
totalCount), compiled by a copy of the app's own engine dialect (`Store(url).engine.dialect`, so SQLite's
INDEXED BY hints render as the app renders them; PostgreSQL through asyncpg, with its bind casts) whose only change
is that placeholders are named rather than positional: `:name_key_1` instead of `?` or `$1`. Values are never
rendered into the SQL text (untrusted values only ever reach the database as parameters); each statement's
values follow it in a `-- parameters:` comment. Trailing spaces are stripped from every line. Nothing connects
to a database: the PostgreSQL fixtures render the same with or without SEGMENTQL_TEST_POSTGRES_URL (when it is
set its URL is used, and `test_a_connected_engine_renders_the_same` checks that connecting changes nothing).
After an intended change to the SQL, rewrite the fixtures with `SEGMENTQL_UPDATE_GOLDEN=1 .venv/bin/python -m
pytest tests/test_golden_sql.py` (which also deletes fixtures of removed cases) and review `git diff tests/fixtures/sql`.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from bench.segments import SEGMENTS, paging_candidates
from resolvers.audiences import compile_prepared, explain_sql
from resolvers.compiler import Audience
from resolvers.language.text import print_filter
from resolvers.segments import checked_filter
from store.engine import Store
from tests.stores import POSTGRES_URL, StoreFactory, store_params
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, RESOLVED, STARTED

FIXTURES = Path(__file__).parent / "fixtures" / "sql"
UPDATE = os.environ.get("SEGMENTQL_UPDATE_GOLDEN", "") not in ("", "0")
DIALECTS = ("sqlite", "postgresql")
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
# A PostgreSQL URL of the app's driver when no test server is configured: the engine is never connected.
OFFLINE_POSTGRES_URL = "postgresql+asyncpg://golden@127.0.0.1:5432/golden"

ORDER = "Placed Order"
VIEWED = "Viewed Product"


@dataclass(frozen=True)
class Case:
    name: str
    pins: str  # what the case holds still: the compiler's choice it shows
    filter: Any  # a SegmentFilter input; None: no filter (everyone)
    saved: dict[str, str] = field(default_factory=dict)  # saved segments it names: id → text form


def _text(name: str, pins: str, expression: str, saved: dict[str, str] | None = None) -> Case:
    return Case(name, pins, {"expression": expression}, saved or {})


def _q(metric: str) -> str:
    return json.dumps(metric)


_paging = next(audience for audience in paging_candidates() if audience.days == 30)

CASES: list[Case] = [
    *(Case(f"bench_{segment.key}", f"bench/segments.py reference segment: {segment.title}", segment.filter)
      for segment in SEGMENTS),
    Case("bench_paging_viewed_30d", f"bench/segments.py paging audience ({_paging.name}; the others differ in days only)",
         _paging.filter),
    # ---------------------------------------------------------------- everyone and no one
    Case("everyone_no_filter", "no filter (profiles(filter: null)): every profile, no set", None),
    _text("everybody_all", "an empty and: everyone", "all()"),
    _text("nobody_any", "an empty or: no one", "any()"),
    _text("nobody_in_and", "an and with no one in it is no one", f"did {_q(ORDER)} and any()"),
    _text("everybody_in_or", "an or with everyone in it is everyone", f"did {_q(ORDER)} or all()"),
    # ---------------------------------------------------------------- did: counts and windows
    _text("did_ever", "ever did X: profile_metrics first times; the walk runs along them (driven)", f"did {_q(ORDER)}"),
    _text("did_before", "did X before an instant: first times up to it", f"did {_q(ORDER)} before 2026-11-01"),
    _text("did_last_hours", "a window with a start: DISTINCT over the (metric, ts) index",
          f"did {_q(ORDER)} in the last 12 hours"),
    _text("did_since", "a since window", f"did {_q(ORDER)} since 2026-11-01"),
    _text("did_between", "a between window (its end exclusive)", f"did {_q(ORDER)} between 2026-11-01 and 2026-11-15"),
    _text("did_at_least_0", "at least 0 times: everyone", f"did {_q(ORDER)} at least 0 times"),
    _text("did_at_least_3_ever", "at least n > 1 without a window: GROUP BY HAVING over all time",
          f"did {_q(ORDER)} at least 3 times"),
    _text("did_at_most_2", "at most n: the complement of at least n + 1", f"did {_q(ORDER)} at most 2 times in the last 30 days"),
    _text("did_at_most_0", "at most 0 (set: complement of first times; walk: a count compared)",
          f"did {_q(ORDER)} at most 0 times"),
    _text("did_exactly_0_ever", "zero times ever: the complement of first times", f"did {_q(ORDER)} zero times"),
    _text("did_exactly_0_window", "zero times in a window: the complement of a DISTINCT scan",
          f"did {_q(ORDER)} zero times in the last 7 days"),
    _text("did_exactly_3", "exactly n > 0: GROUP BY HAVING count = n", f"did {_q(ORDER)} exactly 3 times in the last 30 days"),
    _text("did_not_window", "didNot in a window: a complement", f"didn't {_q(ORDER)} in the last 30 days"),
    _text("not_did_window", "not did: the same complement as didNot", f"not did {_q(ORDER)} in the last 30 days"),
    # ---------------------------------------------------------------- where: event property ops
    _text("where_eq_string", "EQ a string in JSON: a text prefilter, then type and value",
          f'did {_q(ORDER)} where coupon = "WELCOME"'),
    _text("where_eq_empty_string", "EQ the empty string: no text prefilter", f'did {_q(ORDER)} where coupon = ""'),
    _text("where_eq_number", "EQ a number: integer or real", f"did {_q(ORDER)} where total = 42"),
    _text("where_eq_boolean", "EQ a boolean: the JSON type", f"did {_q(ORDER)} where gift = true"),
    _text("where_in_mixed", "IN strings, numbers and booleans", f'did {_q(ORDER)} where coupon in ["A", "B", 3, false]'),
    _text("where_neq", "NEQ: not EQ, absent keys included", f'did {_q(ORDER)} where coupon != "WELCOME"'),
    _text("where_not_in", "NOT_IN: not IN", f'did {_q(ORDER)} where coupon not in ["A", "B"]'),
    _text("where_channel_eq", "EQ on channel: the promoted column and the (metric, channel, ts) index",
          f'did {_q(STARTED.name)} where channel = "SMS" in the last 30 days'),
    _text("where_channel_in", "IN on channel: the promoted column and the channel index",
          f'did {_q(STARTED.name)} where channel in ["SMS", "WhatsApp"] in the last 30 days'),
    _text("where_channel_not_in", "NOT_IN on channel: not the promoted column, not the channel index",
          f'did {_q(STARTED.name)} where channel not in ["SMS"] in the last 30 days'),
    _text("where_conversation_id_eq", "EQ on conversation_id: the promoted column, the (metric, ts) index",
          f'did {_q(RESOLVED.name)} where conversation_id = "c-1"'),
    _text("where_contains_string", "CONTAINS a string: list item or substring, with a text prefilter",
          f'did {_q(RESOLVED.name)} where tags contains "refund"'),
    _text("where_contains_number", "CONTAINS a number: a list item", f"did {_q(RESOLVED.name)} where tags contains 3"),
    _text("where_contains_boolean", "CONTAINS a boolean: a list item", f"did {_q(RESOLVED.name)} where flags contains true"),
    _text("where_not_contains", "NOT_CONTAINS: not CONTAINS", f'did {_q(RESOLVED.name)} where tags not contains "refund"'),
    _text("where_gt_number", "GT a number: JSON numbers only", f"did {_q(ORDER)} where total > 100"),
    _text("where_lte_string", "LTE a string: JSON strings only, by code point", f'did {_q(ORDER)} where sku <= "M"'),
    _text("where_starts_with", "STARTS_WITH: a prefix of a JSON string", f'did {_q(ORDER)} where sku starts with "AB-"'),
    _text("where_exists", "EXISTS: present and not null", f"did {_q(ORDER)} where coupon exists"),
    _text("where_not_exists", "NOT_EXISTS: not EXISTS", f"did {_q(ORDER)} where coupon not exists"),
    # ---------------------------------------------------------------- follow-ups
    _text("followed_by", "followedBy: a correlated EXISTS on the (profile, metric, ts) index",
          f"did {_q(STARTED.name)} followed by {_q(ESCALATED.name)} within 2 hours"),
    _text("followed_by_where_same", "followedBy with where and sameProperties",
          f'did {_q(STARTED.name)} followed by {_q(ESCALATED.name)} where escalation_reason = "angry" within 2 hours '
          "with the same conversation_id"),
    _text("followed_by_at_least_2", "followedBy counted: GROUP BY HAVING over followed events",
          f"did {_q(STARTED.name)} at least 2 times in the last 30 days followed by {_q(ESCALATED.name)} within 2 hours"),
    _text("not_followed_by_same", "notFollowedBy with where and sameProperties: window over, then NOT EXISTS",
          f"did {_q(RECOMMENDED.name)} in the last 7 days not followed by {_q(ORDER)} where total > 0 within 48 hours "
          "with the same conversation_id, channel"),
    _text("followed_and_not_followed", "followedBy and notFollowedBy on one event",
          f"did {_q(STARTED.name)} followed by {_q(RESOLVED.name)} within 24 hours with the same conversation_id "
          f"not followed by {_q(ESCALATED.name)} within 24 hours with the same conversation_id"),
    # ---------------------------------------------------------------- having and calendar windows
    _text("having_sum", "SUM over JSON numbers as doubles: GROUP BY … HAVING, rounded, a count beside it (the bench's "
          "order_sum_100_30d pins the default count)",
          f"did {_q(ORDER)} at least 2 times with sum of total >= 100 in the last 7 days"),
    _text("having_distinct_count", "DISTINCT_COUNT over list items: a LEFT JOIN of json_each / jsonb_array_elements "
          "(the bench's started_3_conversations_90d pins a promoted column's)",
          f"did {_q(ORDER)} with distinct count of sku >= 2 in the last 90 days"),
    _text("having_all_functions", "every function at once: numbers read on each event's first list row",
          f"did {_q(ORDER)} at least 2 times with sum of total > 10, average of total < 50, min of total >= 1, "
          "max of total != 99, distinct count of sku = 2"),
    _text("having_holds_at_zero", "a figure that holds over no events with atLeast 0: the complement of those failing",
          f"did {_q(ORDER)} at least 0 times with sum of total < 100"),
    _text("calendar_yesterday_paris", "a calendar window: instants from the zone's rules, bound like any window",
          f'did {_q(ORDER)} yesterday in time zone "Europe/Paris"'),
    _text("calendar_last_month_new_york", "last month in a zone, at most once: the complement of a count",
          f'did {_q(ORDER)} at most 1 time last month in time zone "America/New_York"'),
    # ---------------------------------------------------------------- profile conditions
    _text("profile_email_eq", "EQ on a profile column", 'profile email = "ada@example.com"'),
    _text("profile_email_neq", "NEQ on a profile column: NULL counts as different", 'profile email != "ada@example.com"'),
    _text("profile_email_starts_with", "STARTS_WITH on a profile column", 'profile email starts with "vip"'),
    _text("profile_email_contains", "CONTAINS on a profile column: instr / strpos", 'profile email contains "@example"'),
    _text("profile_email_number", "a number compared with a text column: false", "profile email = 42"),
    _text("profile_first_name_in", "IN on a profile column", 'profile firstName in ["Ada", "Grace"]'),
    _text("profile_external_id_not_in", "NOT_IN on a profile column", 'profile externalId not in ["x1", "x2"]'),
    _text("profile_last_name_gt", "GT on a profile column: code point order (COLLATE \"C\" on PostgreSQL)",
          'profile lastName > "M"'),
    _text("profile_phone_not_exists", "NOT_EXISTS on a profile column: IS NULL", "profile phoneNumber not exists"),
    _text("profile_created_at", "createdAt compared as a datetime (microseconds)",
          'profile createdAt >= "2026-11-01T00:00:00Z" and profile createdAt < "2026-12-01T00:00:00Z"'),
    _text("profile_property_in", "IN on a profile JSON property", 'profile `loyalty tier` in ["gold", "platinum"]'),
    _text("profile_property_gt_number", "GT a number on a profile JSON property", "profile lifetime_value > 100"),
    _text("profile_property_contains", "CONTAINS on a profile JSON property", 'profile interests contains "shoes"'),
    _text("profile_property_not_exists", "NOT_EXISTS on a profile JSON property", "profile vip not exists"),
    # ---------------------------------------------------------------- inSegment
    _text("in_segment_and_did_not", "inSegment: the saved filter inlined, here beside a complement",
          f'in segment "42" and didn\'t {_q(ORDER)}', {"42": f"did {_q(ORDER)} at least 2 times in the last 30 days"}),
    _text("in_segment_driven", "inSegment of an ever-did: the walk is driven through the saved segment",
          'in segment "43" and profile email starts with "vip"', {"43": f"did {_q(ORDER)}"}),
    # ---------------------------------------------------------------- and / or / not
    _text("and_two_sets", "and of sets: INTERSECT",
          f"did {_q(ORDER)} in the last 7 days and did {_q(VIEWED)} in the last 30 days"),
    _text("and_only_complements", "and of complements: the complement of a UNION",
          f"didn't {_q(ORDER)} and didn't {_q(VIEWED)} in the last 30 days"),
    _text("and_driven_profile", "ever did X and a profile condition: driven walk, the rest tested per row",
          f'did {_q(ORDER)} and profile email starts with "vip"'),
    _text("or_with_complement", "or with a complement: the complement of an EXCEPT",
          f"did {_q(ORDER)} in the last 7 days or didn't {_q(VIEWED)}"),
    _text("or_only_complements", "or of complements: the complement of an INTERSECT",
          f"didn't {_q(ORDER)} or didn't {_q(VIEWED)}"),
    _text("not_or", "not of an or: the complement of a UNION",
          f'not (did {_q(ORDER)} in the last 7 days or profile email starts with "vip")'),
    _text("nested_compound", "a set operation inside another: wrapped in a subquery (SQLite refuses nested compounds)",
          f"(did {_q(ORDER)} in the last 7 days or did {_q(VIEWED)} in the last 7 days) "
          f"and not (did {_q(STARTED.name)} in the last 30 days and profile vip exists)"),
]


@dataclass(frozen=True)
class _Engine:
    dialect: Any


@dataclass(frozen=True)
class _RenderingStore:
    """What `explain_sql` and `compile_prepared` read of a Store: its dialect's name and its engine's dialect."""

    dialect: str
    engine: _Engine


def _named(dialect: Any) -> Any:
    """The app's dialect object (its compiler, hints and bind casts included) with named placeholders."""
    named = copy.copy(dialect)
    named.paramstyle = "named"
    named.positional = False
    return named


_stores: dict[str, _RenderingStore] = {}


def _url(kind: str, directory: str) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{directory}/golden.db"
    return POSTGRES_URL or OFFLINE_POSTGRES_URL


async def _rendering_store(kind: str) -> _RenderingStore:
    """The app's engine dialect for `kind`, from a Store that is never connected (no file, no server needed)."""
    found = _stores.get(kind)
    if found is None:
        with tempfile.TemporaryDirectory() as directory:
            store = Store(_url(kind, directory))
            found = _stores[kind] = _RenderingStore(store.dialect, _Engine(_named(store.engine.dialect)))
            await store.dispose()
    assert found.dialect == kind
    return found


def _compiled(store: Any, case: Case) -> Audience:
    root = None if case.filter is None else checked_filter(case.filter, ("filter",))
    saved = {key: checked_filter({"expression": text}, ("saved", key)) for key, text in case.saved.items()}
    return compile_prepared(store, root, saved, AS_OF)


def _shape(audience: Audience) -> str:
    if audience.ids is None:
        kind = "everyone" if audience.negated else "no one"
    else:
        kind = "the complement of a set of ids" if audience.negated else "a set of ids"
    return f"{kind}; walk-shape pages run along profile_metrics rows (driven)" if audience.driven is not None else kind


def render(kind: str, store: _RenderingStore, case: Case) -> str:
    """The fixture text of a case in one dialect."""
    audience = _compiled(store, case)
    header = [
        f"-- golden SQL of tests/test_golden_sql.py (SEGMENTQL_UPDATE_GOLDEN=1 rewrites it): {case.name}",
        f"-- pins: {case.pins}",
    ]
    if case.filter is None:
        header.append("-- filter: none (null)")
    else:
        header.append(f"-- filter: {print_filter(checked_filter(case.filter, ('filter',)))}")
        if "expression" not in case.filter:
            header.append(f"-- input: {json.dumps(case.filter, ensure_ascii=False)}")
    header += [f'-- saved segment "{key}": {text}' for key, text in case.saved.items()]
    header += [f"-- asOf: {AS_OF:%Y-%m-%dT%H:%M:%SZ}", f"-- dialect: {kind}", f"-- audience: {_shape(audience)}"]
    body = explain_sql(cast(Store, store), audience)  # it reads only what _RenderingStore has
    lines = [*header, "", *body.splitlines()]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _fixture(kind: str, case: Case) -> Path:
    return FIXTURES / kind / f"{case.name}.sql"


PARAMS = [pytest.param(kind, case, id=f"sql/{kind}/{case.name}") for kind in DIALECTS for case in CASES]


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("kind", "case"), PARAMS)
async def test_golden_sql(kind: str, case: Case) -> None:
    store = await _rendering_store(kind)
    rendered = render(kind, store, case)
    # Deterministic: a second compile of the same filter renders the same text (no random names).
    assert render(kind, store, case) == rendered
    path = _fixture(kind, case)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != rendered:
            path.write_text(rendered, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run with SEGMENTQL_UPDATE_GOLDEN=1 to write it", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if expected != rendered:
        relative = path.relative_to(Path(__file__).parent.parent)
        diff = difflib.unified_diff(expected.splitlines(keepends=True), rendered.splitlines(keepends=True),
                                    fromfile=f"{relative} (fixture)", tofile=f"{relative} (compiled now)")
        pytest.fail("the compiled SQL differs from its golden fixture (SEGMENTQL_UPDATE_GOLDEN=1 rewrites it "
                    "after an intended change):\n" + "".join(diff), pytrace=False)


def test_every_fixture_has_a_case() -> None:
    expected = {_fixture(kind, case) for kind in DIALECTS for case in CASES}
    stale = sorted(path for path in FIXTURES.glob("*/*.sql") if path not in expected)
    if UPDATE:
        for path in stale:
            path.unlink()
        return
    assert not stale, f"fixtures of no case (SEGMENTQL_UPDATE_GOLDEN=1 deletes them): {[str(p) for p in stale]}"


@pytest.mark.parametrize("store_kind", store_params())
async def test_a_connected_engine_renders_the_same(store_kind: str, tmp_path: Path) -> None:
    """The fixtures come from an engine never connected; connecting (the dialect learns the server's version
    and settings) changes no statement of any case."""
    factory = StoreFactory(store_kind, tmp_path)
    store = await factory.create(migrated=False)
    try:
        assert await store.ping()
        connected = _RenderingStore(store.dialect, _Engine(_named(store.engine.dialect)))
        offline = await _rendering_store(store_kind)
        for case in CASES:
            assert render(store_kind, connected, case) == render(store_kind, offline, case), case.name
    finally:
        await store.dispose()
        await factory.drop_all()
