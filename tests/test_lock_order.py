"""Every writer of a patient's messages takes the patient's row first (PostgreSQL), as the claim
does, so that a dispatcher's claim and a staff change to the same patient wait for each other
instead of deadlocking."""

from __future__ import annotations

import threading
import time
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


def test_a_cancel_locks_no_message_before_it_holds_the_patient(
    postgres_url: str, tmp_path: Path
) -> None:
    """A claim holds the patient and one due message (its scan) and goes on to update the
    patient's other due messages; a cancel that locked one of those first, then waited for the
    claim's, deadlocked with it."""
    storage = Storage.open(postgres_url)
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    requests = due_now_requests(catalog, now, 1, steps=("discharge", "week-one"))
    storage.patients.enroll_many(requests, now)
    engine = storage.database.engine
    with engine.connect() as claim, engine.connect() as probe:
        first, second = claim.scalars(select(Message.id).order_by(Message.id)).all()
        claim.execute(select(Patient.id).with_for_update())
        claim.execute(select(Message.id).where(Message.id == second).with_for_update())
        enrollment_id = claim.scalar(select(Enrollment.id))
        cancelled: list[int] = []
        staff = threading.Thread(
            target=lambda: cancelled.append(
                storage.patients.cancel_enrollment(enrollment_id, "procedure cancelled", now)
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
    storage.close()
