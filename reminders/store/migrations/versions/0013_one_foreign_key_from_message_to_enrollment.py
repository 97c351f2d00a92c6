"""A message refers to its enrollment and that enrollment's patient by one foreign key
(PostgreSQL).

Each message row had two foreign keys: to its enrollment and to its patient. PostgreSQL checks
each with a trigger per inserted row, and the two checks were about 40% of the server's work
in a 100,000-patient import. One key on (enrollment_id, patient_id) -> enrollments (id,
patient_id) is one check, and a stronger rule: a message's patient is its enrollment's patient
(the two keys allowed a message of one patient's enrollment to name another patient). A
patient's messages still go with them: patient -> enrollments -> messages cascade.

Without blocking dispatchers on a populated database: the unique index enrollments (id,
patient_id) is built CONCURRENTLY, the key is added NOT VALID (no scan) and validated in its
own transaction (VALIDATE CONSTRAINT lets writes go on), then the two old keys are dropped.

SQLite keeps its two keys: changing a key there means rebuilding the messages table, which
the replies, outcomes and flags refer to, and SQLite checks a key with an index lookup, not a
trigger.

Revision ID: 0013
Revises: 0012
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PARENT_KEY = "uq_enrollments_id_patient_id"
KEY = "fk_messages_enrollment_patient_enrollments"
OLD_KEYS = {
    "fk_messages_enrollment_id_enrollments": "(enrollment_id) REFERENCES enrollments (id)",
    "fk_messages_patient_id_patients": "(patient_id) REFERENCES patients (id)",
}


def _populated() -> bool:
    """Messages stored: build and check without blocking writers (an empty database is
    changed at once, in the transaction)."""
    return bool(op.get_bind().execute(sa.text("SELECT EXISTS (SELECT 1 FROM messages)")).scalar())


def _own_transactions(populated: bool) -> contextlib.AbstractContextManager[None]:
    """With messages stored, each step commits on its own, so that an interrupted upgrade can
    be run again: every step first checks whether it was done."""
    return op.get_context().autocommit_block() if populated else contextlib.nullcontext()


def _has(constraint: str) -> bool:
    found = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_constraint WHERE conname = :name "
            "AND connamespace = current_schema()::regnamespace"
        ),
        {"name": constraint},
    )
    return found.first() is not None


def _add_key(name: str, definition: str) -> None:
    """Add a foreign key without a scan under a writers' lock, then check the rows while
    writes go on (VALIDATE CONSTRAINT takes a lock that lets them)."""
    if not _has(name):
        op.execute(
            f"ALTER TABLE messages ADD CONSTRAINT {name} FOREIGN KEY {definition} "
            "ON DELETE CASCADE NOT VALID"
        )
    op.execute(f"ALTER TABLE messages VALIDATE CONSTRAINT {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    populated = _populated()
    concurrently = "CONCURRENTLY " if populated else ""
    with _own_transactions(populated):
        if not _has(PARENT_KEY):
            # A build interrupted half-way leaves an INVALID index behind: start from none.
            op.execute(f"DROP INDEX {concurrently}IF EXISTS {PARENT_KEY}")
            op.execute(
                f"CREATE UNIQUE INDEX {concurrently}{PARENT_KEY} ON enrollments (id, patient_id)"
            )
            op.execute(
                f"ALTER TABLE enrollments ADD CONSTRAINT {PARENT_KEY} "
                f"UNIQUE USING INDEX {PARENT_KEY}"
            )
        _add_key(KEY, "(enrollment_id, patient_id) REFERENCES enrollments (id, patient_id)")
        for old in OLD_KEYS:
            op.execute(f"ALTER TABLE messages DROP CONSTRAINT IF EXISTS {old}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with _own_transactions(_populated()):
        for old, definition in OLD_KEYS.items():
            _add_key(old, definition)
        op.execute(f"ALTER TABLE messages DROP CONSTRAINT IF EXISTS {KEY}")
        op.execute(f"ALTER TABLE enrollments DROP CONSTRAINT IF EXISTS {PARENT_KEY}")
