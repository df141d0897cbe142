"""Opaque keyset cursors: base64 of JSON [kind, *sort key of the last row seen]."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from resolvers.errors import UserInputError


def encode_cursor(kind: str, *key: int | str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *types: type, path: tuple[str, ...] = ("after",)) -> tuple[Any, ...]:
    """The sort key inside a cursor made by `encode_cursor(kind, …)`, its parts of `types`; else bad input."""
    try:
        found_kind, *key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if found_kind != kind or len(key) != len(types) or any(type(k) is not t for k, t in zip(key, types, strict=True)):
            raise ValueError
        if any(type(k) is int and not -(2**63) <= k < 2**63 for k in key):
            raise ValueError
        return tuple(key)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise UserInputError(f"not a cursor of this list: {cursor!r}", path) from None
