"""The rows an enroll batch writes and reads in its transaction: the patients' state, the
patients and enrollments upserted in a few batched statements, and the messages already stored
for the diff. Each function works on the caller's session; `arrays` says whether the database
binds lists of ids as arrays (see `one_of`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, select, update
from sqlalchemy.orm import Session

from reminders.schedule_diff import StoredMessage
from reminders.store.bulk import insert_with_ids
from reminders.store.database import one_of, value_batches
from reminders.store.records import EnrollmentRequest, PatientRecord, PatientState, contact_channel
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient

PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
ENROLLMENTS: Table = Enrollment.__table__  # type: ignore[assignment]
STORED_MESSAGE_COLUMNS = (
    Message.id,
    Message.step_id,
    Message.status,
    Message.due_at,
    Message.send_before,
    Message.channel,
    Message.language,
    Message.template,
    Message.plan_version,
    Message.status_reason,
)
"""What the schedule diff reads of an outbox row: a `StoredMessage`'s fields, in their order."""


def read_states(
    session: Session, external_ids: Sequence[str], *, arrays: bool, lock: bool = False
) -> dict[str, PatientState]:
    """Opt-out and invalid-phone state of known patients, by external id; with `lock`, their
    rows locked until the transaction ends, in id order (PostgreSQL)."""
    states: dict[str, PatientState] = {}
    query = select(
        Patient.external_id,
        Patient.id,
        Patient.sms_opted_out_at,
        Patient.phone_invalid_at,
        Patient.phone,
    ).where(one_of(Patient.external_id, "ids", arrays=arrays, element=String()))
    if lock:
        query = query.order_by(Patient.id).with_for_update(of=Patient)
    for batch in value_batches(external_ids, arrays=arrays):
        rows = session.execute(query, {"ids": list(batch)})
        for external_id, pid, opted_out, invalid, phone in rows:
            states[external_id] = PatientState(pid, opted_out, invalid, phone)
    return states


def upsert_patients(
    session: Session,
    requests: Sequence[EnrollmentRequest],
    now: datetime,
    states: Mapping[str, PatientState] | None,
    *,
    arrays: bool,
) -> tuple[dict[str, int], set[int]]:
    """Every patient's id by external id, and the ids of the patients inserted now."""
    records = {r.patient.external_id: r.patient for r in requests}
    if states is None:
        states = read_states(session, list(records), arrays=arrays)
    known = {eid: states[eid].patient_id for eid in records if eid in states}
    if known:
        session.execute(
            update(Patient),
            [
                {**_patient_values(records[eid]), "id": pid, "updated_at": now}
                for eid, pid in known.items()
            ],
        )
    renumbered = [r.patient.external_id for r in requests if r.clear_phone_invalid]
    clear = (
        update(Patient)
        .where(one_of(Patient.id, "ids", arrays=arrays), Patient.phone_invalid_at.is_not(None))
        .values(phone_invalid_at=None)
    )
    renumbered_ids = [known[eid] for eid in renumbered if eid in known]
    for batch in value_batches(renumbered_ids, arrays=arrays):
        session.execute(clear, {"ids": list(batch)})
    new = [
        {**_patient_values(rec), "created_at": now, "updated_at": now}
        for eid, rec in records.items()
        if eid not in known
    ]
    inserted: set[int] = set()
    for external_id, pid in insert_with_ids(session, PATIENTS, new, ["external_id"]):
        known[external_id] = pid
        inserted.add(pid)
    return known, inserted


def upsert_enrollments(
    session: Session,
    requests: Sequence[EnrollmentRequest],
    patient_ids: dict[str, int],
    new_patients: set[int],
    now: datetime,
    *,
    arrays: bool,
) -> tuple[dict[tuple[str, str], int], set[tuple[str, str]]]:
    """Every enrollment's id by (external id, plan), and the keys of those inserted now.

    A patient inserted now has no enrollment yet: only the others' are looked up.
    """
    by_patient = {patient_ids[r.patient.external_id]: r.patient.external_id for r in requests}
    ids: dict[tuple[str, str], int] = {}
    query = select(Enrollment.patient_id, Enrollment.plan_id, Enrollment.id).where(
        one_of(Enrollment.patient_id, "ids", arrays=arrays)
    )
    known = [pid for pid in by_patient if pid not in new_patients]
    for batch in value_batches(known, arrays=arrays):
        for pid, plan_id, eid in session.execute(query, {"ids": list(batch)}):
            ids[(by_patient[pid], plan_id)] = eid
    updates, new = [], []
    for r in requests:
        key = (r.patient.external_id, r.plan_id)
        values = {
            "plan_version": r.plan_version,
            "plan_digest": r.plan_digest,
            "procedure_date": r.procedure_date,
            "procedure_time": r.procedure_time,
            "status": EnrollmentStatus.ACTIVE.value,
            "status_reason": None,
            "warnings": "\n".join(r.warnings) or None,
            "updated_at": now,
        }
        if key in ids:
            updates.append({**values, "id": ids[key]})
        else:
            new.append(
                {
                    **values,
                    "patient_id": patient_ids[r.patient.external_id],
                    "plan_id": r.plan_id,
                    "created_at": now,
                }
            )
    if updates:
        session.execute(update(Enrollment), updates)
    created: set[tuple[str, str]] = set()
    for pid, plan_id, eid in insert_with_ids(session, ENROLLMENTS, new, ["patient_id", "plan_id"]):
        ids[(by_patient[pid], plan_id)] = eid
        created.add((by_patient[pid], plan_id))
    return ids, created


def messages_by_enrollment(
    session: Session, enrollment_ids: Iterable[int], *, arrays: bool
) -> dict[int, list[StoredMessage]]:
    """The stored messages of these enrollments, what the schedule diff compares against."""
    grouped: dict[int, list[StoredMessage]] = defaultdict(list)
    query = select(Message.enrollment_id, *STORED_MESSAGE_COLUMNS).where(
        one_of(Message.enrollment_id, "ids", arrays=arrays)
    )
    for batch in value_batches(list(enrollment_ids), arrays=arrays):
        rows = session.execute(query, {"ids": list(batch)})
        for enrollment_id, row_id, step_id, status, due_at, before, channel, *rest in rows:
            parsed = MessageStatus(status), due_at, before, contact_channel(channel)
            stored = StoredMessage(row_id, step_id, *parsed, *rest)
            grouped[enrollment_id].append(stored)
    return grouped


def _patient_values(record: PatientRecord) -> dict[str, Any]:
    return {
        "external_id": record.external_id,
        "first_name": record.first_name,
        "timezone": record.timezone,
        "language": record.language,
        "preferred_channel": record.preferred_channel,
        "phone": record.phone,
        "email": record.email,
        "sms_consent": record.sms_consent,
        "attributes": dict(record.attributes),
    }
