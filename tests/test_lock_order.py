"""Every writer of a patient's messages takes the patient's row first (PostgreSQL), as the claim
does, so that a dispatcher's claim and a staff change to the same patient wait for each other
instead of deadlocking."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import write_demo_plan
from sqlalchemy import Connection, select, text

from reminders.catalog import PlanCatalog
from reminders.store.schema import Enrollment, Message, Patient
from reminders.store.storage import Storage

pytestmark = pytest.mark.postgres


def wait_until_blocked(probe: Connection) -> None:
    """Until some session waits on a row lock (the writer under test)."""
    deadline = time.monotonic() + 30
    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
    while not probe.scalar(waiting):
        assert time.monotonic() < deadline, "the writer never waited for the claim"
        probe.rollback()
        time.sleep(0.01)
    probe.rollback()


@pytest.fixture
def two_due(postgres_url: str, tmp_path: Path) -> Iterator[Storage]:
    """Three patients on PostgreSQL, each with two SMS due now."""
    storage = Storage.open(postgres_url)
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    storage.patients.enroll_many(
        due_now_requests(catalog, now, 3, steps=("discharge", "week-one")), now
    )
    yield storage
    storage.close()


def test_a_claim_locks_no_message_of_a_patient_another_worker_holds(two_due: Storage) -> None:
    """The due scan passes over a patient another worker is claiming without locking any of
    that patient's messages. A message locked on the way (row locks taken message first) stayed
    locked to the end of the claim: the other worker's claim of its own patient then waited
    for this one, and two workers each holding such a message of the other's patient
    deadlocked."""
    engine = two_due.database.engine
    with engine.connect() as other_worker, engine.connect() as probe:
        held = other_worker.scalar(
            select(Patient.id).order_by(Patient.id).limit(1).with_for_update()
        )
        theirs = probe.scalars(select(Message.id).where(Message.patient_id == held)).all()
        with two_due.database.unit_of_work():  # this claim's transaction stays open here
            claimed = two_due.outbox.claim_batch(datetime.now(UTC), "w2", limit=10).messages
            assert len(claimed) == 4 and held not in {m.patient_id for m in claimed}
            for message_id in theirs:  # raises LockNotAvailable if the claim locked it
                probe.execute(
                    select(Message.id).where(Message.id == message_id).with_for_update(nowait=True)
                )
            probe.rollback()


def test_a_cancel_locks_no_message_before_it_holds_the_patient(two_due: Storage) -> None:
    """A claim holds the patient and one due message (its scan) and goes on to update the
    patient's other due messages; a cancel that locked one of those first, then waited for the
    claim's, deadlocked with it."""
    engine = two_due.database.engine
    now = datetime.now(UTC)
    with engine.connect() as claim, engine.connect() as probe:
        patient_id = claim.scalar(select(Patient.id).order_by(Patient.id).limit(1))
        first, second = claim.scalars(
            select(Message.id).where(Message.patient_id == patient_id).order_by(Message.id)
        ).all()
        claim.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update())
        claim.execute(select(Message.id).where(Message.id == second).with_for_update())
        enrollment_id = claim.scalar(
            select(Enrollment.id).where(Enrollment.patient_id == patient_id)
        )
        cancelled: list[int] = []
        staff = threading.Thread(
            target=lambda: cancelled.append(
                two_due.patients.cancel_enrollment(enrollment_id, "procedure cancelled", now)
            )
        )
        staff.start()
        wait_until_blocked(probe)
        probe.execute(  # raises LockNotAvailable if the cancel took it before the patient
            select(Message.id).where(Message.id == first).with_for_update(nowait=True)
        )
        probe.rollback()
        claim.rollback()  # the claim ends; the cancel goes on
        staff.join(timeout=30)
    assert cancelled == [2]
