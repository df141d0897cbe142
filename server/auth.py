"""API keys and scopes: creating, listing and revoking keys, checking a request's key and what it may do.

A key reads `sqk_<8 hex>_<43 random url-safe characters>` (256 random bits after the prefix). The
`sqk_<8 hex>` prefix is stored plainly to find the key's row; the whole key is stored only as its
SHA-256 digest and compared with `hmac.compare_digest`. A fast hash is the standard choice for
random tokens of this strength (nobody can guess 2^256 keys, fast hash or slow); a slow password
hash (scrypt) would add tens of milliseconds to every uncached request for no gain.

Scopes: `read` (queries, exports), `track` (trackEvent, trackEvents, upsertProfile), `manage`
(createSegment, updateSegment, deleteSegment). With no active key the server is open, to loopback
clients only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)

from schema.limits import operations_and_fragments
from store.engine import Store
from store.tables import api_keys
from vocabulary.timestamps import now_utc, to_micros

READ, TRACK, MANAGE = "read", "track", "manage"
SCOPES = (READ, TRACK, MANAGE)
KEY_PATTERN = re.compile(r"^(sqk_[0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
HASH_SCHEME = "sha256"

# The scope each mutation needs; every query field needs `read`. A mutation missing here needs
# `manage` (closed by default); tests check that this table names every Mutation field.
MUTATION_SCOPES: Mapping[str, str] = {
    "trackEvent": TRACK, "trackEvents": TRACK, "upsertProfile": TRACK,
    "createSegment": MANAGE, "updateSegment": MANAGE, "deleteSegment": MANAGE,
}


class AccessError(Exception):
    """A request refused for its key: 401 UNAUTHENTICATED or 403 FORBIDDEN."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = "UNAUTHENTICATED" if status == 401 else "FORBIDDEN"

    def body(self) -> dict[str, Any]:
        """The response body, shaped like a GraphQL error."""
        return {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key's name and scopes, or the open (keyless) loopback mode."""

    name: str | None
    scopes: frozenset[str]

    def require(self, needed: Mapping[str, str]) -> None:
        """Raise 403 unless every field's scope (field name → scope) is among this key's scopes."""
        missing = {field: scope for field, scope in needed.items() if scope not in self.scopes}
        if missing:
            wanted = sorted(set(missing.values()))
            fields = ", ".join(sorted(missing))
            raise AccessError(403, f"this API key lacks the {', '.join(wanted)} scope(s) needed for {fields}")


OPEN = Principal(None, frozenset(SCOPES))


# ---------------------------------------------------------------- the key store


def _digest(key: str) -> str:
    return f"{HASH_SCHEME}:{hashlib.sha256(key.encode()).hexdigest()}"


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(scopes))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown or not chosen:
        raise ValueError(f"scopes must be one or more of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    return chosen


async def create_key(store: Store, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """A new key (its record and the key itself, which is shown once and never stored)."""
    name = name.strip()
    chosen = _check_scopes(scopes)
    if not name:
        raise ValueError("a key needs a name")
    async with store.begin() as connection:
        taken = await connection.scalar(
            sa.select(sa.func.count()).select_from(api_keys)
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None)))
        if taken:
            raise ValueError(f"an active key is already named {name!r}: revoke it or choose another name")
        prefix = f"sqk_{secrets.token_hex(4)}"
        while await connection.scalar(sa.select(api_keys.c.id).where(api_keys.c.prefix == prefix)) is not None:
            prefix = f"sqk_{secrets.token_hex(4)}"
        key = f"{prefix}_{secrets.token_urlsafe(32)}"
        created = to_micros(now_utc())
        await connection.execute(sa.insert(api_keys).values(
            name=name, prefix=prefix, key_hash=_digest(key), scopes=" ".join(chosen), created_at=created))
    return ApiKey(name, prefix, chosen, created, None), key


async def list_keys(store: Store) -> list[ApiKey]:
    async with store.connect() as connection:
        rows = (await connection.execute(sa.select(api_keys).order_by(api_keys.c.id))).all()
    return [_record(row) for row in rows]


async def revoke_key(store: Store, prefix_or_name: str) -> list[ApiKey]:
    """Revoke the active key with this prefix (or this whole key), or else the active key with this name."""
    whole_key = KEY_PATTERN.match(prefix_or_name)
    if whole_key is not None:
        prefix_or_name = whole_key.group(1)
    async with store.begin() as connection:
        active = sa.select(api_keys).where(api_keys.c.revoked_at.is_(None))
        rows = (await connection.execute(active.where(api_keys.c.prefix == prefix_or_name))).all()
        if not rows:
            rows = (await connection.execute(active.where(api_keys.c.name == prefix_or_name))).all()
        revoked_at = to_micros(now_utc())
        if rows:
            await connection.execute(sa.update(api_keys).where(api_keys.c.id.in_([row.id for row in rows]))
                                     .values(revoked_at=revoked_at))
    return [dataclasses.replace(_record(row), revoked_at=revoked_at) for row in rows]


async def has_active_keys(store: Store) -> bool:
    async with store.connect() as connection:
        found = await connection.scalar(sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1))
    return found is not None


async def verify_key(store: Store, key: str) -> ApiKey | None:
    """The active key record that `key` is, or None (unknown, malformed, wrong secret or revoked)."""
    matched = KEY_PATTERN.match(key)
    if matched is None:
        return None
    async with store.connect() as connection:
        row = (await connection.execute(sa.select(api_keys).where(api_keys.c.prefix == matched.group(1)))).first()
    if row is None or not hmac.compare_digest(row.key_hash.encode(), _digest(key).encode()):
        return None
    return None if row.revoked_at is not None else _record(row)


def _record(row: Any) -> ApiKey:
    return ApiKey(row.name, row.prefix, tuple(row.scopes.split()), row.created_at, row.revoked_at)


# ---------------------------------------------------------------- requests


class Keyring:
    """Authenticates requests against the store's keys, caching answers for `cache_seconds`.

    The cache holds whether any active key exists and, for each key seen, what it verified as; so
    a revoked key (or the first key created) takes effect within `cache_seconds` in every process.
    """

    MAX_CACHED = 1024

    def __init__(self, store: Store, cache_seconds: float = 2.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._any_key: tuple[float, bool] | None = None
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    def forget(self) -> None:
        self._any_key = None
        self._keys.clear()

    async def keys_exist(self) -> bool:
        now = time.monotonic()
        if self._any_key is None or self._any_key[0] <= now:
            self._any_key = (now + self.cache_seconds, await has_active_keys(self.store))
        return self._any_key[1]

    async def authenticate(self, authorization: str | None, client_host: str | None) -> Principal:
        """The principal of a request from its Authorization header and client address; raises AccessError(401)."""
        if not await self.keys_exist():
            if is_loopback(client_host):
                return OPEN
            raise AccessError(401, "this server has no API keys yet and answers loopback clients only: "
                                   "create one with `segmentql keys create --name NAME --scope read`")
        scheme, _, presented = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AccessError(401, "an API key is required: send `Authorization: Bearer KEY`")
        key = await self._verify(presented.strip())
        if key is None:
            raise AccessError(401, "the API key is not valid (unknown, malformed or revoked)")
        return Principal(key.name, frozenset(key.scopes))

    async def _verify(self, presented: str) -> ApiKey | None:
        now = time.monotonic()
        cache_key = hashlib.sha256(presented.encode()).hexdigest()
        cached = self._keys.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await verify_key(self.store, presented)
        if key is not None and self.cache_seconds > 0:
            if len(self._keys) >= self.MAX_CACHED:
                self._keys.clear()
            self._keys[cache_key] = (now + self.cache_seconds, key)
        return key


def is_loopback(host: str | None) -> bool:
    """Whether an address (or `localhost`) is on this machine's loopback interface."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- which scopes a GraphQL request needs


def required_scopes(document: DocumentNode, operation_name: str | None) -> dict[str, str]:
    """The scope each root field of the operation to run needs (field name → scope).

    The operation is the one named, or the document's only one; when that is ambiguous every
    operation of the document counts. Fragments at the root are followed; @skip/@include are not
    evaluated, so a skipped field still needs its scope.
    """
    operations, fragments = operations_and_fragments(document, operation_name)
    needed: dict[str, str] = {}
    for operation in operations:
        for field in _root_fields(operation.selection_set, fragments, set()):
            scope = _field_scope(operation.operation, field)
            if scope is not None:
                needed[field] = scope
    return needed


def _field_scope(operation: OperationType, field: str) -> str | None:
    if field == "__typename":
        return None
    if operation == OperationType.MUTATION:
        return MUTATION_SCOPES.get(field, MANAGE)
    return READ


def _root_fields(selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode],
                 seen: set[str]) -> list[str]:
    fields: list[str] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            fields.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            fields.extend(_root_fields(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                fields.extend(_root_fields(fragments[name].selection_set, fragments, seen))
    return fields
