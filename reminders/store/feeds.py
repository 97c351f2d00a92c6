"""Every query of the scheduling feeds: the message log and the appointment -> plan mapping.

Values in, plain records out, as in the other repositories.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.store.database import Database
from reminders.store.feed_schema import FeedAppointment, FeedMessage
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
    outcome: str
    ack_code: str
    detail: str
    raw: str | None


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
    status: str
    start_at: datetime | None
    last_sent_at: datetime | None


# The columns of each record, in its fields' order (the message handler reads them as plain
# rows: no ORM objects on the path of every message).
FEED_MESSAGE_COLUMNS = [FEED_MESSAGES.c[f.name] for f in fields(FeedMessageRecord)]
FEED_APPOINTMENT_COLUMNS = [FEED_APPOINTMENTS.c[f.name] for f in fields(AppointmentRecord)]


def _message(row: FeedMessage) -> FeedMessageRecord:
    return FeedMessageRecord(
        row.id,
        row.source,
        row.sender,
        row.message_id,
        row.actor,
        row.received_at,
        row.sent_at,
        row.event,
        row.appointment_id,
        row.external_id,
        row.plan_id,
        row.outcome,
        row.ack_code,
        row.detail,
        row.raw,
    )


def _appointment(row: FeedAppointment) -> AppointmentRecord:
    return AppointmentRecord(
        row.source,
        row.sender,
        row.appointment_id,
        row.external_id,
        row.plan_id,
        row.status,
        row.start_at,
        row.last_sent_at,
    )


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
                None if message is None else FeedMessageRecord(*message),
                None if appointment is None else AppointmentRecord(*appointment),
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
            row = session.scalars(
                select(FeedMessage).where(
                    FeedMessage.source == source,
                    FeedMessage.sender == sender,
                    FeedMessage.message_id == message_id,
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
            row = session.scalars(
                select(FeedAppointment).where(
                    FeedAppointment.source == source,
                    FeedAppointment.sender == sender,
                    FeedAppointment.appointment_id == appointment_id,
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
        query = select(FeedMessage)
        if source:
            query = query.where(FeedMessage.source == source)
        if refused_only:
            query = query.where(FeedMessage.outcome.in_(("refused", "rejected")))
        query = query.order_by(FeedMessage.received_at.desc(), FeedMessage.id.desc()).limit(limit)
        with self.database.session() as session:
            return [_message(row) for row in session.scalars(query)]

    def outcome_counts(self, source: str | None = None) -> dict[str, int]:
        """How many logged messages ended each way."""
        query = select(FeedMessage.outcome, func.count()).group_by(FeedMessage.outcome)
        if source:
            query = query.where(FeedMessage.source == source)
        with self.database.session() as session:
            return {outcome: int(count) for outcome, count in session.execute(query)}

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
