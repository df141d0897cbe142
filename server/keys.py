"""API keys in the store: creating, listing, revoking and verifying them.

A key reads `sqk_<8 hex>_<43 random url-safe characters>` (256 random bits after the prefix). The
`sqk_<8 hex>` prefix is stored plainly to find the key's row; the whole key is stored only as its
SHA-256 digest and compared with `hmac.compare_digest`. A fast hash is the standard choice for
random tokens of this strength (nobody can guess 2^256 keys, fast hash or slow); a slow password
hash (scrypt) would add tens of milliseconds to every uncached request for no gain.

This module needs the store's tables but no GraphQL: the command line's `keys` commands import it
alone. Checking requests (scopes, the cache) is server/auth.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from server.scopes import SCOPES
from store.engine import Store
from store.tables import api_keys
from vocabulary.timestamps import now_utc, to_micros

KEY_PATTERN = re.compile(r"^(sqk_[0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
HASH_SCHEME = "sha256"


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: int
    revoked_at: int | None


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
