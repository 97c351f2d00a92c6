"""Create patients, enrollments and the messages outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from reminders.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("first_name", sa.String(128), nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.Column("email", sa.String(320)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("preferred_channel", sa.String(16), nullable=False),
        sa.Column("sms_consent", sa.Boolean, nullable=False),
        sa.Column("sms_opted_out_at", UTCDateTime()),
        sa.Column("phone_invalid_at", UTCDateTime()),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("external_id", name="uq_patients_external_id"),
    )
    op.create_index("ix_patients_phone", "patients", ["phone"])
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "patient_id",
            sa.Integer,
            sa.ForeignKey(
                "patients.id", ondelete="CASCADE", name="fk_enrollments_patient_id_patients"
            ),
            nullable=False,
        ),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("procedure_date", sa.Date, nullable=False),
        sa.Column("procedure_time", sa.Time),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("patient_id", "plan_id", name="uq_enrollments_patient_plan"),
    )
    op.create_index("ix_enrollments_plan_id", "enrollments", ["plan_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "enrollment_id",
            sa.Integer,
            sa.ForeignKey(
                "enrollments.id", ondelete="CASCADE", name="fk_messages_enrollment_id_enrollments"
            ),
            nullable=False,
        ),
        sa.Column(
            "patient_id",
            sa.Integer,
            sa.ForeignKey(
                "patients.id", ondelete="CASCADE", name="fk_messages_patient_id_patients"
            ),
            nullable=False,
        ),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("send_before", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_at", UTCDateTime()),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("provider_status", sa.String(32)),
        sa.Column("error_code", sa.String(32)),
        sa.Column("recipient", sa.String(320)),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_enrollment_step", "messages", ["enrollment_id", "step_id"])
    op.create_index("ix_messages_patient_id", "messages", ["patient_id"])
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("enrollments")
    op.drop_table("patients")
