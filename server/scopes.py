"""The scopes an API key carries. Plain words, importable without the store or GraphQL (the CLI's
argument parser offers them)."""

from __future__ import annotations

READ, TRACK, MANAGE = "read", "track", "manage"
SCOPES = (READ, TRACK, MANAGE)
