"""Tables of the scheduling feeds (HL7 v2, FHIR): every message received, every appointment seen.

They share `Base.metadata` with the other tables, so Alembic sees one schema.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from reminders.store.schema import Base, UTCDateTime


class FeedOutcome(StrEnum):
    """What became of one message (the `outcome` column)."""

    ENROLLED = "enrolled"
    MOVED = "moved"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    IGNORED = "ignored"  # maps to no plan, or cancels what we never enrolled
    STALE = "stale"  # older than a message already applied to the appointment
    DUPLICATE = "duplicate"  # this control id was processed before
    REFUSED = "refused"  # understood but not usable (bad phone, unknown site, ...)
    REJECTED = "rejected"  # could not be parsed


FAILED_OUTCOMES = (FeedOutcome.REFUSED, FeedOutcome.REJECTED)
"""Outcomes staff must look at: the message changed nothing and the sender was told why."""


class AppointmentStatus(StrEnum):
    """What we last knew of an appointment (the `status` column)."""

    BOOKED = "booked"
    UNMAPPED = "unmapped"  # its codes map to no plan
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class FeedMessage(Base):
    """One message of a feed, its outcome and acknowledgement, and (for a while) its raw text."""

    __tablename__ = "feed_messages"
    __table_args__ = (
        UniqueConstraint("source", "sender", "message_id", name="uq_feed_messages_message"),
        Index("ix_feed_messages_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(8))
    sender: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(160))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(32))
    appointment_id: Mapped[str | None] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(128))
    plan_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(24))
    ack_code: Mapped[str] = mapped_column(String(2))
    detail: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)


class FeedAppointment(Base):
    """An appointment a feed told us about, and the enrollment it leads to."""

    __tablename__ = "feed_appointments"
    __table_args__ = (
        UniqueConstraint("source", "sender", "appointment_id", name="uq_feed_appointments_key"),
        Index("ix_feed_appointments_external_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(8))
    sender: Mapped[str] = mapped_column(String(128))
    appointment_id: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(128))
    plan_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
