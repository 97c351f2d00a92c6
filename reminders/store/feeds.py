"""Every query of the scheduling feeds: the message log and the appointment -> plan mapping.

Values in, plain records out, as in the other repositories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.store.database import Database
from reminders.store.feed_schema import (
    FAILED_OUTCOMES,
    AppointmentStatus,
    FeedAppointment,
    FeedMessage,
    FeedOutcome,
)
from reminders.store.schema import Enrollment, EnrollmentStatus, Patient

FEED_MESSAGES: Table = FeedMessage.__table__  # type: ignore[assignment]
FEED_APPOINTMENTS: Table = FeedAppointment.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class FeedMessageRecord:
    """One logged message: what we made of it and how we acknowledged it."""

    id: int
    source: str
    sender: str
    message_id: str
    actor: str
    received_at: datetime
    sent_at: datetime | None
    event: str
    appointment_id: str | None
    external_id: str | None
    plan_id: str | None
    outcome: FeedOutcome
    ack_code: str
    detail: str
    raw: str | None

    @property
    def failed(self) -> bool:
        """Refused or rejected: the message changed nothing and staff should look at it."""
        return self.outcome in FAILED_OUTCOMES


@dataclass(frozen=True)
class EnrolledPerson:
    """A patient with an active enrollment, as the duplicate-person check compares them."""

    patient_id: int
    external_id: str
    first_name: str


@dataclass(frozen=True)
class AppointmentRecord:
    """What we last knew of an appointment."""

    source: str
    sender: str
    appointment_id: str
    external_id: str | None
    plan_id: str | None
    status: AppointmentStatus
    start_at: datetime | None
    last_sent_at: datetime | None


# The columns of each record, in its fields' order (the message handler reads them as plain
# rows: no ORM objects on the path of every message).
FEED_MESSAGE_COLUMNS = [FEED_MESSAGES.c[f.name] for f in fields(FeedMessageRecord)]
FEED_APPOINTMENT_COLUMNS = [FEED_APPOINTMENTS.c[f.name] for f in fields(AppointmentRecord)]


def _message(row: Sequence[Any]) -> FeedMessageRecord:
    """A logged message from its columns, in FEED_MESSAGE_COLUMNS' order."""
    record = FeedMessageRecord(*row)
    return replace(record, outcome=FeedOutcome(record.outcome))


def _appointment(row: Sequence[Any]) -> AppointmentRecord:
    """An appointment from its columns, in FEED_APPOINTMENT_COLUMNS' order."""
    record = AppointmentRecord(*row)
    return replace(record, status=AppointmentStatus(record.status))


class FeedRepository:
    """The scheduling feeds' tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def lookup(
        self, source: str, sender: str, message_id: str, appointment_id: str
    ) -> tuple[FeedMessageRecord | None, AppointmentRecord | None]:
        """In one read: the message if already received, and what we know of its appointment.

        The appointment's row stays locked (PostgreSQL) until the caller's transaction ends,
        so two processes apply the messages of one appointment one after the other.
        """
        with self.database.session() as session:
            message = session.execute(
                select(*FEED_MESSAGE_COLUMNS).where(
                    FEED_MESSAGES.c.source == source,
                    FEED_MESSAGES.c.sender == sender,
                    FEED_MESSAGES.c.message_id == message_id,
                )
            ).one_or_none()
            appointment = session.execute(
                select(*FEED_APPOINTMENT_COLUMNS)
                .where(
                    FEED_APPOINTMENTS.c.source == source,
                    FEED_APPOINTMENTS.c.sender == sender,
                    FEED_APPOINTMENTS.c.appointment_id == appointment_id,
                )
                .with_for_update()
            ).one_or_none()
            return (
                None if message is None else _message(message),
                None if appointment is None else _appointment(appointment),
            )

    def record(
        self,
        message: FeedMessageRecord,
        appointment: AppointmentRecord | None,
        *,
        appointment_known: bool,
    ) -> None:
        """Log a message and (when given) what we now know of its appointment, together.

        `appointment_known`: `lookup` found the appointment (it is updated, not inserted).
        Raises IntegrityError when the control id was logged meanwhile (by another process):
        the transaction is then void, as the caller's unit of work should be.
        """
        values = {k: v for k, v in message.__dict__.items() if k != "id"}
        with self.database.session() as session:
            session.execute(insert(FEED_MESSAGES).values(**values))
            if appointment is None:
                return
            facts = {
                "external_id": appointment.external_id,
                "plan_id": appointment.plan_id,
                "status": appointment.status,
                "start_at": appointment.start_at,
                "last_sent_at": appointment.last_sent_at,
                "updated_at": message.received_at,
            }
            if appointment_known:
                session.execute(
                    update(FEED_APPOINTMENTS)
                    .where(
                        FEED_APPOINTMENTS.c.source == appointment.source,
                        FEED_APPOINTMENTS.c.sender == appointment.sender,
                        FEED_APPOINTMENTS.c.appointment_id == appointment.appointment_id,
                    )
                    .values(**facts)
                )
            else:
                session.execute(
                    insert(FEED_APPOINTMENTS).values(
                        source=appointment.source,
                        sender=appointment.sender,
                        appointment_id=appointment.appointment_id,
                        **facts,
                    )
                )

    def find_message(self, source: str, sender: str, message_id: str) -> FeedMessageRecord | None:
        """A message already received with this control id from this sender."""
        with self.database.session() as session:
            row = session.execute(
                select(*FEED_MESSAGE_COLUMNS).where(
                    FEED_MESSAGES.c.source == source,
                    FEED_MESSAGES.c.sender == sender,
                    FEED_MESSAGES.c.message_id == message_id,
                )
            ).one_or_none()
            return None if row is None else _message(row)

    def record_message(self, record: FeedMessageRecord) -> bool:
        """Log a message (its `id` is ignored); False when its control id was already logged."""
        values = {k: v for k, v in record.__dict__.items() if k != "id"}
        try:
            with self.database.session() as session:
                session.add(FeedMessage(**values))
        except IntegrityError:
            return False
        return True

    def appointment(
        self, source: str, sender: str, appointment_id: str
    ) -> AppointmentRecord | None:
        """What we know of an appointment, if anything."""
        with self.database.session() as session:
            row = session.execute(
                select(*FEED_APPOINTMENT_COLUMNS).where(
                    FEED_APPOINTMENTS.c.source == source,
                    FEED_APPOINTMENTS.c.sender == sender,
                    FEED_APPOINTMENTS.c.appointment_id == appointment_id,
                )
            ).one_or_none()
            return None if row is None else _appointment(row)

    def save_appointment(self, record: AppointmentRecord, now: datetime) -> None:
        """Insert or update what we know of an appointment."""
        with self.database.session() as session:
            self._save_appointment(session, record, now)

    @staticmethod
    def _save_appointment(session: Session, record: AppointmentRecord, now: datetime) -> None:
        row = session.scalars(
            select(FeedAppointment).where(
                FeedAppointment.source == record.source,
                FeedAppointment.sender == record.sender,
                FeedAppointment.appointment_id == record.appointment_id,
            )
        ).one_or_none()
        if row is None:
            row = FeedAppointment(
                source=record.source,
                sender=record.sender,
                appointment_id=record.appointment_id,
            )
            session.add(row)
        row.external_id = record.external_id
        row.plan_id = record.plan_id
        row.status = record.status
        row.start_at = record.start_at
        row.last_sent_at = record.last_sent_at
        row.updated_at = now

    def list_messages(
        self,
        *,
        source: str | None = None,
        refused_only: bool = False,
        limit: int = 100,
    ) -> list[FeedMessageRecord]:
        """Logged messages, newest first."""
        query = select(*FEED_MESSAGE_COLUMNS)
        if source:
            query = query.where(FEED_MESSAGES.c.source == source)
        if refused_only:
            query = query.where(FEED_MESSAGES.c.outcome.in_([o.value for o in FAILED_OUTCOMES]))
        query = query.order_by(FEED_MESSAGES.c.received_at.desc(), FEED_MESSAGES.c.id.desc())
        with self.database.session() as session:
            return [_message(row) for row in session.execute(query.limit(limit))]

    def outcome_counts(self, source: str | None = None) -> dict[FeedOutcome, int]:
        """How many logged messages ended each way."""
        query = select(FeedMessage.outcome, func.count()).group_by(FeedMessage.outcome)
        if source:
            query = query.where(FeedMessage.source == source)
        with self.database.session() as session:
            return {FeedOutcome(outcome): int(count) for outcome, count in session.execute(query)}

    def enrolled_with_phone(self, phone: str) -> list[EnrolledPerson]:
        """Patients with this phone number and an active enrollment."""
        query = (
            select(Patient.id, Patient.external_id, Patient.first_name)
            .where(Patient.phone == phone)
            .where(
                Patient.id.in_(
                    select(Enrollment.patient_id).where(
                        Enrollment.status == EnrollmentStatus.ACTIVE.value
                    )
                )
            )
            .order_by(Patient.id)
        )
        with self.database.session() as session:
            return [EnrolledPerson(*row) for row in session.execute(query)]

    def purge_raw(self, received_before: datetime) -> int:
        """Forget the raw text of messages received before a moment; the log line stays."""
        with self.database.session() as session:
            result = session.execute(
                update(FeedMessage)
                .where(FeedMessage.received_at < received_before, FeedMessage.raw.is_not(None))
                .values(raw=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
