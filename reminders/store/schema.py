"""Tables: patients, their enrollments in plans, and the outbox of messages (one row each)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Defined in the pure core, where the enrollment diff reads it.
from reminders.schedule_diff import MessageStatus as MessageStatus
from reminders.store.records import EnrollmentStatus as EnrollmentStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Stores instants as naive UTC and returns them timezone-aware, on every database."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return value.replace(tzinfo=None)
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime; pass an aware UTC instant")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    first_name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    preferred_channel: Mapped[str] = mapped_column(String(16))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The console's id and name prefix search (migration 0010; text_pattern_ops on PostgreSQL).
for _column in (Patient.external_id, Patient.first_name):
    Index(
        f"ix_patients_lower_{_column.key}",
        func.lower(_column),
        postgresql_ops={f"lower_{_column.key}": "text_pattern_ops"},
    )


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("patient_id", "plan_id", name="uq_enrollments_patient_plan"),
        # What a message's one foreign key refers to (migration 0013, PostgreSQL).
        UniqueConstraint("id", "patient_id", name="uq_enrollments_id_patient_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    plan_id: Mapped[str] = mapped_column(String(64), index=True)
    plan_version: Mapped[int] = mapped_column(Integer)
    plan_digest: Mapped[str | None] = mapped_column(String(16))  # plans.versions.schedule_digest
    procedure_date: Mapped[date] = mapped_column(Date)
    procedure_time: Mapped[time | None] = mapped_column(Time)
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # What staff should know about the input, one warning a line (a language the plan lacks).
    warnings: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


_VERSION_4 = bytes(byte & 0x0F | 0x40 for byte in range(256))  # a UUID's 7th byte
_RFC_4122_VARIANT = bytes(byte & 0x3F | 0x80 for byte in range(256))  # and its 9th


def random_uids(count: int) -> list[str]:
    """`count` random message uids: version 4 UUIDs as 32 lowercase hex digits (what
    `uuid.uuid4().hex` gives), made from one read of the system's random source."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_RFC_4122_VARIANT)
    digits = raw.hex()
    return [digits[start : start + 32] for start in range(0, 32 * count, 32)]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The claim's order (status, then due order): a wave due at one instant is read in
        # index order, never sorted.
        Index("ix_messages_status_next_attempt_at_id", "status", "next_attempt_at", "id"),
        Index("ix_messages_enrollment_step", "enrollment_id", "step_id"),
        ForeignKeyConstraint(
            ["enrollment_id", "patient_id"],
            ["enrollments.id", "enrollments.patient_id"],
            ondelete="CASCADE",
            name="fk_messages_enrollment_patient_enrollments",
        ),
        # Staff lists, newest activity first, with or without a status filter (keyset pages).
        Index("ix_messages_updated_at_id", "updated_at", "id"),
        Index("ix_messages_status_updated_at_id", "status", "updated_at", "id"),
        # Today's "waiting" list: pending messages held back with a reason, in claim order
        # (migration 0011; the claim index alone walked every pending message).
        Index(
            "ix_messages_waiting",
            "status",
            "next_attempt_at",
            "id",
            sqlite_where=text("status_reason IS NOT NULL"),
            postgresql_where=text("status_reason IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Random per message, so that no other database (staging, a restore) repeats it.
    uid: Mapped[str | None] = mapped_column(String(32), default=lambda: random_uids(1)[0])
    # One key to the enrollment and its patient (migration 0013; SQLite keeps a key on each).
    enrollment_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int] = mapped_column(Integer, index=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    plan_version: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    send_before: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
