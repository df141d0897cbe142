"""The first store: metrics, profiles, events with their indexes, saved segments.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonObject = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", Id, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("name_key", sa.String, nullable=False, unique=True),
    )
    op.create_table(
        "profiles",
        sa.Column("id", Id, primary_key=True),
        sa.Column("email", sa.String, unique=True),
        sa.Column("phone_number", sa.String, unique=True),
        sa.Column("external_id", sa.String, unique=True),
        sa.Column("first_name", sa.String),
        sa.Column("last_name", sa.String),
        sa.Column("properties", JsonObject, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True),
        sa.Column("profile_id", Id, sa.ForeignKey("profiles.id"), nullable=False),
        sa.Column("metric_id", Id, sa.ForeignKey("metrics.id"), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String),
        sa.Column("conversation_id", sa.String),
        sa.Column("properties", JsonObject, nullable=False),
        sa.Column("unique_id", sa.String),
    )
    op.create_index("ix_events_metric_ts_profile", "events", ["metric_id", "ts", "profile_id"])
    op.create_index("ix_events_profile_metric_ts", "events", ["profile_id", "metric_id", "ts"])
    op.create_index("ix_events_metric_channel_ts", "events", ["metric_id", "channel", "ts", "profile_id"])
    op.create_index("ix_events_conversation", "events", ["conversation_id", "ts"])
    op.create_index("ux_events_metric_unique_id", "events", ["metric_id", "unique_id"], unique=True)
    op.create_table(
        "segments",
        sa.Column("id", Id, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("description", sa.String),
        sa.Column("filter", JsonObject, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("segments", "events", "profiles", "metrics"):
        op.drop_table(table)
