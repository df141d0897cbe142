"""Checking requests: a request's key (cached), and the scopes its operation needs.

Scopes: `read` (queries, exports), `track` (trackEvent, trackEvents, upsertProfile), `manage`
(createSegment, updateSegment, deleteSegment). With no active key the server is open, to loopback
clients only. The keys themselves (format, hashing, creating, revoking) are server/keys.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
from server.keys import KEY_PATTERN, ApiKey, create_key, has_active_keys, list_keys, revoke_key, verify_key
from server.scopes import MANAGE, READ, SCOPES, TRACK
from store.engine import Store

# The key store's functions are named here too, for callers that check requests and manage keys alike.
__all__ = [
    "KEY_PATTERN", "MANAGE", "MUTATION_SCOPES", "OPEN", "READ", "SCOPES", "TRACK", "AccessError", "ApiKey", "Keyring",
    "Principal", "create_key", "has_active_keys", "is_loopback", "list_keys", "required_scopes", "revoke_key", "verify_key",
]

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
