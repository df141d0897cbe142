"""The GraphQL schema of the contract (shared/contract/schema.graphql), built with Strawberry."""

from __future__ import annotations

import functools
from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from schema import limits
from schema.execution import SchemaExecutionContext
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import DateTime
from schema.types import (
    ConversationEscalatedEvent,
    ConversationResolvedEvent,
    CustomEvent,
    ProductRecommendationEvent,
    StartedConversationEvent,
)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log nothing here: clients' errors are theirs (and may quote a huge query), and unexpected ones
        are logged once, with the request id the client sees, by the error policy (schema/extensions/errors.py)."""


@functools.cache
def build_schema(introspection: bool = True) -> strawberry.Schema:
    """The schema with its request limits (schema/limits.py); without introspection when told so."""
    built = _Schema(
        query=Query,
        mutation=Mutation,
        types=[
            StartedConversationEvent, ConversationResolvedEvent, ConversationEscalatedEvent,
            ProductRecommendationEvent, CustomEvent,
        ],
        scalar_overrides={datetime: DateTime},
        extensions=limits.extensions(introspection),
        execution_context_class=SchemaExecutionContext,
    )
    return built


schema = build_schema()

__all__ = ["build_schema", "schema"]
