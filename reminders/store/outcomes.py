"""Outcomes and flags: what patients answered to relief checks, and what staff must look at."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import case, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from reminders.errors import NotFoundError
from reminders.store.database import Database
from reminders.store.inbound_schema import Flag, FlagKind, InboundKind, InboundMessage, Outcome
from reminders.store.queries import flag_query, flag_view, outcome_query, sent_sms_query
from reminders.store.reply_records import FlagView, NewFlag, OutcomeView, SentSms, StepOutcomes
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, Patient


def insert_flags(session: Session, flags: Iterable[NewFlag], now: datetime) -> None:
    """Raise flags inside the caller's transaction (with the inbound SMS that caused them)."""
    rows = [{**asdict(flag), "created_at": now, "resolved_at": None} for flag in flags]
    if rows:
        session.execute(insert(Flag), rows)


class OutcomeRepository:
    """Relief-check answers and staff flags."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def has_outcome(self, message_id: int) -> bool:
        """True when a relief check already has a recorded answer."""
        with self.database.session() as session:
            found = session.scalar(select(Outcome.id).where(Outcome.message_id == message_id))
            return found is not None

    def count_replies_to(self, message_id: int, kinds: Collection[InboundKind]) -> int:
        """How many inbound SMS of these kinds answered one of our messages."""
        with self.database.session() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        InboundMessage.in_reply_to_message_id == message_id,
                        InboundMessage.kind.in_([kind.value for kind in kinds]),
                    )
                )
                or 0
            )

    def earlier_pain(self, patient_id: int, other_than_message_id: int) -> OutcomeView | None:
        """The patient's latest leg-pain answer to another (earlier) relief check."""
        query = (
            outcome_query()
            .where(
                Outcome.patient_id == patient_id,
                Outcome.message_id != other_than_message_id,
                Outcome.leg_pain.is_not(None),
            )
            .order_by(Outcome.received_at.desc(), Outcome.id.desc())
            .limit(1)
        )
        with self.database.session() as session:
            row = session.execute(query).one_or_none()
        return OutcomeView(*row) if row else None

    def create_flags(self, flags: Iterable[NewFlag], now: datetime) -> None:
        """Raise flags for staff."""
        with self.database.session() as session:
            insert_flags(session, flags, now)

    def resolve_flag(
        self, flag_id: int, now: datetime, by: str | None = None, note: str | None = None
    ) -> FlagView:
        """Mark a flag as dealt with (by whom, with a note)."""
        with self.database.session() as session:
            session.execute(
                update(Flag)
                .where(Flag.id == flag_id, Flag.resolved_at.is_(None))
                .values(resolved_at=now, resolved_by=by, resolution_note=note)
            )
            row = session.execute(flag_query().where(Flag.id == flag_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no flag {flag_id}")
        return flag_view(row)

    def list_flags(
        self,
        *,
        open_only: bool = True,
        kind: FlagKind | None = None,
        external_id: str | None = None,
        limit: int = 500,
    ) -> list[FlagView]:
        """Flags, newest first."""
        query = flag_query()
        if open_only:
            query = query.where(Flag.resolved_at.is_(None))
        if kind:
            query = query.where(Flag.kind == kind.value)
        if external_id:
            query = query.where(Patient.external_id == external_id)
        query = query.order_by(Flag.created_at.desc(), Flag.id.desc()).limit(limit)
        with self.database.session() as session:
            return [flag_view(row) for row in session.execute(query)]

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
            sent_sms_query()
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
        with self.database.session() as session:
            return [SentSms(*row) for row in session.execute(query)]

    def outcomes_by_step(self, since: datetime | None = None) -> list[StepOutcomes]:
        """Relief-check answers summed per check (week 4, week 6, ...), in step order."""
        query = select(
            Outcome.step_id,
            func.count(),
            func.count(Outcome.leg_pain),
            func.avg(Outcome.leg_pain),
            func.sum(case((Outcome.walking_improved.is_(True), 1), else_=0)),
            func.count(Outcome.walking_improved),
        )
        if since:
            query = query.where(Outcome.received_at >= since)
        query = query.group_by(Outcome.step_id).order_by(Outcome.step_id)
        with self.database.session() as session:
            return [
                StepOutcomes(
                    step,
                    int(answers),
                    int(rated),
                    float(avg) if avg is not None else None,
                    int(walking or 0),
                    int(walking_answered),
                )
                for step, answers, rated, avg, walking, walking_answered in session.execute(query)
            ]

    def list_outcomes(
        self, *, external_id: str | None = None, since: datetime | None = None, limit: int = 500
    ) -> list[OutcomeView]:
        """Relief-check answers, newest first."""
        query = outcome_query()
        if external_id:
            query = query.where(Patient.external_id == external_id)
        if since:
            query = query.where(Outcome.received_at >= since)
        query = query.order_by(Outcome.received_at.desc(), Outcome.id.desc()).limit(limit)
        with self.database.session() as session:
            return [OutcomeView(*row) for row in session.execute(query)]
