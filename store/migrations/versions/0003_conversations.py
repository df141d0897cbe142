"""Conversation summaries: one row per conversation, kept by every write, filled here from the events.

The backfill runs this version's rules (store/conversation_summaries.py) on the tables as the code
declares them: a later migration that changes either must recompute the table itself.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store import conversation_summaries

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CodePointText = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", CodePointText, primary_key=True),
        sa.Column("profile_id", Id, nullable=False),
        sa.Column("channel", sa.String),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("status", sa.String, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_conversations_started", "conversations", ["started_at", "id"])
    op.create_index("ix_conversations_status_started", "conversations", ["status", "started_at", "id"])
    op.create_index("ix_conversations_channel_started", "conversations", ["channel", "started_at", "id"])
    # Covering and partial: recomputing a conversation reads no table row, and most events are in none.
    op.drop_index("ix_events_conversation", "events")
    in_a_conversation = sa.text("conversation_id IS NOT NULL")
    op.create_index("ix_events_conversation", "events", ["conversation_id", "ts", "metric_id", "profile_id", "channel"],
                    sqlite_where=in_a_conversation, postgresql_where=in_a_conversation)
    # The summaries as this version of SegmentQL derives them (a later change of the rules recomputes them again).
    conversation_summaries.refresh_all(op.get_bind())


def downgrade() -> None:
    op.drop_table("conversations")
    op.drop_index("ix_events_conversation", "events")
    op.create_index("ix_events_conversation", "events", ["conversation_id", "ts"])
