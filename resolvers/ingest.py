"""Ingest: validate and normalise events and profiles, then write them in one transaction each.

A batch's events are checked whole before anything is written; its profile keys are resolved
inside the one write transaction, so a bad event or a conflicting key leaves the store as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from resolvers.errors import UserInputError
from store import conversation_summaries, profile_metric_summaries
from store.dialects import dialect_named
from store.engine import Store
from store.tables import dialect_insert, encode_json, events, metric_ids, profiles, staged_events
from vocabulary.agent_metrics import (
    AGENT_METRIC_KEYS,
    RECOMMENDED,
    AgentMetric,
    agent_metric,
    canonical_metric_name,
    canonical_property_key,
    metric_key,
)
from vocabulary.timestamps import now_utc, to_micros

MAX_BATCH = 10_000
WRITE_ATTEMPTS = 3
T = TypeVar("T")
KEY_FIELDS = (("email", "email"), ("phoneNumber", "phone_number"), ("externalId", "external_id"))
# Fields of upsertProfile: GraphQL name → column.
PROFILE_FIELDS = (*KEY_FIELDS, ("firstName", "first_name"), ("lastName", "last_name"))


class EventInput(NamedTuple):
    """An event as a client sent it: a NamedTuple, immutable and quicker to build than a frozen dataclass
    (thousands per batch)."""

    metric: str
    profile: Mapping[str, str | None]
    occurred_at: datetime | None = None
    properties: Any = None
    unique_id: str | None = None


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    ids: list[int] = field(default_factory=list)  # of the events stored: on PostgreSQL, or for a batch of one


class _ValidEvent(NamedTuple):
    metric: str
    key: tuple[str | None, str | None, str | None]
    ts: int
    properties: dict[str, Any]
    unique_id: str | None


class BatchError(UserInputError):
    """Some events of a batch are invalid; `details` lists each bad index with its reason."""

    @property
    def problems(self) -> list[dict[str, Any]]:
        return self.details  # type: ignore[return-value]


def normalise_event(event: EventInput, received_at: int) -> _ValidEvent:
    """Canonical metric name and property keys; raises UserInputError (path relative to the event)."""
    if not event.metric.strip():
        raise UserInputError("metric cannot be empty", ("metric",))
    key = profile_key(event.profile, ("profile",))
    properties = event.properties if event.properties is not None else {}
    if not isinstance(properties, dict):
        raise UserInputError("properties must be a JSON object", ("properties",))
    agent = agent_metric(event.metric)
    if agent is not None:
        properties = {canonical_property_key(k): v for k, v in properties.items()}
        _check_agent_properties(agent, properties)
    if event.unique_id is not None and not event.unique_id.strip():
        raise UserInputError("uniqueId cannot be empty", ("uniqueId",))
    ts = to_micros(event.occurred_at) if event.occurred_at is not None else received_at
    return _ValidEvent(canonical_metric_name(event.metric), key, ts, properties, event.unique_id)


def _check_agent_properties(agent: AgentMetric, properties: dict[str, Any]) -> None:
    conversation_id = properties.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise UserInputError("conversation_id is required: a non-empty string", ("properties", "conversation_id"))
    for key in ("tags", "products"):
        value = properties.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise UserInputError(f"{key} must be a list of strings", ("properties", key))
    if "products" in properties and not properties["products"]:
        raise UserInputError("products must be a non-empty list", ("properties", "products"))
    for key in ("channel", "initial_skill", "final_skill", "escalation_reason"):
        if properties.get(key) is not None and not isinstance(properties[key], str):
            raise UserInputError(f"{key} must be a string", ("properties", key))
    if agent is RECOMMENDED and "products" not in properties:
        raise UserInputError("products is required: a non-empty list", ("properties", "products"))


def profile_key(key: Mapping[str, str | None], path: tuple[str, ...]) -> tuple[str | None, str | None, str | None]:
    """(email, phone, external id) with blanks as None; at least one is required."""
    values = tuple((key.get(name) or "").strip() or None for name, _ in KEY_FIELDS)
    if not any(values):
        raise UserInputError("a profile key needs email, phoneNumber or externalId", path)
    return values  # type: ignore[return-value]


async def track_events(store: Store, batch: Sequence[EventInput]) -> BatchResult:
    """Store a batch all or nothing; events whose (metric, uniqueId) is known count as duplicates."""
    if len(batch) > MAX_BATCH:
        raise UserInputError(f"a batch may hold at most {MAX_BATCH} events", ("events",))
    received_at = to_micros(now_utc())
    valid: list[_ValidEvent] = []
    problems: list[dict[str, Any]] = []
    for index, event in enumerate(batch):
        try:
            normalised = normalise_event(event, received_at)
            valid.append(normalised)
        except UserInputError as error:
            problems.append({"index": index, "path": ["events", index, *error.input_path], "message": error.message})
    if problems:
        raise BatchError(_batch_message(problems), ("events", problems[0]["index"]), problems)
    return await _retrying(store, lambda connection: _write_events(connection, valid))


async def _retrying(store: Store, write: Callable[[sa.Connection], T]) -> T:
    """Run a write transaction, again when a concurrent one inserted the same profile or uniqueId first.

    On SQLite a write transaction holds the lock from its start, so this never repeats; on
    PostgreSQL two transactions can both find a new profile missing and the later insert then
    violates a unique index: the retry sees the committed row and uses it (or counts a duplicate).
    """
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return await store.write(write)
        except sa.exc.IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _batch_message(problems: list[dict[str, Any]]) -> str:
    listed = "; ".join(f"[{p['index']}] {p['message']}" for p in problems[:20])
    more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
    return f"{len(problems)} invalid event(s), nothing stored: {listed}{more}"


def _write_events(connection: sa.Connection, batch: list[_ValidEvent]) -> BatchResult:
    if not batch:
        return BatchResult()
    profile_ids = resolve_profiles(connection, [e.key for e in batch])
    first_spellings: dict[str, str] = {}
    for event in batch:  # a new metric is named as it was first spelled
        first_spellings.setdefault(metric_key(event.metric), event.metric)
    ids_by_key = metric_ids(connection, first_spellings)
    stored = [event_values(profile_ids[e.key], ids_by_key[metric_key(e.metric)], e.ts, e.properties, e.unique_id)
              for e in batch]
    if dialect_named(connection.dialect.name).inserts_by_copy:
        result = _insert_staged(connection, stored)
    else:
        # Without RETURNING the stored events are those after the last id before the insert.
        last_id = connection.execute(profile_metric_summaries.LAST_EVENT_ID).scalar_one()
        result = _insert_events(connection, stored)
        if result.accepted:  # a batch of duplicates (a client's retry) stored nothing to merge
            profile_metric_summaries.merge(connection, last_id)
    # Agent events always carry a conversation_id (normalise_event); duplicates among them change nothing.
    agent_ids = {metric_id for key, metric_id in ids_by_key.items() if key in AGENT_METRIC_KEYS}
    conversation_summaries.refresh(
        connection, {values[_CONVERSATION_AT] for values in stored if values[_METRIC_AT] in agent_ids})
    return result


def rebuild_derived_tables(connection: sa.Connection) -> None:
    """Recompute from all stored events the tables every write keeps beside them (a bulk-loaded store,
    `segmentql rebuild-summaries`)."""
    conversation_summaries.refresh_all(connection)
    profile_metric_summaries.refresh_all(connection)


def _insert_events(connection: sa.Connection, stored: list[tuple[Any, ...]]) -> BatchResult:
    # A known (metric, uniqueId), stored before or earlier in this batch, is skipped by the unique index
    # itself: the insert checks it anyway, and a probe beforehand would add to every batch (docs/performance.md).
    if dialect_named(connection.dialect.name).inserts_by_executemany and len(stored) > 1:
        # One executemany, counted by its rowcount: RETURNING turns it into multi-row VALUES, which is slower
        # (docs/performance.md).
        accepted = _insert_driver_rows(connection, stored).rowcount
        return BatchResult(accepted=accepted, duplicates=len(stored) - accepted)
    # asyncpg reports no rowcount for an executemany: the stored rows are counted by their ids.
    rows = [_by_column(values) for values in stored]
    ids = list(connection.execute(_events_insert(connection.dialect.name).returning(events.c.id), rows).scalars().all())
    return BatchResult(accepted=len(ids), duplicates=len(rows) - len(ids), ids=ids)


def _insert_staged(connection: sa.Connection, stored: list[tuple[Any, ...]]) -> BatchResult:
    """The batch copied into the connection's staged_events (COPY), then one statement that inserts the new
    ones and merges their first times (PostgreSQL: docs/performance.md)."""
    dialect = dialect_named(connection.dialect.name)
    connection.exec_driver_sql(_create_staged(connection.dialect))
    dialect.copy_rows(connection, staged_events.name, STAGED_COLUMNS, [
        (seq, *values[:_PROPERTIES_AT], encode_json(values[_PROPERTIES_AT]), values[-1])
        for seq, values in enumerate(stored)])
    ids = list(connection.execute(_staged_insert(connection.dialect.name)).scalars().all())
    return BatchResult(accepted=len(ids), duplicates=len(stored) - len(ids), ids=ids)


@functools.lru_cache(maxsize=4)
def _staged_insert(dialect: str) -> Any:
    """Insert the staged events in their order, skipping a known (metric, uniqueId) (stored before or earlier
    in the batch), and merge the inserted ones' first times: one statement returning the inserted ids."""
    ordered = sa.select(*(staged_events.c[name] for name in EVENT_COLUMNS)).order_by(staged_events.c.seq)
    inserted = (_events_insert(dialect, ordered)
                .returning(events.c.id, events.c.metric_id, events.c.profile_id, events.c.ts).cte("inserted"))
    merged = profile_metric_summaries.merge_returned(dialect, inserted).cte("merged")
    return sa.select(inserted.c.id).add_cte(merged).order_by(inserted.c.id)


def _events_insert(dialect: str, rows: sa.Select[Any] | None = None) -> Any:
    """The events INSERT, of `rows` when given, skipping a known (metric, uniqueId)."""
    insert = dialect_insert(dialect, events)
    if rows is not None:
        insert = insert.from_select(EVENT_COLUMNS, rows)
    return insert.on_conflict_do_nothing(index_elements=[events.c.metric_id, events.c.unique_id])


def _insert_driver_rows(connection: sa.Connection, stored: list[tuple[Any, ...]]) -> Any:
    """The events as one executemany of rows as the driver takes them (properties as JSON text), past
    SQLAlchemy's processing of each row's parameters (docs/performance.md)."""
    return connection.exec_driver_sql(
        _driver_insert_sql(connection.dialect),
        [(*values[:_PROPERTIES_AT], encode_json(values[_PROPERTIES_AT]), values[-1]) for values in stored])


@functools.lru_cache(maxsize=4)
def _driver_insert_sql(dialect: sa.Dialect) -> str:
    """The events insert as SQL text taking EVENT_COLUMNS' values in order: compiled once per engine's dialect."""
    compiled = _events_insert(dialect.name).compile(dialect=dialect, column_keys=list(EVENT_COLUMNS))
    assert tuple(compiled.positiontup) == EVENT_COLUMNS  # the order of `event_values`
    return compiled.string


EVENT_COLUMNS = ("profile_id", "metric_id", "ts", "channel", "conversation_id", "properties", "unique_id")
_PROPERTIES_AT = EVENT_COLUMNS.index("properties")  # the last but one
_CONVERSATION_AT = EVENT_COLUMNS.index("conversation_id")
_METRIC_AT = EVENT_COLUMNS.index("metric_id")
STAGED_COLUMNS = ("seq", *EVENT_COLUMNS)


@functools.lru_cache(maxsize=4)
def _create_staged(dialect: sa.Dialect) -> str:
    """CREATE TEMPORARY TABLE IF NOT EXISTS staged_events, as driver SQL: SQLAlchemy's asyncpg dialect takes
    a DDL construct as a schema change and has every connection reload its types and statements."""
    return str(CreateTable(staged_events, if_not_exists=True).compile(dialect=dialect))


def event_values(profile_id: int, metric_id: int, ts: int, properties: dict[str, Any], unique_id: str | None) -> tuple[Any, ...]:
    """The stored columns of an event (EVENT_COLUMNS), its promoted columns filled from string properties."""
    channel = properties.get("channel")
    conversation_id = properties.get("conversation_id")
    return (profile_id, metric_id, ts, channel if isinstance(channel, str) else None,
            conversation_id if isinstance(conversation_id, str) else None, properties, unique_id)


def event_row(profile_id: int, metric_id: int, ts: int, properties: dict[str, Any], unique_id: str | None) -> dict[str, Any]:
    """The stored row of an event (`event_values` by column)."""
    return _by_column(event_values(profile_id, metric_id, ts, properties, unique_id))


def _by_column(values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(EVENT_COLUMNS, values, strict=True))


# ---------------------------------------------------------------- profiles


ProfileKeyValues = tuple[str | None, str | None, str | None]
KEY_COLUMNS = tuple(column for _, column in KEY_FIELDS)


@dataclass(eq=False)
class _NewProfile:
    identifiers: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(KEY_COLUMNS))


def resolve_profiles(connection: sa.Connection, keys: Sequence[ProfileKeyValues]) -> dict[ProfileKeyValues, int]:
    """The profile id of every key, creating missing profiles.

    Each identifier names one profile, stored or new in this batch: a key whose identifiers name
    two is an error. A profile named with identifiers it lacks takes them (never replacing one).
    """
    distinct = list(dict.fromkeys(keys))
    stored = _profiles_by_identifiers(connection, distinct)
    owner: dict[tuple[str, str], int | _NewProfile] = {
        (column, value): profile_id
        for profile_id, identifiers in stored.items() for column, value in identifiers.items() if value is not None
    }
    chosen: dict[ProfileKeyValues, int | _NewProfile] = {}
    additions: dict[int, dict[str, str]] = {}
    problems: list[dict[str, Any]] = []
    for key in distinct:
        given = {column: value for column, value in zip(KEY_COLUMNS, key, strict=True) if value is not None}
        owners = {owner[(column, value)] for column, value in given.items() if (column, value) in owner}
        if len(owners) > 1:
            message = f"profile key {_describe(key)} names {len(owners)} different profiles"
            problems += [{"index": i, "path": ["events", i, "profile"], "message": message}
                         for i, other in enumerate(keys) if other == key]
            continue
        target = owners.pop() if owners else _NewProfile()
        identifiers = target.identifiers if isinstance(target, _NewProfile) else stored[target]
        for column, value in given.items():
            if identifiers[column] is None:
                identifiers[column] = value
                owner[(column, value)] = target
                if isinstance(target, int):
                    additions.setdefault(target, {})[column] = value
        chosen[key] = target
    if problems:  # raised inside the write transaction: nothing of the batch is stored
        problems.sort(key=lambda problem: problem["index"])
        raise BatchError(_batch_message(problems), ("events", problems[0]["index"], "profile"), problems)
    for profile_id, values in additions.items():
        connection.execute(sa.update(profiles).where(profiles.c.id == profile_id).values(
            {column: sa.func.coalesce(profiles.c[column], value) for column, value in values.items()}))
    new = list(dict.fromkeys(target for target in chosen.values() if isinstance(target, _NewProfile)))
    ids = _create_profiles(connection, new) if new else {}
    return {key: target if isinstance(target, int) else ids[target] for key, target in chosen.items()}


def _profiles_by_identifiers(connection: sa.Connection, keys: Sequence[ProfileKeyValues]) -> dict[int, dict[str, str | None]]:
    """The stored profiles any of these identifiers name, with all their identifiers."""
    found: dict[int, dict[str, str | None]] = {}
    chunk = dialect_named(connection.dialect.name).list_chunk
    for position, column in enumerate(KEY_COLUMNS):
        values = sorted({key[position] for key in keys if key[position] is not None})  # type: ignore[type-var]
        for start in range(0, len(values), chunk or len(values) or 1):
            rows = connection.execute(_by_identifier(connection.dialect.name, column),
                                      {"values": values[start:start + chunk] if chunk else values})
            found.update({row[0]: dict(zip(KEY_COLUMNS, row[1:], strict=True)) for row in rows.all()})
    return found


@functools.lru_cache(maxsize=8)
def _by_identifier(dialect: str, column: str) -> sa.Select[Any]:
    """The profiles whose `column` is one of the list bound as `values`."""
    identifiers = sa.select(profiles.c.id, *(profiles.c[c] for c in KEY_COLUMNS))
    return identifiers.where(dialect_named(dialect).among(profiles.c[column], "values", sa.String))


def _create_profiles(connection: sa.Connection, new: list[_NewProfile]) -> dict[_NewProfile, int]:
    now = to_micros(now_utc())
    connection.execute(
        sa.insert(profiles),
        [{**profile.identifiers, "properties": {}, "created_at": now, "updated_at": now} for profile in new],
    )
    keys = [tuple(profile.identifiers[c] for c in KEY_COLUMNS) for profile in new]
    stored = _profiles_by_identifiers(connection, keys)  # type: ignore[arg-type]
    by_identifier = {(c, v): profile_id for profile_id, ids in stored.items() for c, v in ids.items() if v is not None}
    return {
        profile: next(by_identifier[(c, v)] for c, v in profile.identifiers.items() if v is not None)
        for profile in new
    }


def _describe(key: tuple[str | None, ...]) -> str:
    return ", ".join(f"{name}={value!r}" for (name, _), value in zip(KEY_FIELDS, key, strict=True) if value)


async def upsert_profile(store: Store, fields: Mapping[str, Any]) -> int:
    """Create or update the profile its identifiers name; properties merge key by key (null deletes)."""
    key = profile_key(fields, ("input",))
    properties = fields.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise UserInputError("properties must be a JSON object", ("input", "properties"))
    return await _retrying(store, lambda connection: _upsert_profile(connection, key, fields, properties))


def _upsert_profile(connection: sa.Connection, key: ProfileKeyValues,
                    fields: Mapping[str, Any], properties: dict[str, Any] | None) -> int:
    ids = set(_profiles_by_identifiers(connection, [key]))
    if len(ids) > 1:
        raise UserInputError(f"the identifiers {_describe(key)} name {len(ids)} different profiles", ("input",))
    now = to_micros(now_utc())
    # Identifiers are stored as they are looked up: trimmed, and blank ones not set.
    values = {column: value for (_, column), value in zip(KEY_FIELDS, key, strict=True) if value is not None}
    values.update({column: fields[name] for name, column in PROFILE_FIELDS[len(KEY_FIELDS):]
                   if fields.get(name) is not None})
    if not ids:
        merged = {k: v for k, v in (properties or {}).items() if v is not None}
        inserted = connection.execute(
            sa.insert(profiles).values(**values, properties=merged, created_at=now, updated_at=now)
        )
        primary_key = inserted.inserted_primary_key
        assert primary_key is not None
        return int(primary_key[0])
    profile_id = ids.pop()
    current = connection.scalar(sa.select(profiles.c.properties).where(profiles.c.id == profile_id))
    merged = dict(current or {})
    for k, v in (properties or {}).items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    connection.execute(
        sa.update(profiles).where(profiles.c.id == profile_id).values(**values, properties=merged, updated_at=now)
    )
    return profile_id
