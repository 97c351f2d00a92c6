"""`Database.unit_of_work()`: what the repositories do inside it is one transaction, on each
database: seen by others only once it ends, undone whole by an error, and a dry run inside it
becomes a savepoint that leaves the unit's other writes alone. `Database.transaction()` joins
the unit in progress on its thread, or is one of its own."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from plan_fixtures import write_demo_plan
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from reminders.catalog import PlanCatalog
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import read_input
from reminders.errors import NotFoundError
from reminders.store.access_records import NewAuditEntry
from reminders.store.storage import Storage

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def audit(storage: Storage, action: str) -> None:
    storage.access.append_audit([NewAuditEntry("test", action, "MRN1")], NOW)


def actions(storage: Storage) -> list[str]:
    return [entry.action for entry in storage.access.audit_entries()]


def test_others_see_the_units_writes_only_when_it_ends(storage: Storage) -> None:
    # A plain reader (on SQLite, one that does not take the write lock as our engine does).
    reader = create_engine(storage.database.engine.url)
    with reader.connect() as other, storage.database.unit_of_work():
        audit(storage, "first")
        audit(storage, "second")
        seen_meanwhile = other.exec_driver_sql("SELECT count(*) FROM audit_log").scalar()
    reader.dispose()

    assert seen_meanwhile == 0
    assert actions(storage) == ["second", "first"]


def test_an_error_undoes_every_repositorys_writes(storage: Storage) -> None:
    with pytest.raises(RuntimeError), storage.database.unit_of_work():
        audit(storage, "kept?")
        storage.outcomes.create_flags([], NOW)
        raise RuntimeError("half way")

    assert actions(storage) == []


def test_units_do_not_nest(storage: Storage) -> None:
    outer = storage.database.unit_of_work()
    with outer, pytest.raises(RuntimeError, match="already"), storage.database.unit_of_work():
        pass


def test_a_transaction_joins_the_unit_in_progress_or_is_a_unit_of_its_own(
    storage: Storage,
) -> None:
    with storage.database.unit_of_work() as unit, storage.database.transaction() as joined:
        assert joined is unit
    with pytest.raises(RuntimeError), storage.database.transaction():
        audit(storage, "first")
        audit(storage, "second")
        raise RuntimeError("half way")

    assert actions(storage) == []


def test_a_thread_that_inherits_the_context_does_not_join_the_unit(storage: Storage) -> None:
    def session_seen() -> Session:
        with storage.database.session() as session:
            return session

    with storage.database.unit_of_work() as unit, ThreadPoolExecutor(1) as pool:
        context = contextvars.copy_context()
        in_this_thread = context.run(session_seen)
        in_another = pool.submit(context.run, session_seen).result()

    assert in_this_thread is unit
    assert in_another is not unit


def test_a_dry_run_inside_a_unit_is_undone_and_the_rest_of_the_unit_kept(
    storage: Storage, tmp_path: Path
) -> None:
    service = EnrollmentService(storage, PlanCatalog(*write_demo_plan(tmp_path)))
    entry = service.validate(
        read_input(
            {
                "external_id": "MRN1",
                "first_name": "Ana",
                "phone": "+13125550123",
                "sms_consent": True,
                "timezone": "America/Chicago",
                "plan": "demo",
                "procedure_date": date(2027, 3, 10),
            }
        )
    )

    with storage.database.unit_of_work():
        (preview,) = service.enroll([entry], dry_run=True)
        audit(storage, "after the preview")

    assert preview.created and preview.changes
    with pytest.raises(NotFoundError):
        storage.patients.enrollment_id("MRN1")
    assert actions(storage) == ["after the preview"]
