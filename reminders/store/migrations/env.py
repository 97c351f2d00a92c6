"""Alembic environment: runs on the connection the service hands it (see store.migrate)."""

from __future__ import annotations

import time

from alembic import context
from sqlalchemy import text

import reminders.store.access_schema  # registers the access tables on Base.metadata
import reminders.store.feed_schema  # registers the scheduling-feed tables on Base.metadata
import reminders.store.inbound_schema  # noqa: F401 - registers the two-way tables on Base.metadata
from reminders.store.schema import Base

MIGRATION_LOCK = 727274

connection = context.config.attributes["connection"]
postgresql = connection.dialect.name == "postgresql"
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    transaction_per_migration=True,
)


def _take_migration_lock() -> None:
    """Several workers may start at once: one migrates, the others wait for it.

    A session lock, since a migration may commit half-way (CREATE INDEX CONCURRENTLY runs
    outside a transaction). Waiting is done between short transactions: a transaction left
    open while waiting would itself hold up CREATE INDEX CONCURRENTLY, which waits for every
    older transaction in the database (a deadlock).
    """
    while True:
        taken = connection.scalar(text(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK})"))
        connection.commit()
        if taken:
            return
        time.sleep(0.2)


if postgresql:
    _take_migration_lock()
try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    if postgresql:
        connection.rollback()
        connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        connection.commit()
