"""Index the pending messages held back with a reason, in claim order (Today's waiting list).

The console's Today page lists pending messages that carry a reason (quiet hours, a cap, an
opt-out) in the claim's order. The claim index gives the order but not the reason, so the page
walked every pending message: 1.2 s with 1.3 million on SQLite. This partial index holds only
the held-back ones. On a populated PostgreSQL it is built with CREATE INDEX CONCURRENTLY
outside the migration's transaction, as in 0004.

Revision ID: 0011
Revises: 0010
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NAME = "ix_messages_waiting"
COLUMNS = ["status", "next_attempt_at", "id"]
WHERE = sa.text("status_reason IS NOT NULL")


def _concurrently() -> bool:
    """On PostgreSQL with messages stored; an empty database is indexed at once in the
    transaction (CREATE INDEX CONCURRENTLY waits for every older transaction in the database)."""
    if op.get_bind().dialect.name != "postgresql":
        return False
    return bool(op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM messages)")).scalar())


def _outside_transaction(concurrently: bool) -> contextlib.AbstractContextManager[None]:
    return op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()


def upgrade() -> None:
    concurrently = _concurrently()
    with _outside_transaction(concurrently):
        if concurrently:
            # A build interrupted half-way leaves an INVALID index behind: start from none.
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
        op.create_index(
            NAME,
            "messages",
            COLUMNS,
            sqlite_where=WHERE,
            postgresql_where=WHERE,
            postgresql_concurrently=concurrently,
        )


def downgrade() -> None:
    concurrently = _concurrently()
    with _outside_transaction(concurrently):
        if concurrently:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
        else:
            op.drop_index(NAME, table_name="messages", if_exists=True)
