"""Page sizes of connection fields: `first: Int = n` as in the contract, where an explicit null means n."""

from __future__ import annotations

PROFILES_PAGE = 100
EVENTS_PAGE = 50
CONVERSATIONS_PAGE = 50


def page_size(first: int | None, default: int) -> int:
    """`first` as given; the field's default when it is null (a value outside 1…1000 is refused later, with its path)."""
    return default if first is None else first
