"""alembic environment for the lineage store: runs on the connection envguard hands it."""

from __future__ import annotations

from alembic import context

from envguard.lineage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
