"""Settings, read from the environment (SEGMENTQL_*) and overridden by command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./segmentql.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("SEGMENTQL_DATABASE_URL", DEFAULT_DATABASE_URL))
    graphiql: bool = field(default_factory=lambda: os.environ.get("SEGMENTQL_GRAPHIQL", "1") != "0")
