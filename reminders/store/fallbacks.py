"""A step whose text did not arrive, queued again by email: once, in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Table, insert, select

from reminders.store.database import Database
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient

MESSAGES: Table = Message.__table__  # type: ignore[assignment]


class FallbackRepository:
    """Email fall-backs for undelivered SMS."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def add_email_fallback(
        self,
        message_id: int,
        *,
        steps: Collection[tuple[str, str]],
        now: datetime,
        reason: str,
    ) -> int | None:
        """Queue the step of this undelivered SMS again by email, due now; the new row's id.

        None, and nothing queued, when the step is not one of `steps` ((plan id, step id)
        pairs that may fall back), the message is not an undelivered SMS, the patient has no
        email address, the enrollment is no longer active, the step's window has closed, or
        the step already has an email message (never the step twice).
        """
        with self.database.session() as session:
            # The undelivered row is locked (PostgreSQL; SQLite transactions are serial), so
            # two reports handled at once cannot both find no email row and both queue one.
            row = session.execute(
                select(Message, Patient.email, Enrollment.status)
                .join(Patient, Patient.id == Message.patient_id)
                .join(Enrollment, Enrollment.id == Message.enrollment_id)
                .where(Message.id == message_id)
                .with_for_update(of=Message)
            ).one_or_none()
            if row is None:
                return None
            message, email, enrollment_status = row
            if (
                (message.plan_id, message.step_id) not in set(steps)
                or message.channel != "sms"
                or message.status != MessageStatus.UNDELIVERED.value
                or not email
                or enrollment_status != EnrollmentStatus.ACTIVE.value
                or now >= message.send_before
            ):
                return None
            by_email = session.scalar(
                select(Message.id).where(
                    Message.enrollment_id == message.enrollment_id,
                    Message.step_id == message.step_id,
                    Message.channel == "email",
                )
            )
            if by_email is not None:
                return None
            new_id = session.execute(
                insert(MESSAGES)
                .values(
                    uid=uuid.uuid4().hex,
                    enrollment_id=message.enrollment_id,
                    patient_id=message.patient_id,
                    plan_id=message.plan_id,
                    plan_version=message.plan_version,
                    step_id=message.step_id,
                    phase=message.phase,
                    channel="email",
                    template=message.template,
                    language=message.language,
                    due_at=now,
                    send_before=message.send_before,
                    next_attempt_at=now,
                    status=MessageStatus.PENDING.value,
                    status_reason=reason,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(MESSAGES.c.id)
            ).scalar_one()
            return int(new_id)
