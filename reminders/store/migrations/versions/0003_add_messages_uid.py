"""Add messages.uid, a random id per message that no other database repeats (email Message-IDs).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("uid", sa.String(32)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE messages SET uid = md5(random()::text || clock_timestamp()::text || id)")
    else:
        op.execute("UPDATE messages SET uid = lower(hex(randomblob(16)))")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("uid")
