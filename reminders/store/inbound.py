"""Inbound SMS and what they cause: matching a phone to patients, opt-outs and opt-ins.

Each method that changes state is one transaction, so that an inbound SMS and what it causes
are recorded together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.store.database import Database, chunks
from reminders.store.inbound_schema import InboundKind, InboundMessage, OptOutEvent, Outcome
from reminders.store.outcomes import insert_flags
from reminders.store.queries import inbound_query, sent_sms_query
from reminders.store.records import (
    InboundView,
    NewFlag,
    NewInbound,
    NewOutcome,
    OptOutEventView,
    PhoneMatch,
    SentSms,
    SmsStop,
)
from reminders.store.schema import Message, MessageStatus, Patient


class DuplicateInbound(Exception):
    """This provider message id was already recorded (the provider retried its webhook)."""


class InboundRepository:
    """Inbound SMS, the opt-outs and opt-ins they cause, and numbers the provider refuses."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- lookups ----------------------------------------------------------------------------

    def inbound_seen(self, provider_message_id: str) -> bool:
        """True when this inbound SMS was already recorded."""
        with self.database.session() as session:
            found = session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.provider_message_id == provider_message_id
                )
            )
            return found is not None

    def patients_for_phone(self, phone: str) -> list[PhoneMatch]:
        """Patients with this phone number, the one we texted most recently first."""
        last_sms = (
            select(Message.patient_id, func.max(Message.sent_at).label("last_sms_at"))
            .where(Message.channel == "sms", Message.status == MessageStatus.SENT.value)
            .group_by(Message.patient_id)
            .subquery()
        )
        query = (
            select(
                Patient.id,
                Patient.external_id,
                Patient.language,
                Patient.email,
                Patient.sms_opted_out_at,
                last_sms.c.last_sms_at,
            )
            .outerjoin(last_sms, last_sms.c.patient_id == Patient.id)
            .where(Patient.phone == phone)
        )
        with self.database.session() as session:
            matches = [PhoneMatch(*row) for row in session.execute(query)]
        return sorted(
            matches,
            key=lambda m: (m.last_sms_at is not None, m.last_sms_at, m.patient_id),
            reverse=True,
        )

    def latest_sms(self, patient_id: int, at: datetime) -> SentSms | None:
        """The last SMS we sent this patient at or before `at`."""
        query = (
            sent_sms_query()
            .where(Message.patient_id == patient_id, Message.sent_at <= at)
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
        )
        with self.database.session() as session:
            row = session.execute(query).one_or_none()
        return SentSms(*row) if row else None

    def last_keyword_kind(self, phone: str) -> str | None:
        """Whether this phone's latest opt-out/opt-in keyword was an opt-out or an opt-in."""
        with self.database.session() as session:
            return session.scalar(
                select(InboundMessage.kind)
                .where(
                    InboundMessage.from_phone == phone,
                    InboundMessage.kind.in_([InboundKind.OPT_OUT.value, InboundKind.OPT_IN.value]),
                )
                .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
                .limit(1)
            )

    def phone_opted_out(self, phone: str) -> bool:
        """True when this number stopped SMS: a patient with it is opted out, or its latest
        keyword was a stop (a patient given this number must not be texted either)."""
        with self.database.session() as session:
            patient_out = session.scalar(
                select(Patient.id)
                .where(Patient.phone == phone, Patient.sms_opted_out_at.is_not(None))
                .limit(1)
            )
        return patient_out is not None or self.last_keyword_kind(phone) == "opt_out"

    def opted_out_phones(self, phones: Collection[str]) -> set[str]:
        """Of these numbers, those that stopped SMS (as `phone_opted_out`, for many at once)."""
        wanted = sorted(set(phones))
        stopped: set[str] = set()
        keywords = [InboundKind.OPT_OUT.value, InboundKind.OPT_IN.value]
        with self.database.session() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                stopped.update(
                    session.scalars(
                        select(Patient.phone).where(
                            Patient.phone.in_(chunk), Patient.sms_opted_out_at.is_not(None)
                        )
                    )
                )
                latest: dict[str, str] = {}
                rows = session.execute(
                    select(InboundMessage.from_phone, InboundMessage.kind)
                    .where(InboundMessage.from_phone.in_(chunk), InboundMessage.kind.in_(keywords))
                    .order_by(InboundMessage.received_at, InboundMessage.id)
                )
                for phone, kind in rows:
                    latest[phone] = kind
                stopped.update(p for p, kind in latest.items() if kind == InboundKind.OPT_OUT.value)
        return stopped

    # -- what inbound SMS cause -------------------------------------------------------------

    def record_inbound(self, inbound: NewInbound) -> int:
        """Record an inbound SMS that causes nothing else (help, unmatched)."""
        return self.record_reply(inbound, None, [])

    def record_reply(
        self, inbound: NewInbound, outcome: NewOutcome | None, flags: Iterable[NewFlag]
    ) -> int:
        """Record a reply together with the outcome and flags it gave rise to."""
        with self._atomic_inbound(inbound) as (session, inbound_id):
            if outcome is not None:
                session.execute(insert(Outcome).values(**asdict(outcome)))
            insert_flags(session, flags, inbound.received_at)
        return inbound_id

    def opt_out(
        self,
        patient_ids: Collection[int],
        *,
        keyword: str,
        now: datetime,
        channel: str = "sms",
        email_steps: Collection[tuple[str, str]] = (),
        inbound: NewInbound | None = None,
        flags: Iterable[NewFlag] = (),
    ) -> SmsStop:
        """Opt patients out of SMS at once.

        Their pending SMS move to email where the patient has an address and the step may go
        by email (`email_steps`: (plan id, step id) pairs); the others are cancelled. Each
        patient gets an opt-out event; `inbound`, the message that asked, is recorded too,
        with the `flags` it raised for staff.
        """
        ids = list(dict.fromkeys(patient_ids))
        with self._atomic_inbound(inbound) as (session, _):
            changed = _set_sms_opt_out(session, ids, now, now)
            self._insert_events(session, ids, channel, "opt_out", keyword, now)
            insert_flags(session, flags, now)
            moved, cancelled = self._stop_pending_sms(
                session, ids, now, f"opted out of SMS on {now:%Y-%m-%d} ({keyword})", email_steps
            )
        return SmsStop(changed, moved, cancelled)

    def opt_in(
        self,
        patient_ids: Collection[int],
        *,
        keyword: str,
        now: datetime,
        channel: str = "sms",
        inbound: NewInbound | None = None,
    ) -> list[int]:
        """Opt patients back in to SMS; returns those who were opted out."""
        ids = list(dict.fromkeys(patient_ids))
        with self._atomic_inbound(inbound) as (session, _):
            changed = _set_sms_opt_out(session, ids, None, now)
            self._insert_events(session, ids, channel, "opt_in", keyword, now)
        return changed

    def mark_phone_invalid(
        self,
        patient_ids: Collection[int],
        now: datetime,
        reason: str,
        email_steps: Collection[tuple[str, str]] = (),
    ) -> SmsStop:
        """The provider refuses these patients' number: no more SMS; pending ones move or stop."""
        ids = list(dict.fromkeys(patient_ids))
        with self.database.session() as session:
            changed = list(
                session.scalars(
                    select(Patient.id).where(
                        Patient.id.in_(ids), Patient.phone_invalid_at.is_(None)
                    )
                )
            )
            if changed:
                session.execute(
                    update(Patient)
                    .where(Patient.id.in_(changed))
                    .values(phone_invalid_at=now, updated_at=now)
                )
            moved, cancelled = self._stop_pending_sms(session, ids, now, reason, email_steps)
        return SmsStop(changed, moved, cancelled)

    def clear_phone_invalid(self, patient_id: int, now: datetime) -> None:
        """Staff gave a new number: SMS may be tried again."""
        with self.database.session() as session:
            session.execute(
                update(Patient)
                .where(Patient.id == patient_id, Patient.phone_invalid_at.is_not(None))
                .values(phone_invalid_at=None, updated_at=now)
            )

    # -- staff views ------------------------------------------------------------------------

    def list_inbound(
        self,
        *,
        external_id: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[InboundView]:
        """Inbound SMS, newest first."""
        query = inbound_query()
        if external_id:
            query = query.where(Patient.external_id == external_id)
        if kind:
            query = query.where(InboundMessage.kind == kind)
        if since:
            query = query.where(InboundMessage.received_at >= since)
        query = query.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(
            limit
        )
        with self.database.session() as session:
            return [InboundView(*row) for row in session.execute(query)]

    def replies_to(self, message_ids: Collection[int]) -> dict[int, list[InboundView]]:
        """The texts patients sent in answer to these messages, oldest first, by message id."""
        found: dict[int, list[InboundView]] = {}
        with self.database.session() as session:
            for chunk in chunks(sorted(set(message_ids))):
                query = (
                    inbound_query()
                    .where(InboundMessage.in_reply_to_message_id.in_(chunk))
                    .order_by(InboundMessage.received_at, InboundMessage.id)
                )
                for row in session.execute(query):
                    reply = InboundView(*row)
                    found.setdefault(reply.in_reply_to_message_id or 0, []).append(reply)
        return found

    def opt_out_events(self, patient_id: int) -> list[OptOutEventView]:
        """A patient's opt-outs and opt-ins, oldest first."""
        query = (
            select(
                OptOutEvent.patient_id,
                OptOutEvent.channel,
                OptOutEvent.kind,
                OptOutEvent.keyword,
                OptOutEvent.at,
            )
            .where(OptOutEvent.patient_id == patient_id)
            .order_by(OptOutEvent.at, OptOutEvent.id)
        )
        with self.database.session() as session:
            return [OptOutEventView(*row) for row in session.execute(query)]

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _atomic_inbound(self, inbound: NewInbound | None) -> Iterator[tuple[Session, int]]:
        """A transaction that starts by recording `inbound` (if given); a repeat raises
        DuplicateInbound and changes nothing."""
        try:
            with self.database.session() as session:
                inbound_id = 0
                if inbound is not None:
                    inbound_id = int(
                        session.execute(
                            insert(InboundMessage)
                            .values(**asdict(inbound))
                            .returning(InboundMessage.id)
                        ).scalar_one()
                    )
                yield session, inbound_id
        except IntegrityError:
            if inbound is not None and self.inbound_seen(inbound.provider_message_id):
                raise DuplicateInbound(inbound.provider_message_id) from None
            raise

    def _insert_events(
        self,
        session: Session,
        patient_ids: list[int],
        channel: str,
        kind: str,
        keyword: str,
        now: datetime,
    ) -> None:
        if patient_ids:
            session.execute(
                insert(OptOutEvent),
                [
                    {
                        "patient_id": pid,
                        "channel": channel,
                        "kind": kind,
                        "keyword": keyword[:64],
                        "at": now,
                    }
                    for pid in patient_ids
                ],
            )

    def _stop_pending_sms(
        self,
        session: Session,
        patient_ids: list[int],
        now: datetime,
        reason: str,
        email_steps: Collection[tuple[str, str]],
    ) -> tuple[int, int]:
        """Move the patients' pending SMS to email where possible, cancel the rest."""
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
        to_cancel = [r.id for r in rows if r.id not in moved]
        if to_email:
            session.execute(
                update(Message)
                .where(Message.id.in_(to_email))
                .values(channel="email", status_reason=f"sent by email: {reason}", updated_at=now)
            )
        if to_cancel:
            session.execute(
                update(Message)
                .where(Message.id.in_(to_cancel))
                .values(status=MessageStatus.CANCELLED.value, status_reason=reason, updated_at=now)
            )
        return len(to_email), len(to_cancel)


def _set_sms_opt_out(
    session: Session, patient_ids: list[int], opted_out_at: datetime | None, now: datetime
) -> list[int]:
    """Opt patients out (`opted_out_at` set) or back in (None); returns those whose state
    changed, so that an opt-out keeps its first time and events say who really changed."""
    differs = (
        Patient.sms_opted_out_at.is_(None)
        if opted_out_at is not None
        else Patient.sms_opted_out_at.is_not(None)
    )
    changed = list(session.scalars(select(Patient.id).where(Patient.id.in_(patient_ids), differs)))
    if changed:
        session.execute(
            update(Patient)
            .where(Patient.id.in_(changed))
            .values(sms_opted_out_at=opted_out_at, updated_at=now)
        )
    return changed
