"""The GraphQL schema of the contract (shared/contract/schema.graphql), built with Strawberry."""

from __future__ import annotations

from datetime import datetime

import strawberry

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

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    types=[
        StartedConversationEvent, ConversationResolvedEvent, ConversationEscalatedEvent,
        ProductRecommendationEvent, CustomEvent,
    ],
    scalar_overrides={datetime: DateTime},
)

__all__ = ["schema"]
