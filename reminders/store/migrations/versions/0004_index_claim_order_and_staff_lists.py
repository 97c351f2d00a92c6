"""Index the claim's order and the staff lists' order; built without blocking dispatchers.

The claim reads pending messages by (next_attempt_at, id); the old index stopped at
next_attempt_at, so a wave due at one instant was sorted for every batch. The staff lists read
newest activity first, which had no index at all. On PostgreSQL each index is built with
CREATE INDEX CONCURRENTLY outside the migration's transaction, so running dispatchers keep
claiming and recording while a large table is indexed.

Revision ID: 0004
Revises: 0003
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_INDEXES = [
    ("ix_messages_status_next_attempt_at_id", "messages", ["status", "next_attempt_at", "id"]),
    ("ix_messages_updated_at_id", "messages", ["updated_at", "id"]),
    ("ix_messages_status_updated_at_id", "messages", ["status", "updated_at", "id"]),
    ("ix_inbound_messages_received_at_id", "inbound_messages", ["received_at", "id"]),
    ("ix_outcomes_received_at_id", "outcomes", ["received_at", "id"]),
    ("ix_flags_created_at_id", "flags", ["created_at", "id"]),
]
REPLACED = ("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _concurrently() -> bool:
    """On PostgreSQL with messages stored; an empty database is indexed at once in the
    transaction (CREATE INDEX CONCURRENTLY waits for every older transaction in the database)."""
    if not _postgresql():
        return False
    return bool(op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM messages)")).scalar())


def _create(name: str, table: str, columns: list[str], concurrently: bool) -> None:
    if concurrently:
        # A build interrupted half-way leaves an INVALID index behind: start again from none.
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.create_index(name, table, columns, postgresql_concurrently=True)
    else:
        op.create_index(name, table, columns)


def _drop(name: str, table: str, concurrently: bool) -> None:
    if concurrently:
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    else:
        op.drop_index(name, table_name=table, if_exists=True)


def _outside_transaction(concurrently: bool) -> contextlib.AbstractContextManager[None]:
    return op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()


def upgrade() -> None:
    concurrently = _concurrently()
    with _outside_transaction(concurrently):
        for name, table, columns in NEW_INDEXES:
            _create(name, table, columns, concurrently)
        _drop(REPLACED[0], REPLACED[1], concurrently)


def downgrade() -> None:
    concurrently = _concurrently()
    with _outside_transaction(concurrently):
        _create(*REPLACED, concurrently)
        for name, table, _columns in reversed(NEW_INDEXES):
            _drop(name, table, concurrently)
