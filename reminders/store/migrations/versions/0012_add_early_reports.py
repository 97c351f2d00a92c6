"""Add early_reports: delivery reports kept until their send's outcome is committed.

A dispatcher commits a batch's outcomes together, so Twilio's status callback can arrive
before the message carries its provider SID. Twilio does not post a callback again on a 5xx
answer by default, so such a report is kept here and applied after the commit.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from reminders.store.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider_message_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(32)),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("early_reports")
