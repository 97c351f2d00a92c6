"""The outbox: claiming due messages and recording each outcome (staff views: message_views).

The claim itself is `claims`; providers' delivery reports are `delivery_reports`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from reminders.store import claims
from reminders.store.database import Database
from reminders.store.delivery_reports import record_delivery_status
from reminders.store.message_records import ClaimedBatch, ClaimedMessage, DeliveryUpdate
from reminders.store.outcome_writer import ATTEMPT_NOT_COUNTED, Outcome, OutcomeGroup, OutcomeWriter
from reminders.store.queries import claimed, claimed_query
from reminders.store.schema import Message, MessageStatus, Patient


class Outbox:
    """One row per message to send: due, claimed by a worker, then settled."""

    def __init__(
        self,
        database: Database,
        *,
        writer: OutcomeWriter | None = None,
        group: OutcomeGroup | None = None,
    ) -> None:
        self.database = database
        self._writer = writer or OutcomeWriter()
        self._group = group

    def grouped(self, clock: Callable[[], datetime]) -> Outbox:
        """This outbox for one dispatcher: the `record_*` outcomes are held in memory until
        `flush_outcomes` writes them in one transaction; everything else writes at once."""
        group = OutcomeGroup(self.database, self._writer, clock)
        return Outbox(self.database, writer=self._writer, group=group)

    def flush_outcomes(self) -> int:
        """Write the held outcomes (see `grouped`); returns how many."""
        return self._group.flush() if self._group is not None else 0

    def outcomes_waited(self) -> timedelta:
        """How long the oldest held outcome has waited."""
        return self._group.waited() if self._group is not None else timedelta(0)

    def next_due_at(self) -> datetime | None:
        """The earliest instant at which a pending message wants attention."""
        with self.database.session() as session:
            return session.scalar(
                select(func.min(Message.next_attempt_at)).where(
                    Message.status == MessageStatus.PENDING.value
                )
            )

    def claim_due(self, now: datetime, worker: str, limit: int) -> list[ClaimedMessage]:
        """Atomically take up to `limit` due messages (and the rest of their patients' due
        messages) for one worker; see `claim_batch`."""
        return self.claim_batch(now, worker, limit).messages

    def claim_batch(self, now: datetime, worker: str, limit: int) -> ClaimedBatch:
        """Take due messages for one worker, every due message of a patient together, with
        the SMS history of those patients read in the same transaction (see `claims`)."""
        with self.database.session() as session:
            arrays = self.database.binds_arrays
            return claims.claim_batch(session.connection(), now, worker, limit, arrays=arrays)

    def stale_claims(self, older_than: datetime, limit: int = 500) -> list[ClaimedMessage]:
        """Messages left in 'sending' by a worker that died before recording the outcome."""
        with self.database.session() as session:
            rows = session.execute(
                claimed_query()
                .where(Message.status == MessageStatus.SENDING.value)
                .where(Message.claimed_at < older_than)
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [claimed(row) for row in rows]

    def reread(self, message_id: int, worker: str) -> ClaimedMessage | None:
        """A message `worker` holds, with its patient and enrollment as they stand now; None
        when the worker no longer holds it."""
        with self.database.session() as session:
            row = session.execute(
                claimed_query()
                .where(Message.id == message_id)
                .where(Message.status == MessageStatus.SENDING.value)
                .where(Message.claimed_by == worker)
            ).first()
        return claimed(row) if row is not None else None

    def reclaim(self, message_id: int, worker: str, claimed_at: datetime, now: datetime) -> bool:
        """Take over a stale claim, unless another worker already did."""
        with self.database.session() as session:
            result = session.execute(
                update(Message)
                .where(Message.id == message_id)
                .where(Message.status == MessageStatus.SENDING.value)
                .where(Message.claimed_at == claimed_at)
                .values(claimed_by=worker, claimed_at=now, updated_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_sent(
        self,
        message_id: int,
        now: datetime,
        *,
        provider_message_id: str | None,
        provider_status: str | None,
        recipient: str,
        subject: str | None,
        body: str,
        reason: str | None = None,
        worker: str | None = None,
    ) -> None:
        """The provider accepted the message."""
        self._finish(
            message_id,
            worker,
            status=MessageStatus.SENT.value,
            status_reason=reason,
            provider_message_id=provider_message_id,
            provider_status=provider_status,
            recipient=recipient,
            subject=subject,
            body=body,
            sent_at=now,
            updated_at=now,
            error_code=None,
        )

    def record_failed(
        self,
        message_id: int,
        now: datetime,
        reason: str,
        code: str | None,
        *,
        worker: str | None = None,
    ) -> None:
        """The message cannot be delivered; it is not tried again."""
        self._finish(
            message_id,
            worker,
            status=MessageStatus.FAILED.value,
            status_reason=reason,
            error_code=code,
            updated_at=now,
        )

    def record_skipped(
        self, message_id: int, now: datetime, reason: str, *, worker: str | None = None
    ) -> None:
        """The message will not be sent (too late, not allowed); the reason says why."""
        self._finish(
            message_id,
            worker,
            status=MessageStatus.SKIPPED.value,
            status_reason=reason,
            updated_at=now,
        )

    def record_retry(
        self,
        message_id: int,
        now: datetime,
        at: datetime,
        reason: str,
        code: str | None = None,
        *,
        worker: str | None = None,
    ) -> None:
        """Put a claimed message back to pending, to be tried at `at`."""
        self._finish(
            message_id,
            worker,
            status=MessageStatus.PENDING.value,
            status_reason=reason,
            error_code=code,
            next_attempt_at=at,
            claimed_by=None,
            claimed_at=None,
            updated_at=now,
        )

    def record_deferred(
        self,
        message_id: int,
        now: datetime,
        at: datetime,
        reason: str,
        send_before: datetime | None = None,
        *,
        worker: str | None = None,
    ) -> None:
        """Put a claimed message back without counting the claim as an attempt."""
        extra = {"send_before": send_before} if send_before is not None else {}
        self._finish(
            message_id,
            worker,
            status=MessageStatus.PENDING.value,
            status_reason=reason,
            next_attempt_at=at,
            claimed_by=None,
            claimed_at=None,
            attempts=ATTEMPT_NOT_COUNTED,
            updated_at=now,
            **extra,
        )

    def _finish(self, message_id: int, worker: str | None, **values: Any) -> None:
        """Record an outcome of a message held in "sending" (by `worker`, when given): now,
        or at the next `flush_outcomes` on a grouped outbox.

        A row that is not ours to settle (another worker took the claim over) is left alone.
        """
        outcome = Outcome(message_id, worker, values)
        if self._group is not None:
            self._group.add(outcome)
        else:
            self._writer.write(self.database, [outcome])

    def sms_sent_at(
        self, patient_ids: Iterable[int], *, excluding: Collection[int] = ()
    ) -> dict[int, list[datetime]]:
        """When each of these patients was sent an SMS, counting SMS in "sending" (their
        outcome is not known yet) other than the `excluding` messages, at their claim time."""
        with self.database.engine.begin() as connection:
            return claims.sms_sent_at(connection, patient_ids, excluding=excluding)

    def sms_in_flight_to(self, phone: str) -> bool:
        """Whether an SMS to this number is held in "sending": claimed, perhaps accepted by the
        provider, its outcome not recorded yet."""
        with self.database.session() as session:
            found = session.scalar(
                select(Message.id)
                .join(Patient, Patient.id == Message.patient_id)
                .where(Patient.phone == phone)
                .where(Message.channel == "sms")
                .where(Message.status == MessageStatus.SENDING.value)
                .limit(1)
            )
        return found is not None

    def update_delivery_status(
        self,
        provider_message_id: str,
        status: str,
        error_code: str | None,
        now: datetime,
        *,
        undelivered_reason: str | None = None,
    ) -> DeliveryUpdate | None:
        """Record a provider's delivery status for one of our messages (None if unknown); see
        `delivery_reports.record_delivery_status`."""
        with self.database.session() as session:
            return record_delivery_status(
                session,
                provider_message_id,
                status,
                error_code,
                now,
                undelivered_reason=undelivered_reason,
            )
