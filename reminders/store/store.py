"""Every query the service makes, in one place; values in, plain records out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from reminders.errors import NotFoundError
from reminders.schedule import PlannedMessage
from reminders.store import migrate
from reminders.store.database import make_engine
from reminders.store.records import (
    ClaimedMessage,
    EnrollmentOutcome,
    EnrollmentRequest,
    MessageView,
    PatientRecord,
    PatientState,
    PatientSummary,
    ScheduleChange,
)
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient

MESSAGES: Table = Message.__table__  # type: ignore[assignment]
PATIENTS: Table = Patient.__table__  # type: ignore[assignment]
ENROLLMENTS: Table = Enrollment.__table__  # type: ignore[assignment]
FINAL_FOR_STEP = {MessageStatus.SENT.value}
_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """The service's database: patients, enrollments and the outbox of messages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._finish_statements: dict[tuple[str, ...], Any] = {}

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        """Connect and (by default) apply pending migrations."""
        store = cls(make_engine(url))
        if migrate_schema:
            migrate.upgrade(store.engine)
        return store

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # -- enrollment -------------------------------------------------------------------------

    def patient_states(self, external_ids: Iterable[str]) -> dict[str, PatientState]:
        """Opt-out and invalid-phone state of known patients, by external id."""
        ids = list(dict.fromkeys(external_ids))
        states: dict[str, PatientState] = {}
        with self._session() as session:
            for chunk in _chunks(ids):
                rows = session.execute(
                    select(
                        Patient.external_id,
                        Patient.id,
                        Patient.sms_opted_out_at,
                        Patient.phone_invalid_at,
                        Patient.phone,
                    ).where(Patient.external_id.in_(chunk))
                )
                for external_id, pid, opted_out, invalid, phone in rows:
                    states[external_id] = PatientState(pid, opted_out, invalid, phone)
        return states

    def enroll_many(
        self, requests: Sequence[EnrollmentRequest], now: datetime, *, dry_run: bool = False
    ) -> list[EnrollmentOutcome]:
        """Create or update patients and enrollments and reconcile their pending messages.

        Idempotent: enrolling the same data again changes nothing. Sent messages stay in the
        history and their steps are not planned again; pending ones move to their new time.
        With `dry_run` the changes are computed and reported but rolled back.
        """
        if not requests:
            return []
        with Session(self.engine, expire_on_commit=False) as session:
            session.begin()
            patient_ids = self._upsert_patients(session, requests, now)
            enrollment_ids, created = self._upsert_enrollments(session, requests, patient_ids, now)
            existing = self._messages_by_enrollment(session, enrollment_ids.values())
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            cancels: list[dict[str, Any]] = []
            outcomes = []
            for request in requests:
                key = (request.patient.external_id, request.plan_id)
                enrollment_id = enrollment_ids[key]
                changes = _reconcile(
                    request,
                    patient_ids[request.patient.external_id],
                    enrollment_id,
                    existing.get(enrollment_id, []),
                    now,
                    inserts,
                    updates,
                    cancels,
                )
                outcomes.append(
                    EnrollmentOutcome(
                        request.patient.external_id,
                        patient_ids[request.patient.external_id],
                        enrollment_id,
                        key in created,
                        changes,
                    )
                )
            for chunk in _chunks(inserts, 2000):
                session.execute(insert(MESSAGES), list(chunk))
            if updates:
                session.execute(update(Message), updates)
            if cancels:
                session.execute(update(Message), cancels)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        return outcomes

    def _upsert_patients(
        self, session: Session, requests: Sequence[EnrollmentRequest], now: datetime
    ) -> dict[str, int]:
        records = {r.patient.external_id: r.patient for r in requests}
        known: dict[str, int] = {}
        for chunk in _chunks(list(records)):
            for external_id, pid in session.execute(
                select(Patient.external_id, Patient.id).where(Patient.external_id.in_(chunk))
            ):
                known[external_id] = pid
        if known:
            session.execute(
                update(Patient),
                [
                    {**_patient_values(records[eid]), "id": pid, "updated_at": now}
                    for eid, pid in known.items()
                ],
            )
        new = [
            {**_patient_values(rec), "created_at": now, "updated_at": now}
            for eid, rec in records.items()
            if eid not in known
        ]
        for chunk in _chunks(new, 2000):
            session.execute(insert(PATIENTS), list(chunk))
            external_ids = [row["external_id"] for row in chunk]
            for slice_ in _chunks(external_ids):
                rows = session.execute(
                    select(PATIENTS.c.external_id, PATIENTS.c.id).where(
                        PATIENTS.c.external_id.in_(slice_)
                    )
                )
                known.update({external_id: pid for external_id, pid in rows})
        return known

    def _upsert_enrollments(
        self,
        session: Session,
        requests: Sequence[EnrollmentRequest],
        patient_ids: dict[str, int],
        now: datetime,
    ) -> tuple[dict[tuple[str, str], int], set[tuple[str, str]]]:
        by_patient = {patient_ids[r.patient.external_id]: r.patient.external_id for r in requests}
        ids: dict[tuple[str, str], int] = {}
        for chunk in _chunks(list(by_patient)):
            rows = session.execute(
                select(Enrollment.patient_id, Enrollment.plan_id, Enrollment.id).where(
                    Enrollment.patient_id.in_(chunk)
                )
            )
            for pid, plan_id, eid in rows:
                ids[(by_patient[pid], plan_id)] = eid
        updates, new = [], []
        for r in requests:
            key = (r.patient.external_id, r.plan_id)
            values = {
                "plan_version": r.plan_version,
                "procedure_date": r.procedure_date,
                "procedure_time": r.procedure_time,
                "status": EnrollmentStatus.ACTIVE.value,
                "status_reason": None,
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
        for chunk in _chunks(new, 2000):
            session.execute(insert(ENROLLMENTS), list(chunk))
            new_keys = {(row["patient_id"], row["plan_id"]) for row in chunk}
            for slice_ in _chunks(sorted({pid for pid, _ in new_keys})):
                rows = session.execute(
                    select(ENROLLMENTS.c.patient_id, ENROLLMENTS.c.plan_id, ENROLLMENTS.c.id).where(
                        ENROLLMENTS.c.patient_id.in_(slice_)
                    )
                )
                for pid, plan_id, eid in rows:
                    if (pid, plan_id) in new_keys:
                        ids[(by_patient[pid], plan_id)] = eid
                        created.add((by_patient[pid], plan_id))
        return ids, created

    def _messages_by_enrollment(
        self, session: Session, enrollment_ids: Iterable[int]
    ) -> dict[int, list[Any]]:
        grouped: dict[int, list[Any]] = defaultdict(list)
        for chunk in _chunks(list(enrollment_ids)):
            rows = session.execute(
                select(
                    Message.id,
                    Message.enrollment_id,
                    Message.step_id,
                    Message.status,
                    Message.due_at,
                    Message.send_before,
                    Message.channel,
                    Message.language,
                    Message.template,
                    Message.plan_version,
                ).where(Message.enrollment_id.in_(chunk))
            )
            for row in rows:
                grouped[row.enrollment_id].append(row)
        return grouped

    def enrollment_id(self, external_id: str, plan_id: str | None = None) -> tuple[int, str]:
        """The enrollment of a patient (on `plan_id`, or their only one) and its plan id."""
        with self._session() as session:
            query = (
                select(Enrollment.id, Enrollment.plan_id)
                .join(Patient, Patient.id == Enrollment.patient_id)
                .where(Patient.external_id == external_id)
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

    def enrollment_details(self, enrollment_id: int) -> dict[str, Any]:
        """The patient and procedure facts of one enrollment, for recomputing its schedule."""
        with self._session() as session:
            row = session.execute(
                select(Patient, Enrollment)
                .join(Enrollment, Enrollment.patient_id == Patient.id)
                .where(Enrollment.id == enrollment_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"no enrollment {enrollment_id}")
            patient, enrollment = row
            return {
                "patient": {c.name: getattr(patient, c.key) for c in Patient.__table__.columns},
                "enrollment": {
                    c.name: getattr(enrollment, c.key) for c in Enrollment.__table__.columns
                },
            }

    def active_enrollment_ids(self, plan_id: str) -> list[int]:
        """Every active enrollment on a plan."""
        with self._session() as session:
            return list(
                session.scalars(
                    select(Enrollment.id)
                    .where(Enrollment.plan_id == plan_id)
                    .where(Enrollment.status == EnrollmentStatus.ACTIVE.value)
                    .order_by(Enrollment.id)
                )
            )

    def cancel_enrollment(self, enrollment_id: int, reason: str, now: datetime) -> int:
        """Cancel an enrollment and all its pending messages; returns how many were cancelled."""
        with self._session() as session:
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

    # -- dispatch ---------------------------------------------------------------------------

    def next_due_at(self) -> datetime | None:
        """The earliest instant at which a pending message wants attention."""
        with self._session() as session:
            return session.scalar(
                select(func.min(Message.next_attempt_at)).where(
                    Message.status == MessageStatus.PENDING.value
                )
            )

    def claim_due(self, now: datetime, worker: str, limit: int) -> list[ClaimedMessage]:
        """Atomically take up to `limit` due messages for one worker.

        On PostgreSQL the candidate rows are locked with FOR UPDATE SKIP LOCKED so that
        concurrent workers take disjoint sets; on SQLite the write lock taken at BEGIN
        IMMEDIATE serialises claims.
        """
        with self._session() as session:
            candidates = (
                select(Message.id)
                .where(Message.status == MessageStatus.PENDING.value)
                .where(Message.next_attempt_at <= now)
                .order_by(Message.next_attempt_at, Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = list(session.scalars(candidates))
            if not ids:
                return []
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(
                    status=MessageStatus.SENDING.value,
                    claimed_by=worker,
                    claimed_at=now,
                    attempts=Message.attempts + 1,
                    updated_at=now,
                )
            )
            rows = session.execute(_claimed_query().where(Message.id.in_(ids))).all()
        return [_claimed(row) for row in rows]

    def stale_claims(self, older_than: datetime, limit: int = 500) -> list[ClaimedMessage]:
        """Messages left in 'sending' by a worker that died before recording the outcome."""
        with self._session() as session:
            rows = session.execute(
                _claimed_query()
                .where(Message.status == MessageStatus.SENDING.value)
                .where(Message.claimed_at < older_than)
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [_claimed(row) for row in rows]

    def reclaim(self, message_id: int, worker: str, claimed_at: datetime, now: datetime) -> bool:
        """Take over a stale claim, unless another worker already did."""
        with self._session() as session:
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
            attempts=Message.attempts - 1,
            updated_at=now,
            **extra,
        )

    def _finish(self, message_id: int, worker: str | None, **values: Any) -> bool:
        """Record an outcome of a message held in "sending" (by `worker`, when given).

        Returns False when the row was not ours to settle (another worker took the claim
        over). The hot path of dispatch: statements are built once per set of columns and
        run on a plain connection.
        """
        plain = all(not isinstance(v, ClauseElement) for v in values.values())
        with self.engine.begin() as connection:
            if plain:
                statement = self._finish_statement(tuple(sorted(values)), worker is not None)
                params = {"message_id": message_id, "claim_worker": worker, **values}
                result = connection.execute(statement, params)
            else:
                statement = (
                    update(MESSAGES)
                    .where(MESSAGES.c.id == message_id)
                    .where(MESSAGES.c.status == MessageStatus.SENDING.value)
                    .values(**values)
                )
                if worker is not None:
                    statement = statement.where(MESSAGES.c.claimed_by == worker)
                result = connection.execute(statement)
        return bool(result.rowcount)

    def _finish_statement(self, columns: tuple[str, ...], by_worker: bool) -> Any:
        key = (*columns, "+worker" if by_worker else "")
        statement = self._finish_statements.get(key)
        if statement is None:
            statement = (
                update(MESSAGES)
                .where(MESSAGES.c.id == bindparam("message_id"))
                .where(MESSAGES.c.status == MessageStatus.SENDING.value)
                .values({name: bindparam(name, type_=MESSAGES.c[name].type) for name in columns})
            )
            if by_worker:
                statement = statement.where(MESSAGES.c.claimed_by == bindparam("claim_worker"))
            self._finish_statements[key] = statement
        return statement

    def sms_sent_at(self, patient_ids: Iterable[int]) -> dict[int, list[datetime]]:
        """When each of these patients was sent an SMS, for a whole claimed batch at once."""
        sent: dict[int, list[datetime]] = defaultdict(list)
        ids = sorted(set(patient_ids))
        if not ids:
            return sent
        query = select(MESSAGES.c.patient_id, MESSAGES.c.sent_at).where(
            MESSAGES.c.patient_id.in_(bindparam("ids", expanding=True)),
            MESSAGES.c.channel == "sms",
            MESSAGES.c.status == MessageStatus.SENT.value,
        )
        with self.engine.begin() as connection:
            for chunk in _chunks(ids):
                for patient_id, sent_at in connection.execute(query, {"ids": list(chunk)}):
                    sent[patient_id].append(sent_at)
        return sent

    def mark_sms_opted_out(self, patient_id: int, now: datetime) -> None:
        """Record that the provider says this patient unsubscribed from SMS."""
        with self._session() as session:
            session.execute(
                update(Patient)
                .where(Patient.id == patient_id, Patient.sms_opted_out_at.is_(None))
                .values(sms_opted_out_at=now, updated_at=now)
            )

    def mark_phone_invalid(self, patient_id: int, now: datetime) -> None:
        """Record that the provider refuses this patient's number; no further SMS is tried."""
        with self._session() as session:
            session.execute(
                update(Patient)
                .where(Patient.id == patient_id, Patient.phone_invalid_at.is_(None))
                .values(phone_invalid_at=now, updated_at=now)
            )

    # -- staff views ------------------------------------------------------------------------

    def list_patients(self, limit: int = 500) -> list[PatientSummary]:
        """Patients with their enrollment and message counts."""
        counts = (
            select(
                Message.enrollment_id,
                func.sum(_is(MessageStatus.PENDING)).label("pending"),
                func.sum(_is(MessageStatus.SENT)).label("sent"),
                func.sum(_is(MessageStatus.FAILED)).label("failed"),
            )
            .group_by(Message.enrollment_id)
            .subquery()
        )
        query = (
            select(Patient, Enrollment, counts.c.pending, counts.c.sent, counts.c.failed)
            .outerjoin(Enrollment, Enrollment.patient_id == Patient.id)
            .outerjoin(counts, counts.c.enrollment_id == Enrollment.id)
            .order_by(Patient.external_id)
            .limit(limit)
        )
        with self._session() as session:
            rows = session.execute(query).all()
        return [
            PatientSummary(
                external_id=p.external_id,
                first_name=p.first_name,
                phone=p.phone,
                email=p.email,
                timezone=p.timezone,
                language=p.language,
                preferred_channel=p.preferred_channel,
                sms_opted_out_at=p.sms_opted_out_at,
                plan_id=e.plan_id if e else None,
                procedure_date=e.procedure_date if e else None,
                enrollment_status=e.status if e else None,
                pending=int(pending or 0),
                sent=int(sent or 0),
                failed=int(failed or 0),
            )
            for p, e, pending, sent, failed in rows
        ]

    def timeline(self, external_id: str) -> list[MessageView]:
        """Every message of one patient, in due order."""
        with self._session() as session:
            if session.scalar(select(Patient.id).where(Patient.external_id == external_id)) is None:
                raise NotFoundError(f"no patient '{external_id}'")
            rows = session.execute(
                _view_query()
                .where(Patient.external_id == external_id)
                .order_by(Message.due_at, Message.id)
            ).all()
        return [_view(row) for row in rows]

    def list_messages(
        self,
        *,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[MessageView]:
        """Messages across patients, newest activity first, filtered by status and time."""
        query = _view_query()
        if status:
            query = query.where(Message.status == status)
        if since:
            query = query.where(Message.updated_at >= since)
        query = query.order_by(Message.updated_at.desc(), Message.id.desc()).limit(limit)
        with self._session() as session:
            return [_view(row) for row in session.execute(query).all()]

    def status_counts(self) -> dict[str, int]:
        """How many messages are in each status."""
        with self._session() as session:
            rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
            return {status: int(count) for status, count in rows}

    def delete_all(self) -> None:
        """Empty every table (tests and benchmarks)."""
        with self._session() as session:
            session.execute(delete(Message))
            session.execute(delete(Enrollment))
            session.execute(delete(Patient))


def _is(status: MessageStatus) -> Any:
    return case((Message.status == status.value, 1), else_=0)


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


def _message_values(message: PlannedMessage, now: datetime) -> dict[str, Any]:
    return {
        "step_id": message.step_id,
        "phase": message.phase.value,
        "channel": message.channel,
        "template": message.template,
        "language": message.language,
        "due_at": message.due_at,
        "send_before": message.send_before,
        "next_attempt_at": message.due_at,
        "updated_at": now,
    }


def _reconcile(
    request: EnrollmentRequest,
    patient_id: int,
    enrollment_id: int,
    existing: list[Any],
    now: datetime,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    cancels: list[dict[str, Any]],
) -> list[ScheduleChange]:
    """Work out the row changes that bring an enrollment's messages to its new schedule."""
    done = {row.step_id for row in existing if row.status in FINAL_FOR_STEP}
    pending = {row.step_id: row for row in existing if row.status == MessageStatus.PENDING.value}
    latest: dict[str, Any] = {}
    for row in sorted(existing, key=lambda r: r.id):
        latest[row.step_id] = row
    planned = {m.step_id: m for m in request.messages}
    changes: list[ScheduleChange] = []
    in_flight = {row.step_id: row for row in existing if row.status == MessageStatus.SENDING.value}
    for step_id, message in planned.items():
        if step_id in done:
            continue
        if step_id in in_flight:
            changes.append(_retime_in_flight(in_flight[step_id], message, request, now, updates))
            continue
        values = _message_values(message, now)
        values["plan_version"] = request.plan_version
        status = MessageStatus.SKIPPED.value if message.skip_reason else MessageStatus.PENDING.value
        values["status"] = status
        values["status_reason"] = message.skip_reason
        previous = latest.get(step_id)
        row = pending.get(step_id)
        if row is None and previous is not None:
            if previous.status == MessageStatus.CANCELLED.value:
                row = previous  # enrolled again after a cancel: the row comes back
            elif previous.due_at == message.due_at:
                # Skipped or failed at this same time: that outcome stands, once.
                changes.append(ScheduleChange(step_id, "keep", previous.due_at, previous.due_at))
                continue
        if row is None:
            inserts.append(
                {
                    **values,
                    "enrollment_id": enrollment_id,
                    "patient_id": patient_id,
                    "plan_id": request.plan_id,
                    "attempts": 0,
                    "created_at": now,
                }
            )
            changes.append(
                ScheduleChange(step_id, "add", None, message.due_at, message.skip_reason)
            )
            continue
        same = (
            row.due_at == message.due_at
            and row.send_before == message.send_before
            and row.channel == message.channel
            and row.language == message.language
            and row.template == message.template
            and row.plan_version == request.plan_version
            and row.status == status == MessageStatus.PENDING.value
        )
        if same:
            changes.append(ScheduleChange(step_id, "keep", row.due_at, row.due_at))
            continue
        updates.append({**values, "id": row.id, "attempts": 0, "error_code": None})
        action = "restore" if row.status == MessageStatus.CANCELLED.value else "move"
        changes.append(
            ScheduleChange(step_id, action, row.due_at, message.due_at, message.skip_reason)
        )
    for step_id, row in pending.items():
        if step_id not in planned:
            reason = "step no longer applies to this patient"
            cancels.append(
                {
                    "id": row.id,
                    "status": MessageStatus.CANCELLED.value,
                    "status_reason": reason,
                    "updated_at": now,
                }
            )
            changes.append(ScheduleChange(step_id, "cancel", row.due_at, None, reason))
    return changes


def _retime_in_flight(
    row: Any,
    message: PlannedMessage,
    request: EnrollmentRequest,
    now: datetime,
    updates: list[dict[str, Any]],
) -> ScheduleChange:
    """A message a worker holds keeps its claim, but a retry or deferral of it must follow the
    new schedule (a pre-procedure instruction must not outlive a procedure moved earlier)."""
    if row.due_at == message.due_at and row.send_before == message.send_before:
        return ScheduleChange(message.step_id, "keep", row.due_at, row.due_at)
    values = _message_values(message, now)
    del values["next_attempt_at"]
    updates.append({**values, "id": row.id, "plan_version": request.plan_version})
    return ScheduleChange(message.step_id, "move", row.due_at, message.due_at, "being sent now")


def _claimed_query() -> Select:
    return (
        select(
            Message.id,
            Message.enrollment_id,
            Message.patient_id,
            Message.plan_id,
            Message.plan_version,
            Message.step_id,
            Message.phase,
            Message.channel,
            Message.template,
            Message.language,
            Message.due_at,
            Message.send_before,
            Message.attempts,
            Message.claimed_at,
            Patient.first_name,
            Patient.phone,
            Patient.email,
            Patient.timezone,
            Patient.attributes,
            Patient.sms_consent,
            Patient.sms_opted_out_at,
            Patient.phone_invalid_at,
            Enrollment.procedure_date,
            Enrollment.procedure_time,
            Enrollment.status.label("enrollment_status"),
        )
        .join(Patient, Patient.id == Message.patient_id)
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
    )


def _claimed(row: Any) -> ClaimedMessage:
    return ClaimedMessage(**row._asdict())


def _view_query() -> Select:
    return select(
        Message.id,
        Patient.external_id,
        Message.plan_id,
        Message.step_id,
        Message.phase,
        Message.channel,
        Message.status,
        Message.status_reason,
        Message.due_at,
        Message.send_before,
        Message.next_attempt_at,
        Message.attempts,
        Message.sent_at,
        Message.provider_message_id,
        Message.provider_status,
        Message.error_code,
        Patient.timezone,
        Message.body,
    ).join(Patient, Patient.id == Message.patient_id)


def _view(row: Any) -> MessageView:
    return MessageView(**row._asdict())


__all__ = ["Store"]
