"""Inbound SMS and what they cause: matching a phone to patients, replies and their flags.

Opting out and back in, which an inbound SMS may also cause, are in `store/consent.py`.

Each method that changes state is one transaction, so that an inbound SMS and what it causes
are recorded together or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import String, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.store.database import Database, chunks, one_of, value_batches
from reminders.store.inbound_schema import InboundKind, InboundMessage, OptOutEvent, Outcome
from reminders.store.outcomes import insert_flags
from reminders.store.queries import inbound_query, inbound_view, sent_sms_query
from reminders.store.records import contact_channel
from reminders.store.reply_records import (
    ConsentEventKind,
    InboundView,
    NewFlag,
    NewInbound,
    NewOutcome,
    OptOutEventView,
    PhoneMatch,
    SentSms,
)
from reminders.store.schema import Message, MessageStatus, Patient

# One statement for a batch of numbers, locked in the order of their lock keys, so two
# transactions never hold each other's (two numbers may share a key).
_LOCK_NUMBERS = text(
    "SELECT pg_advisory_xact_lock(key) FROM ("
    " SELECT DISTINCT hashtext(phone) AS key FROM unnest(CAST(:phones AS text[])) AS phone"
    " ORDER BY key) AS keys"
)


class DuplicateInbound(Exception):
    """This provider message id was already recorded (the provider retried its webhook)."""


class InboundRepository:
    """Inbound SMS, the replies and flags they cause, and who stopped SMS by number."""

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
        # Per patient found (by the messages' patient index), not an aggregate over every
        # SMS ever sent joined afterwards.
        last_sms = (
            select(func.max(Message.sent_at))
            .where(
                Message.patient_id == Patient.id,
                Message.channel == "sms",
                Message.status == MessageStatus.SENT.value,
            )
            .scalar_subquery()
        )
        query = select(
            Patient.id,
            Patient.external_id,
            Patient.language,
            Patient.email,
            Patient.sms_opted_out_at,
            last_sms.label("last_sms_at"),
        ).where(Patient.phone == phone)
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

    def last_keyword_kind(self, phone: str) -> InboundKind | None:
        """Whether this phone's latest opt-out/opt-in keyword was an opt-out or an opt-in."""
        with self.database.session() as session:
            kind = session.scalar(
                select(InboundMessage.kind)
                .where(
                    InboundMessage.from_phone == phone,
                    InboundMessage.kind.in_([InboundKind.OPT_OUT.value, InboundKind.OPT_IN.value]),
                )
                .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
                .limit(1)
            )
        return InboundKind(kind) if kind else None

    def phone_opted_out(self, phone: str) -> bool:
        """True when this number stopped SMS: a patient with it is opted out, or its latest
        keyword was a stop (a patient given this number must not be texted either)."""
        with self.database.session() as session:
            patient_out = session.scalar(
                select(Patient.id)
                .where(Patient.phone == phone, Patient.sms_opted_out_at.is_not(None))
                .limit(1)
            )
        return patient_out is not None or self.last_keyword_kind(phone) is InboundKind.OPT_OUT

    def opted_out_phones(self, phones: Collection[str]) -> set[str]:
        """Of these numbers, those that stopped SMS (as `phone_opted_out`, for many at once)."""
        wanted = sorted(set(phones))
        stopped: set[str] = set()
        keywords = [InboundKind.OPT_OUT.value, InboundKind.OPT_IN.value]
        arrays = self.database.binds_arrays
        patients_out = select(Patient.phone).where(
            one_of(Patient.phone, "phones", arrays=arrays, element=String()),
            Patient.sms_opted_out_at.is_not(None),
        )
        keywords_sent = (
            select(InboundMessage.from_phone, InboundMessage.kind)
            .where(
                one_of(InboundMessage.from_phone, "phones", arrays=arrays, element=String()),
                InboundMessage.kind.in_(keywords),
            )
            .order_by(InboundMessage.received_at, InboundMessage.id)
        )
        with self.database.session() as session:
            for batch in value_batches(wanted, arrays=arrays):
                bound = {"phones": list(batch)}
                stopped.update(session.scalars(patients_out, bound))
                latest: dict[str, str] = {}
                for phone, kind in session.execute(keywords_sent, bound):
                    latest[phone] = kind
                stopped.update(p for p, kind in latest.items() if kind == InboundKind.OPT_OUT.value)
        return stopped

    def lock_numbers(self, phones: Collection[str]) -> None:
        """Hold these numbers until the transaction in progress ends (PostgreSQL; SQLite has
        one writer at a time already), in one statement and one order (by lock key), so that
        no two transactions hold each other's.

        Enroll takes it for the numbers it gives before it asks whether they stopped, and a
        STOP for its number before it stops the patients on it: under READ COMMITTED each
        waits for the other to commit and then sees what it wrote, so a STOP that arrives while
        a patient is being given its number is never missed by both. Call it inside a unit of
        work (`Database.transaction`); alone, the lock would end with its own transaction.
        """
        if not self.database.concurrent_writers or not phones:
            return
        with self.database.session() as session:
            session.execute(_LOCK_NUMBERS, {"phones": list(set(phones))})

    # -- what inbound SMS cause -------------------------------------------------------------

    def record_inbound(self, inbound: NewInbound) -> int:
        """Record an inbound SMS that causes nothing else (help, unmatched)."""
        return self.record_reply(inbound, None, [])

    def record_reply(
        self, inbound: NewInbound, outcome: NewOutcome | None, flags: Iterable[NewFlag]
    ) -> int:
        """Record a reply together with the outcome and flags it gave rise to."""
        with atomic_inbound(self.database, inbound) as (session, inbound_id):
            if outcome is not None:
                session.execute(insert(Outcome).values(**asdict(outcome)))
            insert_flags(session, flags, inbound.received_at)
        return inbound_id

    # -- staff views ------------------------------------------------------------------------

    def list_inbound(
        self,
        *,
        external_id: str | None = None,
        kind: InboundKind | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[InboundView]:
        """Inbound SMS, newest first."""
        query = inbound_query()
        if external_id:
            query = query.where(Patient.external_id == external_id)
        if kind:
            query = query.where(InboundMessage.kind == kind.value)
        if since:
            query = query.where(InboundMessage.received_at >= since)
        query = query.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(
            limit
        )
        with self.database.session() as session:
            return [inbound_view(row) for row in session.execute(query)]

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
                    reply = inbound_view(row)
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
            return [
                OptOutEventView(pid, contact_channel(channel), ConsentEventKind(kind), said, at)
                for pid, channel, kind, said, at in session.execute(query)
            ]


@contextmanager
def atomic_inbound(database: Database, inbound: NewInbound | None) -> Iterator[tuple[Session, int]]:
    """A transaction that starts by recording `inbound` (if given); a repeat raises
    DuplicateInbound and changes nothing.

    Its insert is a savepoint: inside a unit of work (PostgreSQL aborts a transaction at a
    failed statement), the unit can still look the repeat up."""
    try:
        with database.session() as session:
            inbound_id = 0
            if inbound is not None:
                with session.begin_nested():
                    inbound_id = int(
                        session.execute(
                            insert(InboundMessage)
                            .values(**asdict(inbound))
                            .returning(InboundMessage.id)
                        ).scalar_one()
                    )
            yield session, inbound_id
    except IntegrityError:
        if inbound is not None and InboundRepository(database).inbound_seen(
            inbound.provider_message_id
        ):
            raise DuplicateInbound(inbound.provider_message_id) from None
        raise
