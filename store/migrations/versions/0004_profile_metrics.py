"""Profile metric summaries: each profile's first time of each metric, kept by every write, filled here
from the events.

The backfill runs this version's code (store/profile_metric_summaries.py) on the tables as the code
declares them: a later migration that changes either must recompute the table itself.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store import profile_metric_summaries

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profile_metrics",
        sa.Column("metric_id", Id, nullable=False),
        sa.Column("profile_id", Id, nullable=False),
        sa.Column("first_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("metric_id", "profile_id", postgresql_include=["first_ts"]),
        sqlite_with_rowid=False,
    )
    profile_metric_summaries.refresh_all(op.get_bind())


def downgrade() -> None:
    op.drop_table("profile_metrics")
