"""Notify listening dispatchers when patients or enrollments change (PostgreSQL only).

Every statement that writes patients or enrollments (enrolling, rescheduling, cancelling,
opting out or in, a plan rollout, an import batch) sends one notification on channel
`reminders_outbox` when its transaction commits, carrying the schema name, so a dispatcher in
another process wakes within a second instead of at its idle poll. Statement-level triggers:
one notification per statement, whatever the number of rows; PostgreSQL folds repeats within
a transaction into one. The dispatcher's own writes to messages notify nobody.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("patients", "enrollments")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION reminders_notify_outbox() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('reminders_outbox', current_schema());
            RETURN NULL;
        END;
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_outbox AFTER INSERT OR UPDATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION reminders_notify_outbox()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_outbox ON {table}")
    op.execute("DROP FUNCTION IF EXISTS reminders_notify_outbox()")
