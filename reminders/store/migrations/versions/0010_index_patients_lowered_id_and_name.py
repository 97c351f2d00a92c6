"""Index patients by lowered external id and lowered first name, for the console's search.

The Patients page finds an id or name prefix with `lower(column) LIKE 'text%'`, which read the
whole patients table. SQLite serves a prefix from an index on the lowered column when the
query also states the prefix as a range (the store does); PostgreSQL's text_pattern_ops index
serves the LIKE itself under any database collation. On a populated PostgreSQL each index is
built with CREATE INDEX CONCURRENTLY outside the migration's transaction, as in 0004.

Revision ID: 0010
Revises: 0009
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_patients_lower_external_id", "external_id"),
    ("ix_patients_lower_first_name", "first_name"),
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _concurrently() -> bool:
    """On PostgreSQL with patients stored; an empty database is indexed at once in the
    transaction (CREATE INDEX CONCURRENTLY waits for every older transaction in the database)."""
    if not _postgresql():
        return False
    return bool(op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM patients)")).scalar())


def _outside_transaction(concurrently: bool) -> contextlib.AbstractContextManager[None]:
    return op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()


def upgrade() -> None:
    concurrently = _concurrently()
    how = "CONCURRENTLY " if concurrently else ""
    ops = " text_pattern_ops" if _postgresql() else ""
    with _outside_transaction(concurrently):
        for name, column in INDEXES:
            if concurrently:
                # A build interrupted half-way leaves an INVALID index behind: start from none.
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX {how}{name} ON patients (lower({column}){ops})")


def downgrade() -> None:
    concurrently = _concurrently()
    how = "CONCURRENTLY " if concurrently else ""
    with _outside_transaction(concurrently):
        for name, _column in reversed(INDEXES):
            op.execute(f"DROP INDEX {how}IF EXISTS {name}")
