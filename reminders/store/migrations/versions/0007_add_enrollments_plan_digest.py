"""Add enrollments.plan_digest: the digest of the plan's steps and timing each enrollment
follows, so that a changed plan whose version was not raised can be told apart.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("plan_digest", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("plan_digest")
