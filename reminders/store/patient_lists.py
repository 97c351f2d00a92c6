"""The patient list staff page through: patients with their enrollments and message counts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from reminders.store.database import Database, chunks
from reminders.store.records import (
    EnrollmentStatus,
    PatientSearch,
    PatientSummary,
    contact_channel,
)
from reminders.store.schema import Enrollment, Message, MessageStatus, Patient


class PatientLists:
    """Read-only: pages of patients, narrowed by a search, with their message counts."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def list_patients(
        self, limit: int = 500, after: str | None = None, search: PatientSearch | None = None
    ) -> list[PatientSummary]:
        """Patients in external-id order (after `after`, a keyset page) with message counts.

        One page of patients is read by the external-id index and only its enrollments'
        messages are counted, so a page costs the same at any table size. `search` narrows
        the list (an id or name prefix, a plan, a status, a procedure date range).
        """
        page = select(Patient).order_by(Patient.external_id).limit(limit)
        if after is not None:
            page = page.where(Patient.external_id > after)
        with self.database.session() as session:
            if search is not None:
                page = _narrowed(page, search, _common(session, search.text))
            patients = list(session.scalars(page))
            enrollments: dict[int, list[Enrollment]] = defaultdict(list)
            for chunk in chunks([p.id for p in patients]):
                found = session.scalars(select(Enrollment).where(Enrollment.patient_id.in_(chunk)))
                for enrollment in sorted(found, key=lambda e: e.id):
                    enrollments[enrollment.patient_id].append(enrollment)
            counts = self._message_counts(
                session, [e.id for rows in enrollments.values() for e in rows]
            )
        summaries = []
        for p in patients:
            rows: list[Enrollment | None] = list(enrollments.get(p.id, [])) or [None]
            for e in rows:
                pending, sent, failed = counts.get(e.id, (0, 0, 0)) if e else (0, 0, 0)
                summaries.append(
                    PatientSummary(
                        external_id=p.external_id,
                        first_name=p.first_name,
                        phone=p.phone,
                        email=p.email,
                        timezone=p.timezone,
                        language=p.language,
                        preferred_channel=contact_channel(p.preferred_channel),
                        sms_opted_out_at=p.sms_opted_out_at,
                        plan_id=e.plan_id if e else None,
                        procedure_date=e.procedure_date if e else None,
                        enrollment_status=EnrollmentStatus(e.status) if e else None,
                        pending=pending,
                        sent=sent,
                        failed=failed,
                    )
                )
        return summaries

    def _message_counts(
        self, session: Session, enrollment_ids: Sequence[int]
    ) -> dict[int, tuple[int, int, int]]:
        """Pending, sent and failed messages of these enrollments only."""
        counts: dict[int, tuple[int, int, int]] = {}
        for chunk in chunks(enrollment_ids):
            rows = session.execute(
                select(
                    Message.enrollment_id,
                    func.sum(_is(MessageStatus.PENDING)),
                    func.sum(_is(MessageStatus.SENT)),
                    func.sum(_is(MessageStatus.FAILED)),
                )
                .where(Message.enrollment_id.in_(chunk))
                .group_by(Message.enrollment_id)
            )
            for enrollment_id, pending, sent, failed in rows:
                counts[enrollment_id] = (int(pending or 0), int(sent or 0), int(failed or 0))
        return counts


# A prefix that this many patients share is read by walking patients in page order.
COMMON_PREFIX = 5000


def _matching(text: str, *, indexed: bool = True) -> Any:
    """Patients whose id or first name starts with `text` (any case)."""
    if indexed:
        return or_(_starts_with(Patient.external_id, text), _starts_with(Patient.first_name, text))
    # `|| ''` keeps the database off the lowered-column indexes (0010).
    pattern = _like_prefix(text.lower())
    return or_(
        func.lower(Patient.external_id.concat("")).like(pattern, escape="\\"),
        func.lower(Patient.first_name.concat("")).like(pattern, escape="\\"),
    )


def _common(session: Session, text: str) -> bool:
    """Whether at least COMMON_PREFIX patients match `text`, counted from the indexes.

    A rare prefix is read from the lowered-column indexes and its matches sorted (about 20 ms
    for 5,000 on SQLite); sorting a common one ("m", 100,000 matches) took 380 ms, while
    walking patients in external-id order finds a page of them at once. The walk is slow only
    when thousands match and all sit late in id order.
    """
    text = text.strip()
    if not text:
        return False
    probe = select(Patient.id).where(_matching(text)).limit(COMMON_PREFIX).subquery()
    return (session.scalar(select(func.count()).select_from(probe)) or 0) >= COMMON_PREFIX


def _narrowed(page: Any, search: PatientSearch, common: bool = False) -> Any:
    """The patient page limited to those matching `search`."""
    text = search.text.strip()
    if text:
        page = page.where(_matching(text, indexed=not common))
    if search.external_id is not None:
        page = page.where(Patient.external_id == search.external_id)
    if search.needs_enrollment:
        match = select(Enrollment.id).where(Enrollment.patient_id == Patient.id)
        if search.plan_id:
            match = match.where(Enrollment.plan_id == search.plan_id)
        if search.status:
            match = match.where(Enrollment.status == search.status.value)
        if search.procedure_from:
            match = match.where(Enrollment.procedure_date >= search.procedure_from)
        if search.procedure_to:
            match = match.where(Enrollment.procedure_date <= search.procedure_to)
        page = page.where(match.exists())
    return page


def _starts_with(column: Any, text: str) -> Any:
    """`column` lowered starts with `text` lowered, read from the lowered-column index (0010).

    The LIKE is the exact test; the range it implies is stated too, so that SQLite (which does
    not take a LIKE to an expression index) reads only that range. PostgreSQL's
    text_pattern_ops index serves the LIKE itself.
    """
    low = text.lower()
    lowered = func.lower(column)
    narrowed = lowered.like(_like_prefix(low), escape="\\") & (lowered >= low)
    if low[-1] < chr(0x10FFFF):
        narrowed = narrowed & (lowered < low[:-1] + chr(ord(low[-1]) + 1))
    return narrowed


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching values that start with `text` (its wildcards taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _is(status: MessageStatus) -> Any:
    return case((Message.status == status.value, 1), else_=0)
