"""Alembic environment: runs on the connection that store/migrate.py hands over."""

from __future__ import annotations

from alembic import context

from store.migrate import created_on
from store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite",
                  include_object=created_on(connection.dialect.name))
with context.begin_transaction():
    context.run_migrations()
