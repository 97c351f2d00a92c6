"""Add the scheduling feeds' message log and the appointments they told us about.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from reminders.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("sender", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("appointment_id", sa.String(256)),
        sa.Column("external_id", sa.String(128)),
        sa.Column("plan_id", sa.String(64)),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("raw", sa.Text),
        sa.UniqueConstraint("source", "sender", "message_id", name="uq_feed_messages_message"),
    )
    op.create_index("ix_feed_messages_received_at", "feed_messages", ["received_at"])
    op.create_table(
        "feed_appointments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("sender", sa.String(128), nullable=False),
        sa.Column("appointment_id", sa.String(256), nullable=False),
        sa.Column("external_id", sa.String(128)),
        sa.Column("plan_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_at", UTCDateTime()),
        sa.Column("last_sent_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("source", "sender", "appointment_id", name="uq_feed_appointments_key"),
    )
    op.create_index("ix_feed_appointments_external_id", "feed_appointments", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_appointments_external_id", table_name="feed_appointments")
    op.drop_table("feed_appointments")
    op.drop_index("ix_feed_messages_received_at", table_name="feed_messages")
    op.drop_table("feed_messages")
