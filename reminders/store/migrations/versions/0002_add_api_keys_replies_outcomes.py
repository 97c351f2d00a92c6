"""Add API keys, inbound SMS, relief-check outcomes, staff flags and opt-out events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from reminders.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])

    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider_message_id", sa.String(64), nullable=False),
        sa.Column("from_phone", sa.String(32), nullable=False),
        sa.Column("to_phone", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column(
            "patient_id", sa.Integer, _fk("inbound_messages", "patient_id", "patients", "SET NULL")
        ),
        sa.Column(
            "in_reply_to_message_id",
            sa.Integer,
            _fk("inbound_messages", "in_reply_to_message_id", "messages", "SET NULL"),
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.UniqueConstraint("provider_message_id", name="uq_inbound_messages_provider_message_id"),
    )
    op.create_index(
        "ix_inbound_messages_from_phone_received_at",
        "inbound_messages",
        ["from_phone", "received_at"],
    )
    op.create_index("ix_inbound_messages_patient_id", "inbound_messages", ["patient_id"])
    op.create_index(
        "ix_inbound_messages_in_reply_to_message_id",
        "inbound_messages",
        ["in_reply_to_message_id"],
    )

    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "patient_id",
            sa.Integer,
            _fk("outcomes", "patient_id", "patients", "CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "message_id",
            sa.Integer,
            _fk("outcomes", "message_id", "messages", "CASCADE"),
            nullable=False,
        ),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("leg_pain", sa.Integer),
        sa.Column("walking_improved", sa.Boolean),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_outcomes_patient_id", "outcomes", ["patient_id"])
    op.create_index("ix_outcomes_message_id", "outcomes", ["message_id"])

    op.create_table(
        "flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "patient_id",
            sa.Integer,
            _fk("flags", "patient_id", "patients", "CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.Integer, _fk("flags", "message_id", "messages", "SET NULL")),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime()),
    )
    op.create_index("ix_flags_patient_id", "flags", ["patient_id"])
    op.create_index("ix_flags_message_id", "flags", ["message_id"])

    op.create_table(
        "opt_out_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "patient_id",
            sa.Integer,
            _fk("opt_out_events", "patient_id", "patients", "CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("keyword", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_opt_out_events_patient_id", "opt_out_events", ["patient_id"])


def downgrade() -> None:
    op.drop_table("opt_out_events")
    op.drop_table("flags")
    op.drop_table("outcomes")
    op.drop_table("inbound_messages")
    op.drop_table("api_keys")
