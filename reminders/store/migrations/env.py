"""Alembic environment: runs on the connection the service hands it (see store.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import reminders.store.inbound_schema  # noqa: F401 - registers the two-way tables on Base.metadata
from reminders.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Several workers may start at once: one migrates, the others wait for it.
        connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    context.run_migrations()
