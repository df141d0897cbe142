"""Events' references to their profile and metric: kept on SQLite, dropped on PostgreSQL.

PostgreSQL checks a foreign key per inserted row by locking the referenced row (FOR KEY SHARE): half the
time of an events insert, with every writer locking the same few metric rows. Every write resolves its
events' profiles and metrics in its own transaction and nothing deletes either (docs/performance.md).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REFERENCES = (("events_profile_id_fkey", "profile_id", "profiles"), ("events_metric_id_fkey", "metric_id", "metrics"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _, _ in REFERENCES:
        op.drop_constraint(name, "events", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column, table in REFERENCES:
        op.create_foreign_key(name, "events", table, [column], ["id"])
