"""Warnings: what a request should know although nothing failed, e.g. a filter naming a metric with no events.

Resolvers note them on the context (`Context.warn`); `ResponseWarnings` puts them in the response's
top-level `extensions.warnings`, each shaped like an error: `message`, `path` and `extensions.code`.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension


class ResponseWarnings(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        noted = getattr(self.execution_context.context, "warnings", None)
        return {"warnings": list(noted)} if noted else {}
