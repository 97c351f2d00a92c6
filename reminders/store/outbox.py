"""The outbox: claiming due messages and recording each outcome (staff views: message_views)."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    String,
    bindparam,
    func,
    select,
    update,
)

from reminders.plans.model import Phase
from reminders.store.database import Database, chunks, one_of
from reminders.store.message_records import (
    ClaimedBatch,
    ClaimedMessage,
    DeliveryUpdate,
)
from reminders.store.outcome_writer import (
    ATTEMPT_NOT_COUNTED,
    MESSAGES,
    Outcome,
    OutcomeGroup,
    OutcomeWriter,
)
from reminders.store.queries import claimed, claimed_query
from reminders.store.schema import Message, MessageStatus, Patient

# How far along Twilio's message life a status is; a late callback never moves a message back.
_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}


def report_rank(status: str) -> int:
    """How far along Twilio's message life a reported status is (unknown ones first)."""
    return _STATUS_RANK.get(status, 0)


# Delivery reports that mean the text never reached the phone.
UNDELIVERED_REPORTS = frozenset({"undelivered", "failed"})


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
        the SMS history of those patients read in the same transaction; in claim order
        (`next_attempt_at`, then id).

        Caps hold with any number of workers: a patient is claimed by one worker at a time
        (on PostgreSQL the patient rows are locked FOR UPDATE SKIP LOCKED; on SQLite the write
        lock taken at BEGIN IMMEDIATE serialises claims), and the history counts SMS sent and
        SMS another worker holds in "sending" (outcome not known yet) alike.
        """
        statements = _claim_statements(self.database.binds_arrays)
        with self.database.session() as session:
            connection = session.connection()
            # Locked while read: a patient another worker is claiming is passed over, and the
            # scan goes on to the next due patients (two workers share a wave). The message row
            # is locked too, so that one another worker claimed after this scan began is read
            # again and passed over as no longer pending; with the patient alone, this worker
            # locked patients whose messages were gone, claimed nothing and ended its pass.
            due = connection.scalars(statements.due, {"now": now, "limit": limit})
            patients = list(dict.fromkeys(due))
            if not patients:
                return ClaimedBatch([], {})
            taken = connection.execute(
                statements.claim, {"patients": patients, "now": now, "worker": worker}
            ).all()
            if not taken:
                return ClaimedBatch([], {})
            ids = [row.id for row in sorted(taken, key=lambda row: (row.next_attempt_at, row.id))]
            # The patients' ids too: each table is read by its key for this batch, never
            # scanned whole (a hash join over every patient cost 5 ms a batch at 20,000).
            rows = connection.execute(statements.claimed, {"ids": ids, "patients": patients})
            order = {message_id: place for place, message_id in enumerate(ids)}
            messages = sorted((claimed(row) for row in rows), key=lambda m: order[m.id])
            texted = [m.patient_id for m in messages if m.channel == "sms"]
            history = _sms_sent_at(connection, texted, excluding=ids)
        return ClaimedBatch(messages, history)

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
            return _sms_sent_at(connection, patient_ids, excluding=excluding)

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
        """Record a provider's delivery status for one of our messages (None if unknown).

        A status older than the one recorded (callbacks may arrive out of order) is ignored.
        With `undelivered_reason`, a sent message whose report says undelivered or failed
        becomes "undelivered" with that reason.
        """
        with self.database.session() as session:
            row = session.execute(
                select(
                    Message.id,
                    Message.patient_id,
                    Message.recipient,
                    Message.provider_status,
                    Message.error_code,
                    Message.status,
                    Message.step_id,
                    Message.phase,
                ).where(Message.provider_message_id == provider_message_id)
            ).first()
            if row is None:
                return None
            known = _STATUS_RANK.get(row.provider_status or "", -1)
            if report_rank(status) < known:
                return DeliveryUpdate(
                    row.id,
                    row.patient_id,
                    row.recipient,
                    row.provider_status,
                    row.error_code,
                    step_id=row.step_id,
                    phase=Phase(row.phase),
                )
            code = error_code or row.error_code
            values: dict[str, Any] = {"provider_status": status, "error_code": code}
            undelivered = (
                undelivered_reason is not None
                and status in UNDELIVERED_REPORTS
                and row.status == MessageStatus.SENT.value
            )
            if undelivered:
                values.update(
                    status=MessageStatus.UNDELIVERED.value, status_reason=undelivered_reason
                )
            session.execute(
                update(Message).where(Message.id == row.id).values(**values, updated_at=now)
            )
            new_error = error_code is not None and error_code != row.error_code
            return DeliveryUpdate(
                row.id,
                row.patient_id,
                row.recipient,
                status,
                code,
                new_error,
                row.step_id,
                Phase(row.phase),
                undelivered,
            )


@dataclass(frozen=True)
class _ClaimStatements:
    """The claim's statements, built once for a way of binding lists of ids (`one_of`)."""

    due: Any
    claim: Any
    claimed: Any
    history: Any


@functools.cache
def _claim_statements(arrays: bool) -> _ClaimStatements:
    now = bindparam("now", type_=Message.next_attempt_at.type)
    due = (
        select(MESSAGES.c.patient_id)
        .join(Patient, Patient.id == MESSAGES.c.patient_id)
        .where(MESSAGES.c.status == MessageStatus.PENDING.value)
        .where(MESSAGES.c.next_attempt_at <= now)
        .order_by(MESSAGES.c.next_attempt_at, MESSAGES.c.id)
        .limit(bindparam("limit", type_=Integer))
        # Patient first: PostgreSQL locks a row's tables in the order of this list and keeps
        # what it locked of a row it then skips, so a message locked before its patient was
        # found taken stayed locked to the end of this claim (the holder's claim waited on it,
        # and two workers could deadlock).
        .with_for_update(of=[Patient, MESSAGES], skip_locked=True)
    )
    still_due: list[ColumnElement[bool]] = [
        MESSAGES.c.status == MessageStatus.PENDING.value,
        MESSAGES.c.next_attempt_at <= now,
    ]
    if not arrays:
        # SQLite, without statistics, read these terms through the claim index: the whole
        # wave for every batch (O(wave) per claim). likely() says they filter little, so its
        # planner reads the patients' index instead.
        still_due = [func.likely(term) for term in still_due]
    claim = (
        update(MESSAGES)
        .where(one_of(MESSAGES.c.patient_id, "patients", arrays=arrays))
        .where(*still_due)
        .values(
            status=MessageStatus.SENDING.value,
            claimed_by=bindparam("worker", type_=String),
            claimed_at=now,
            attempts=MESSAGES.c.attempts + 1,
            updated_at=now,
        )
        .returning(MESSAGES.c.id, MESSAGES.c.next_attempt_at)
    )
    claimed_rows = (
        claimed_query()
        .where(one_of(Message.id, "ids", arrays=arrays))
        .where(one_of(Patient.id, "patients", arrays=arrays))
    )
    # By the patients' index only: with the status in the WHERE clause, SQLite (and PostgreSQL
    # on stale statistics) walked a status index over every SMS ever sent, 45 ms a batch at
    # 20,000 patients. Rows never claimed have no instant; the status is checked in Python.
    at = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.claimed_at)
    history = select(MESSAGES.c.id, MESSAGES.c.patient_id, MESSAGES.c.status, at).where(
        one_of(MESSAGES.c.patient_id, "ids", arrays=arrays),
        MESSAGES.c.channel == "sms",
        at.is_not(None),
    )
    return _ClaimStatements(due, claim, claimed_rows, history)


# SMS that count for the opt-out line and the caps: sent, or held "sending" (outcome unknown).
_COUNTED = frozenset(
    {MessageStatus.SENT.value, MessageStatus.SENDING.value, MessageStatus.UNDELIVERED.value}
)


def _sms_sent_at(
    connection: Connection, patient_ids: Iterable[int], *, excluding: Collection[int] = ()
) -> dict[int, list[datetime]]:
    history = _claim_statements(connection.dialect.name == "postgresql").history
    sent: dict[int, list[datetime]] = defaultdict(list)
    skip = set(excluding)
    for chunk in chunks(sorted(set(patient_ids))):
        rows = connection.execute(history, {"ids": list(chunk)})
        for message_id, patient_id, status, at in rows:
            if status in _COUNTED and message_id not in skip:
                sent[patient_id].append(at)
    return sent
