"""Two dispatcher processes share a wave of due messages: while one claims a batch, the other
claims the next patients instead of an empty batch (which ended its pass), and every message
is still sent exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from sqlalchemy import func, select

from reminders.catalog import PlanCatalog
from reminders.channels.null import NullChannel
from reminders.dispatch.dispatcher import Dispatcher, DispatchSettings
from reminders.store.schema import Message, Patient
from reminders.store.storage import Storage

PATIENTS = 400
BATCH = 10


def dispatch_until_done(url: str, root: str, name: str, start: Any) -> int:
    """One worker process: wait for the other, dispatch until nothing is due; texts it sent."""
    storage = Storage.open(url, migrate_schema=False)
    catalog = PlanCatalog(Path(root) / "plans", Path(root) / "templates")
    sms = NullChannel("sms")
    channels = {"sms": sms, "email": NullChannel("email")}
    settings = DispatchSettings(clinic=CLINIC, batch_size=BATCH)
    dispatcher = Dispatcher(storage, catalog, channels, settings, worker_id=name)
    start.wait()
    dispatcher.run_once()
    storage.close()
    return sms.sent


@pytest.mark.slow
def test_two_worker_processes_each_send_a_share_and_nothing_twice(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    storage.patients.enroll_many(due_now_requests(catalog, now, PATIENTS), now)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        start = manager.Barrier(2)
        jobs = [
            pool.apply_async(dispatch_until_done, (database_url, str(tmp_path), name, start))
            for name in ("w1", "w2")
        ]
        sent = [job.get(timeout=300) for job in jobs]

    assert sum(sent) == PATIENTS  # nothing sent twice
    assert storage.message_views.status_counts() == {"sent": PATIENTS}
    assert min(sent) >= PATIENTS // 10, sent  # neither worker stopped early with an empty batch


@pytest.mark.postgres
def test_a_claim_passes_over_patients_another_worker_is_claiming(
    tmp_path: Path, postgres_url: str
) -> None:
    """Row locks: on SQLite the write lock taken at BEGIN IMMEDIATE serialises claims."""
    catalog = PlanCatalog(*write_demo_plan(tmp_path))
    now = datetime.now(UTC)
    storage = Storage.open(postgres_url)
    storage.patients.enroll_many(due_now_requests(catalog, now, 30), now)
    with storage.database.session() as first_worker:
        first = first_worker.scalars(
            select(Message.patient_id)
            .join(Patient, Patient.id == Message.patient_id)
            .order_by(Message.next_attempt_at, Message.id)
            .limit(BATCH)
            .with_for_update(of=Patient)
        ).all()  # held while the test claims as the second worker

        second = storage.outbox.claim_due(now, "w2", BATCH)

        assert len(second) == BATCH
        assert not {m.patient_id for m in second} & set(first)
    with storage.database.session() as session:
        claimed = session.scalar(select(func.count()).where(Message.claimed_by == "w2"))
    storage.close()
    assert claimed == BATCH
