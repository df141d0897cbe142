"""Opaque keyset cursors: base64 of a kind and the sort key of the last row seen."""

from __future__ import annotations

import base64
import binascii

from resolvers.errors import UserInputError


def encode_cursor(kind: str, *key: int) -> str:
    text = ":".join([kind, *(str(part) for part in key)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, parts: int, path: tuple[str, ...] = ("after",)) -> tuple[int, ...]:
    """The sort key inside a cursor made by `encode_cursor(kind, …)`; a bad cursor is bad input."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found_kind, *key = text.split(":")
        if found_kind != kind or len(key) != parts:
            raise ValueError
        return tuple(int(part) for part in key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise UserInputError(f"not a cursor of this list: {cursor!r}", path) from None
