"""Patients and their enrollments: enrolling (with the enrollment's messages), lookups.

The rows an enroll batch upserts and reads are `enroll_rows`; the patient list staff page
through is `patient_lists`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Table, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from reminders.errors import NotFoundError
from reminders.plans.versions import AppliedVersion
from reminders.schedule_diff import SMS_STOPPED_REASONS, diff_schedule
from reminders.store.applied import read_applied_versions
from reminders.store.bulk import insert_rows
from reminders.store.database import Database
from reminders.store.enroll_rows import (
    STORED_MESSAGE_COLUMNS,
    messages_by_enrollment,
    read_states,
    upsert_enrollments,
    upsert_patients,
)
from reminders.store.records import (
    EnrollmentDetails,
    EnrollmentOutcome,
    EnrollmentRequest,
    PatientState,
    StoredEnrollment,
    StoredPatient,
    contact_channel,
)
from reminders.store.schedule_rows import RowChanges
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient

__all__ = ["STORED_MESSAGE_COLUMNS", "PatientRepository"]

MESSAGES: Table = Message.__table__  # type: ignore[assignment]


class PatientRepository:
    """Patients, their enrollments in plans, and the messages an enrollment plans."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def patient_states(
        self, external_ids: Iterable[str], *, lock: bool = False
    ) -> dict[str, PatientState]:
        """Opt-out and invalid-phone state of known patients, by external id.

        `lock`: the rows found stay locked until the transaction ends, taken in id order
        (PostgreSQL), as `enrollment_id` locks an edited patient: an enroll then holds its
        known patients before the numbers it locks, in the same order as an edit does.
        """
        with self.database.session() as session:
            return read_states(
                session,
                list(dict.fromkeys(external_ids)),
                arrays=self.database.binds_arrays,
                lock=lock,
            )

    def lock_patients(self, patient_ids: Collection[int], phones: Collection[str]) -> None:
        """Lock these patients' rows and those of everyone on these numbers until the
        transaction ends, in id order (PostgreSQL), as an enroll or an edit locks its patients:
        a STOP takes them before its number, so it never holds the number while waiting for a
        patient an enroll holds while waiting for the number."""
        if not self.database.concurrent_writers or not (patient_ids or phones):
            return
        with self.database.session() as session:
            session.execute(
                select(Patient.id)
                .where(or_(Patient.id.in_(list(patient_ids)), Patient.phone.in_(list(phones))))
                .order_by(Patient.id)
                .with_for_update()
            )

    def enroll_many(
        self,
        requests: Sequence[EnrollmentRequest],
        now: datetime,
        *,
        dry_run: bool = False,
        states: Mapping[str, PatientState] | None = None,
    ) -> list[EnrollmentOutcome]:
        """Create or update patients and enrollments and reconcile their pending messages.

        Idempotent: enrolling the same data again changes nothing. Sent messages stay in the
        history and their steps are not planned again; pending ones move to their new time.
        With `dry_run` the changes are computed and reported but rolled back. `states`, what
        `patient_states` read of these patients earlier in the same unit of work, spares
        looking them up again.
        """
        if not requests:
            return []
        opened = self.database.rolled_back() if dry_run else self.database.session()
        with opened as session:
            arrays = self.database.binds_arrays
            patient_ids, new_patients = upsert_patients(
                session, requests, now, states, arrays=arrays
            )
            enrollment_ids, created = upsert_enrollments(
                session, requests, patient_ids, new_patients, now, arrays=arrays
            )
            existing = messages_by_enrollment(
                session,
                [eid for key, eid in enrollment_ids.items() if key not in created],
                arrays=arrays,
            )
            rows = RowChanges()
            outcomes = []
            for request in requests:
                key = (request.patient.external_id, request.plan_id)
                enrollment_id = enrollment_ids[key]
                patient_id = patient_ids[request.patient.external_id]
                diff = diff_schedule(
                    existing.get(enrollment_id, []),
                    request.messages,
                    request.plan_version,
                    opting_in=request.opting_in,
                    keep_cancelled=request.keep_cancelled,
                )
                rows.add(diff, request, patient_id, enrollment_id, now)
                outcomes.append(
                    EnrollmentOutcome(
                        request.patient.external_id,
                        patient_id,
                        enrollment_id,
                        key in created,
                        diff.changes,
                        request.warnings,
                    )
                )
            insert_rows(session, MESSAGES, rows.inserts)
            if rows.updates:
                session.execute(update(Message), rows.updates)
            if rows.cancels:
                session.execute(update(Message), rows.cancels)
        return outcomes

    def enrollment_id(self, external_id: str, plan_id: str | None = None) -> tuple[int, str]:
        """The enrollment of a patient (on `plan_id`, or their only one) and its plan id.

        Every edit (reschedule, details, cancel, a feed's booking) finds what it edits here
        first, so the patient's row is locked here until the transaction ends (PostgreSQL;
        SQLite serialises writers): a second edit waits, then reads what the first wrote,
        instead of writing back what it read before. The patient first, as the claim does.
        """
        with self.database.session() as session:
            query = (
                select(Enrollment.id, Enrollment.plan_id)
                .join(Patient, Patient.id == Enrollment.patient_id)
                .where(Patient.external_id == external_id)
                .with_for_update(of=Patient)
            )
            if plan_id:
                query = query.where(Enrollment.plan_id == plan_id)
            rows = session.execute(query).all()
        if not rows:
            raise NotFoundError(
                f"no enrollment for patient '{external_id}'"
                + (f" on plan '{plan_id}'" if plan_id else "")
            )
        if len(rows) > 1:
            plans = ", ".join(r.plan_id for r in rows)
            raise NotFoundError(f"patient '{external_id}' is on several plans ({plans}); name one")
        return rows[0].id, rows[0].plan_id

    def enrollment_details(self, enrollment_id: int) -> EnrollmentDetails:
        """The patient and procedure facts of one enrollment, for recomputing its schedule."""
        with self.database.session() as session:
            row = session.execute(
                select(Patient, Enrollment)
                .join(Enrollment, Enrollment.patient_id == Patient.id)
                .where(Enrollment.id == enrollment_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"no enrollment {enrollment_id}")
            patient, enrollment = row
            return EnrollmentDetails(_stored_patient(patient), _stored_enrollment(enrollment))

    def applied_versions(self) -> list[AppliedVersion]:
        """Every (plan, version, digest) that active enrollments follow, with how many do."""
        return read_applied_versions(self.database.engine)

    def active_enrollment_ids(self, plan_id: str) -> list[int]:
        """Every active enrollment on a plan."""
        with self.database.session() as session:
            return list(
                session.scalars(
                    select(Enrollment.id)
                    .where(Enrollment.plan_id == plan_id)
                    .where(Enrollment.status == EnrollmentStatus.ACTIVE.value)
                    .order_by(Enrollment.id)
                )
            )

    def active_enrollments(self, patient_ids: Collection[int]) -> list[int]:
        """The active enrollments of these patients, to re-plan after their SMS state changed."""
        with self.database.session() as session:
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

    def cancel_enrollment(self, enrollment_id: int, reason: str, now: datetime) -> int:
        """Cancel an enrollment and all its pending messages; returns how many were cancelled."""
        with self.database.session() as session:
            _lock_patient_of(session, enrollment_id)
            session.execute(
                update(Enrollment)
                .where(Enrollment.id == enrollment_id)
                .values(
                    status=EnrollmentStatus.CANCELLED.value, status_reason=reason, updated_at=now
                )
            )
            result = session.execute(
                update(Message)
                .where(Message.enrollment_id == enrollment_id)
                .where(Message.status == MessageStatus.PENDING.value)
                .values(status=MessageStatus.CANCELLED.value, status_reason=reason, updated_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def pending_steps(self, enrollment_id: int) -> list[tuple[str, datetime]]:
        """(step id, due instant) of an enrollment's messages not yet sent, in due order."""
        with self.database.session() as session:
            rows = session.execute(
                select(Message.step_id, Message.due_at)
                .where(Message.enrollment_id == enrollment_id)
                .where(Message.status == MessageStatus.PENDING.value)
                .order_by(Message.due_at, Message.id)
            )
            return [(step_id, due_at) for step_id, due_at in rows]

    def cancel_pending_steps(
        self, enrollment_id: int, phases: Sequence[str], reason: str, now: datetime
    ) -> int:
        """Cancel an enrollment's messages of some phases that may still go: pending, or held
        back only because SMS stopped (which opting in would bring back); returns how many."""
        held_back = and_(
            Message.status == MessageStatus.SKIPPED.value,
            or_(*(Message.status_reason.startswith(r) for r in SMS_STOPPED_REASONS)),
        )
        with self.database.session() as session:
            _lock_patient_of(session, enrollment_id)
            result = session.execute(
                update(Message)
                .where(Message.enrollment_id == enrollment_id)
                .where(or_(Message.status == MessageStatus.PENDING.value, held_back))
                .where(Message.phase.in_(list(phases)))
                .values(status=MessageStatus.CANCELLED.value, status_reason=reason, updated_at=now)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def delete_patient(self, external_id: str) -> bool:
        """Remove a patient and what is stored for them (enrollments, messages, outcomes and
        flags go with them; inbound texts stay, unlinked). False when there was none."""
        with self.database.session() as session:
            result = session.execute(delete(Patient).where(Patient.external_id == external_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _lock_patient_of(session: Session, enrollment_id: int) -> None:
    """Lock the enrollment's patient row before any of its messages (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers). The claim locks the patient, then its
    messages: a writer that locked a message first and then waited for the claim's deadlocked
    with it."""
    session.execute(
        select(Patient.id)
        .join(Enrollment, Enrollment.patient_id == Patient.id)
        .where(Enrollment.id == enrollment_id)
        .with_for_update(of=Patient)
    )


def _stored_patient(row: Patient) -> StoredPatient:
    return StoredPatient(
        id=row.id,
        external_id=row.external_id,
        first_name=row.first_name,
        phone=row.phone,
        email=row.email,
        timezone=row.timezone,
        language=row.language,
        preferred_channel=contact_channel(row.preferred_channel),
        sms_consent=row.sms_consent,
        sms_opted_out_at=row.sms_opted_out_at,
        phone_invalid_at=row.phone_invalid_at,
        attributes=dict(row.attributes or {}),
    )


def _stored_enrollment(row: Enrollment) -> StoredEnrollment:
    return StoredEnrollment(
        id=row.id,
        plan_id=row.plan_id,
        plan_version=row.plan_version,
        procedure_date=row.procedure_date,
        procedure_time=row.procedure_time,
        status=EnrollmentStatus(row.status),
        status_reason=row.status_reason,
        warnings=tuple(line for line in (row.warnings or "").splitlines() if line),
    )
