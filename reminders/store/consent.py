"""Whether a patient may be texted: stopping SMS (an opt-out, a number the provider refuses)
and opting back in, each as one transaction with its event and what it does to pending SMS.

Every path that learns "stop texting this patient" (an error while sending, a delivery report,
an inbound STOP) ends in `stop_sms`, so the same event always leaves the same state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from reminders.store.database import Database
from reminders.store.inbound import atomic_inbound
from reminders.store.inbound_schema import OptOutEvent
from reminders.store.outcomes import insert_flags
from reminders.store.reply_records import (
    ConsentEventKind,
    NewFlag,
    NewInbound,
    SmsStateChange,
    SmsStop,
    SmsStopKind,
)
from reminders.store.schema import Message, MessageStatus, Patient


class ConsentRepository:
    """Patients' SMS state: opted out, number unusable, opted back in; with events."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def stop_sms(
        self,
        patient_ids: Collection[int],
        change: SmsStateChange,
        *,
        numbers: Collection[str] = (),
        email_steps: Collection[tuple[str, str]] = (),
        inbound: NewInbound | None = None,
        flags: Iterable[NewFlag] = (),
    ) -> SmsStop:
        """Stop SMS to these patients, and to every patient whose phone is one of `numbers`,
        at once, for `change.kind`.

        The patient's state keeps its first date; an event records the source. Pending SMS
        move to email where the patient has an address and the step may go by email
        (`email_steps`: (plan id, step id) pairs); the others are skipped with `change.reason`.
        `inbound`, the text that asked (if any), is recorded in the same transaction, with the
        `flags` it raised for staff.
        """
        ids = list(dict.fromkeys(patient_ids))
        now = change.at
        column = (
            Patient.sms_opted_out_at
            if change.kind is SmsStopKind.OPTED_OUT
            else Patient.phone_invalid_at
        )
        with atomic_inbound(self.database, inbound) as (session, _):
            if numbers:
                on_numbers = select(Patient.id).where(Patient.phone.in_(list(numbers)))
                ids = list(dict.fromkeys([*ids, *session.scalars(on_numbers)]))
            changed = list(
                session.scalars(select(Patient.id).where(Patient.id.in_(ids), column.is_(None)))
            )
            if changed:
                session.execute(
                    update(Patient)
                    .where(Patient.id.in_(changed))
                    .values({column.key: now, "updated_at": now})
                )
            _insert_events(session, ids, change.kind.event, change.source, now)
            insert_flags(session, flags, now)
            moved, skipped = _stop_pending_sms(session, ids, now, change.reason, email_steps)
            found = session.execute(
                select(Patient.id, Patient.external_id).where(Patient.id.in_(ids))
            )
            names: dict[int, str] = {pid: external_id for pid, external_id in found}
        return SmsStop(changed, moved, skipped, {pid: names[pid] for pid in ids if pid in names})

    def resume_sms(
        self,
        patient_ids: Collection[int],
        *,
        source: str,
        now: datetime,
        inbound: NewInbound | None = None,
    ) -> dict[int, str]:
        """Opt patients back in to SMS; returns those who were opted out (id: external id)."""
        ids = list(dict.fromkeys(patient_ids))
        with atomic_inbound(self.database, inbound) as (session, _):
            rows = session.execute(
                select(Patient.id, Patient.external_id).where(
                    Patient.id.in_(ids), Patient.sms_opted_out_at.is_not(None)
                )
            )
            changed: dict[int, str] = {pid: external_id for pid, external_id in rows}
            if changed:
                session.execute(
                    update(Patient)
                    .where(Patient.id.in_(list(changed)))
                    .values(sms_opted_out_at=None, updated_at=now)
                )
            _insert_events(session, ids, ConsentEventKind.OPTED_IN, source, now)
        return changed

    def clear_phone_invalid(self, patient_id: int, now: datetime) -> None:
        """Staff checked the number (or gave a new one): SMS may be tried again."""
        with self.database.session() as session:
            session.execute(
                update(Patient)
                .where(Patient.id == patient_id, Patient.phone_invalid_at.is_not(None))
                .values(phone_invalid_at=None, updated_at=now)
            )


def _insert_events(
    session: Session, patient_ids: list[int], kind: ConsentEventKind, source: str, now: datetime
) -> None:
    if patient_ids:
        session.execute(
            insert(OptOutEvent),
            [
                {
                    "patient_id": pid,
                    "channel": "sms",
                    "kind": kind.value,
                    "keyword": source[:64],
                    "at": now,
                }
                for pid in patient_ids
            ],
        )


def _stop_pending_sms(
    session: Session,
    patient_ids: list[int],
    now: datetime,
    reason: str,
    email_steps: Collection[tuple[str, str]],
) -> tuple[int, int]:
    """Move the patients' pending SMS to email where possible, skip the rest."""
    rows = session.execute(
        select(Message.id, Message.plan_id, Message.step_id, Patient.email)
        .join(Patient, Patient.id == Message.patient_id)
        .where(
            Message.patient_id.in_(patient_ids),
            Message.channel == "sms",
            Message.status == MessageStatus.PENDING.value,
        )
    ).all()
    allowed = set(email_steps)
    to_email = [r.id for r in rows if r.email and (r.plan_id, r.step_id) in allowed]
    moved = set(to_email)
    to_skip = [r.id for r in rows if r.id not in moved]
    if to_email:
        session.execute(
            update(Message)
            .where(Message.id.in_(to_email))
            .values(channel="email", status_reason=f"sent by email: {reason}", updated_at=now)
        )
    if to_skip:
        session.execute(
            update(Message)
            .where(Message.id.in_(to_skip))
            .values(status=MessageStatus.SKIPPED.value, status_reason=reason, updated_at=now)
        )
    return len(to_email), len(to_skip)
