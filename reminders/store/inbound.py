"""Every query of the two-way side: API keys, inbound SMS, opt-outs, outcomes and flags.

Values in, plain records out, as in `reminders.store.store`. Each method that changes state is
one transaction, so that an inbound SMS and what it causes are recorded together or not at all.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reminders.errors import NotFoundError, ReminderError
from reminders.store.inbound_schema import (
    ApiKey,
    Flag,
    FlagKind,
    InboundKind,
    InboundMessage,
    OptOutEvent,
    Outcome,
)
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient

KEY_PREFIX = "rk_"
_DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_MAX_KEY_LENGTH = 256

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


class DuplicateInbound(Exception):
    """This provider message id was already recorded (the provider retried its webhook)."""


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as staff see it: never the key itself, nor its hash."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class PhoneMatch:
    """A patient whose phone number sent an inbound SMS."""

    patient_id: int
    external_id: str
    language: str
    email: str | None
    sms_opted_out_at: datetime | None
    last_sms_at: datetime | None


@dataclass(frozen=True)
class SentSms:
    """An SMS we sent, as replies are linked to it."""

    id: int
    patient_id: int
    plan_id: str
    step_id: str
    sent_at: datetime


@dataclass(frozen=True)
class NewInbound:
    """An inbound SMS to record."""

    provider_message_id: str
    from_phone: str
    to_phone: str
    body: str
    received_at: datetime
    kind: str
    patient_id: int | None = None
    in_reply_to_message_id: int | None = None


@dataclass(frozen=True)
class NewOutcome:
    """A parsed relief-check answer to record."""

    patient_id: int
    message_id: int
    step_id: str
    leg_pain: int | None
    walking_improved: bool | None
    raw: str
    received_at: datetime


@dataclass(frozen=True)
class NewFlag:
    """Something staff should look at."""

    patient_id: int
    kind: str
    detail: str
    message_id: int | None = None


@dataclass(frozen=True)
class InboundView:
    """An inbound SMS as staff see it."""

    id: int
    provider_message_id: str
    external_id: str | None
    from_phone: str
    body: str
    received_at: datetime
    kind: str
    in_reply_to_message_id: int | None
    in_reply_to_step_id: str | None


@dataclass(frozen=True)
class OutcomeView:
    """A relief-check answer as staff see it."""

    id: int
    external_id: str
    message_id: int
    step_id: str
    leg_pain: int | None
    walking_improved: bool | None
    raw: str
    received_at: datetime


@dataclass(frozen=True)
class FlagView:
    """A flag as staff see it."""

    id: int
    external_id: str
    message_id: int | None
    kind: str
    detail: str
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class OptOutEventView:
    """One opt-out or opt-in, for the audit trail."""

    patient_id: int
    channel: str
    kind: str
    keyword: str
    at: datetime


@dataclass(frozen=True)
class SmsStop:
    """What stopping a patient's SMS did: who changed state and what happened to pending SMS."""

    changed: list[int]
    moved_to_email: int
    cancelled: int


@dataclass(frozen=True)
class DeliveryUpdate:
    """The message a status callback was about; `new_error` when this callback first recorded
    its error code (a repeated or stale callback must not act twice)."""

    message_id: int
    patient_id: int
    recipient: str | None
    provider_status: str | None
    error_code: str | None
    new_error: bool = False


def hash_key(key: str) -> str:
    """The stored form of an API key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _api_key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.prefix, row.created_at, row.revoked_at)


class InboundStore:
    """The two-way side's tables, next to the outbox (same engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # -- API keys ---------------------------------------------------------------------------

    def create_api_key(self, name: str, now: datetime) -> tuple[str, ApiKeyRecord]:
        """A new random key (returned once, stored hashed) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            name=name,
            key_hash=hash_key(key),
            prefix=key[:_DISPLAY_PREFIX_LENGTH],
            created_at=now,
            revoked_at=None,
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            return key, _api_key_record(row)

    def verify_api_key(self, key: str) -> ApiKeyRecord | None:
        """The record of a key that exists and is not revoked, else None."""
        if not key or len(key) > _MAX_KEY_LENGTH:
            return None
        with self._session() as session:
            row = session.scalar(
                select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )
            return _api_key_record(row) if row else None

    def revoke_api_key(self, prefix_or_id: str, now: datetime) -> ApiKeyRecord:
        """Revoke one key, named by its id, its display prefix or the key itself."""
        wanted = prefix_or_id.strip()
        with self._session() as session:
            query = select(ApiKey)
            if wanted.isdigit():
                query = query.where(ApiKey.id == int(wanted))
            else:
                query = query.where(
                    or_(ApiKey.prefix == wanted, ApiKey.key_hash == hash_key(wanted))
                )
            rows = list(session.scalars(query))
            if not rows:
                raise NotFoundError(f"no API key '{wanted}'")
            if len(rows) > 1:
                ids = ", ".join(str(r.id) for r in rows)
                raise ReminderError(f"'{wanted}' names several API keys (ids {ids}); use the id")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = now
            return _api_key_record(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        with self._session() as session:
            return [_api_key_record(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    # -- inbound SMS: lookups ---------------------------------------------------------------

    def inbound_seen(self, provider_message_id: str) -> bool:
        """True when this inbound SMS was already recorded."""
        with self._session() as session:
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
        with self._session() as session:
            matches = [PhoneMatch(*row) for row in session.execute(query)]
        return sorted(
            matches,
            key=lambda m: (m.last_sms_at is not None, m.last_sms_at, m.patient_id),
            reverse=True,
        )

    def latest_sms(self, patient_id: int, at: datetime) -> SentSms | None:
        """The last SMS we sent this patient at or before `at`."""
        query = (
            _sent_sms_query()
            .where(Message.patient_id == patient_id, Message.sent_at <= at)
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.execute(query).one_or_none()
        return SentSms(*row) if row else None

    def has_outcome(self, message_id: int) -> bool:
        """True when a relief check already has a recorded answer."""
        with self._session() as session:
            found = session.scalar(select(Outcome.id).where(Outcome.message_id == message_id))
            return found is not None

    def count_replies_to(self, message_id: int, kinds: Collection[str]) -> int:
        """How many inbound SMS of these kinds answered one of our messages."""
        with self._session() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        InboundMessage.in_reply_to_message_id == message_id,
                        InboundMessage.kind.in_(list(kinds)),
                    )
                )
                or 0
            )

    def earlier_pain(self, patient_id: int, other_than_message_id: int) -> OutcomeView | None:
        """The patient's latest leg-pain answer to another (earlier) relief check."""
        query = (
            _outcome_query()
            .where(
                Outcome.patient_id == patient_id,
                Outcome.message_id != other_than_message_id,
                Outcome.leg_pain.is_not(None),
            )
            .order_by(Outcome.received_at.desc(), Outcome.id.desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.execute(query).one_or_none()
        return OutcomeView(*row) if row else None

    def last_keyword_kind(self, phone: str) -> str | None:
        """Whether this phone's latest opt-out/opt-in keyword was an opt-out or an opt-in."""
        with self._session() as session:
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
        with self._session() as session:
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
        with self._session() as session:
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

    def active_enrollments(self, patient_ids: Collection[int]) -> list[int]:
        """The active enrollments of these patients, to re-plan after their SMS state changed."""
        with self._session() as session:
            return list(
                session.scalars(
                    select(Enrollment.id)
                    .where(
                        Enrollment.patient_id.in_(list(patient_ids)),
                        Enrollment.status == EnrollmentStatus.ACTIVE.value,
                    )
                    .order_by(Enrollment.id)
                )
            )

    # -- inbound SMS: what they cause -------------------------------------------------------

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
            self._insert_flags(session, flags, inbound.received_at)
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
            self._insert_flags(session, flags, now)
            moved, cancelled = self._stop_pending_sms(
                session, ids, now, f"patient opted out of SMS ({keyword})", email_steps
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
        with self._session() as session:
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
        with self._session() as session:
            session.execute(
                update(Patient)
                .where(Patient.id == patient_id, Patient.phone_invalid_at.is_not(None))
                .values(phone_invalid_at=None, updated_at=now)
            )

    def update_delivery_status(
        self, provider_message_id: str, status: str, error_code: str | None, now: datetime
    ) -> DeliveryUpdate | None:
        """Record a provider's delivery status for one of our messages (None if unknown).

        A status older than the one recorded (callbacks may arrive out of order) is ignored.
        """
        with self._session() as session:
            row = session.execute(
                select(
                    Message.id,
                    Message.patient_id,
                    Message.recipient,
                    Message.provider_status,
                    Message.error_code,
                ).where(Message.provider_message_id == provider_message_id)
            ).first()
            if row is None:
                return None
            known = _STATUS_RANK.get(row.provider_status or "", -1)
            if _STATUS_RANK.get(status, 0) < known:
                return DeliveryUpdate(
                    row.id, row.patient_id, row.recipient, row.provider_status, row.error_code
                )
            code = error_code or row.error_code
            session.execute(
                update(Message)
                .where(Message.id == row.id)
                .values(provider_status=status, error_code=code, updated_at=now)
            )
            new_error = error_code is not None and error_code != row.error_code
            return DeliveryUpdate(row.id, row.patient_id, row.recipient, status, code, new_error)

    # -- flags ------------------------------------------------------------------------------

    def create_flags(self, flags: Iterable[NewFlag], now: datetime) -> None:
        """Raise flags for staff."""
        with self._session() as session:
            self._insert_flags(session, flags, now)

    def resolve_flag(self, flag_id: int, now: datetime) -> FlagView:
        """Mark a flag as dealt with."""
        with self._session() as session:
            session.execute(
                update(Flag)
                .where(Flag.id == flag_id, Flag.resolved_at.is_(None))
                .values(resolved_at=now)
            )
            row = session.execute(_flag_query().where(Flag.id == flag_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no flag {flag_id}")
        return FlagView(*row)

    def list_flags(
        self,
        *,
        open_only: bool = True,
        kind: str | None = None,
        external_id: str | None = None,
        limit: int = 500,
    ) -> list[FlagView]:
        """Flags, newest first."""
        query = _flag_query()
        if open_only:
            query = query.where(Flag.resolved_at.is_(None))
        if kind:
            query = query.where(Flag.kind == kind)
        if external_id:
            query = query.where(Patient.external_id == external_id)
        query = query.order_by(Flag.created_at.desc(), Flag.id.desc()).limit(limit)
        with self._session() as session:
            return [FlagView(*row) for row in session.execute(query)]

    def relief_checks_without_reply(
        self, sent_before: datetime, step_prefixes: Collection[str], limit: int = 500
    ) -> list[SentSms]:
        """Relief checks sent before `sent_before` that got no reply and are not yet flagged.

        Patients who opted out since, and enrollments staff have ended, are left alone.
        """
        replied = exists().where(InboundMessage.in_reply_to_message_id == Message.id)
        answered = exists().where(Outcome.message_id == Message.id)
        flagged = exists().where(
            Flag.message_id == Message.id, Flag.kind == FlagKind.NO_REPLY.value
        )
        query = (
            _sent_sms_query()
            .join(Patient, Patient.id == Message.patient_id)
            .join(Enrollment, Enrollment.id == Message.enrollment_id)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE.value,
                Message.sent_at <= sent_before,
                or_(*(Message.step_id.startswith(p, autoescape=True) for p in step_prefixes)),
                Patient.sms_opted_out_at.is_(None),
                ~replied,
                ~answered,
                ~flagged,
            )
            .order_by(Message.sent_at, Message.id)
            .limit(limit)
        )
        with self._session() as session:
            return [SentSms(*row) for row in session.execute(query)]

    # -- staff views ------------------------------------------------------------------------

    def list_outcomes(
        self, *, external_id: str | None = None, since: datetime | None = None, limit: int = 500
    ) -> list[OutcomeView]:
        """Relief-check answers, newest first."""
        query = _outcome_query()
        if external_id:
            query = query.where(Patient.external_id == external_id)
        if since:
            query = query.where(Outcome.received_at >= since)
        query = query.order_by(Outcome.received_at.desc(), Outcome.id.desc()).limit(limit)
        with self._session() as session:
            return [OutcomeView(*row) for row in session.execute(query)]

    def list_inbound(
        self,
        *,
        external_id: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[InboundView]:
        """Inbound SMS, newest first."""
        query = _inbound_query()
        if external_id:
            query = query.where(Patient.external_id == external_id)
        if kind:
            query = query.where(InboundMessage.kind == kind)
        if since:
            query = query.where(InboundMessage.received_at >= since)
        query = query.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(
            limit
        )
        with self._session() as session:
            return [InboundView(*row) for row in session.execute(query)]

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
        with self._session() as session:
            return [OptOutEventView(*row) for row in session.execute(query)]

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _atomic_inbound(self, inbound: NewInbound | None) -> Iterator[tuple[Session, int]]:
        """A transaction that starts by recording `inbound` (if given); a repeat raises
        DuplicateInbound and changes nothing."""
        try:
            with self._session() as session:
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

    def _insert_flags(self, session: Session, flags: Iterable[NewFlag], now: datetime) -> None:
        rows = [{**asdict(flag), "created_at": now, "resolved_at": None} for flag in flags]
        if rows:
            session.execute(insert(Flag), rows)

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


def _sent_sms_query() -> Select[*tuple[Any, ...]]:
    return select(
        Message.id, Message.patient_id, Message.plan_id, Message.step_id, Message.sent_at
    ).where(
        Message.channel == "sms",
        Message.status == MessageStatus.SENT.value,
        Message.sent_at.is_not(None),
    )


def _outcome_query() -> Select[*tuple[Any, ...]]:
    return select(
        Outcome.id,
        Patient.external_id,
        Outcome.message_id,
        Outcome.step_id,
        Outcome.leg_pain,
        Outcome.walking_improved,
        Outcome.raw,
        Outcome.received_at,
    ).join(Patient, Patient.id == Outcome.patient_id)


def _flag_query() -> Select[*tuple[Any, ...]]:
    return select(
        Flag.id,
        Patient.external_id,
        Flag.message_id,
        Flag.kind,
        Flag.detail,
        Flag.created_at,
        Flag.resolved_at,
    ).join(Patient, Patient.id == Flag.patient_id)


def _inbound_query() -> Select[*tuple[Any, ...]]:
    return (
        select(
            InboundMessage.id,
            InboundMessage.provider_message_id,
            Patient.external_id,
            InboundMessage.from_phone,
            InboundMessage.body,
            InboundMessage.received_at,
            InboundMessage.kind,
            InboundMessage.in_reply_to_message_id,
            Message.step_id,
        )
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .outerjoin(Message, Message.id == InboundMessage.in_reply_to_message_id)
    )


__all__ = [
    "ApiKeyRecord",
    "DeliveryUpdate",
    "DuplicateInbound",
    "FlagView",
    "InboundStore",
    "InboundView",
    "NewFlag",
    "NewInbound",
    "NewOutcome",
    "OptOutEventView",
    "OutcomeView",
    "PhoneMatch",
    "SentSms",
    "SmsStop",
]
