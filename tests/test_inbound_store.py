"""The two-way side's repositories on each database: migration 0002, API keys, phone matching,
delivery status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import reminders.store.inbound_schema  # noqa: F401 - registers the tables on Base.metadata
from reminders.errors import NotFoundError
from reminders.plans.model import Phase
from reminders.roles import Role
from reminders.schedule import PlannedMessage
from reminders.store import migrate
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.reply_records import NewInbound
from reminders.store.schema import Base
from reminders.store.storage import Storage

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PHONE = "+12025550143"


def planned(step_id: str, due: datetime) -> PlannedMessage:
    return PlannedMessage(
        step_id=step_id,
        phase=Phase.RECOVERY,
        channel="sms",
        template=step_id,
        language="en",
        due_at=due,
        send_before=due + timedelta(hours=12),
        local_due=due,
    )


def enroll(storage: Storage, external_id: str, phone: str = PHONE) -> int:
    """A patient with one SMS step due at NOW; returns the message id."""
    (outcome,) = storage.patients.enroll_many(
        [
            EnrollmentRequest(
                patient=PatientRecord(external_id, external_id.title(), "UTC", "en", "sms", phone),
                plan_id="knee",
                plan_version=1,
                procedure_date=date(2026, 2, 1),
                procedure_time=None,
                messages=[planned("relief-check-week-4", NOW)],
            )
        ],
        NOW - timedelta(days=30),
    )
    return outcome.patient_id


def send(storage: Storage, at: datetime, sid: str) -> None:
    """Send every due message at `at` as provider message `sid`."""
    for message in storage.outbox.claim_due(at, "test", 10):
        storage.outbox.record_sent(
            message.id,
            at,
            provider_message_id=sid,
            provider_status="queued",
            recipient=message.phone or "",
            subject=None,
            body="How is your leg pain?",
        )


# Migration 0013 gives a message one foreign key to its enrollment and patient on PostgreSQL
# only; SQLite keeps a key on each (see the migration's docstring).
SQLITE_KEEPS = [
    ("add_constraint", "uq_enrollments_id_patient_id"),
    ("remove_fk", "fk_messages_patient_id_patients"),
    ("remove_fk", "fk_messages_enrollment_id_enrollments"),
    ("add_fk", "fk_messages_enrollment_patient_enrollments"),
]


def test_migrations_match_the_orm_tables(storage: Storage) -> None:
    engine = storage.database.engine
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    named = [(kind, thing.name) for kind, thing, *_ in differences]
    assert sorted(named) == (sorted(SQLITE_KEEPS) if engine.dialect.name == "sqlite" else [])


def test_migrations_downgrade_to_0001_and_upgrade_again(storage: Storage) -> None:
    migrate.downgrade(storage.database.engine, "0001")
    assert migrate.current_revision(storage.database.engine) == "0001"

    migrate.upgrade(storage.database.engine)

    assert migrate.current_revision(storage.database.engine) == migrate.head_revision()
    assert storage.access.list_api_keys() == []


def test_api_keys_verify_until_revoked(storage: Storage) -> None:
    keys = storage.access
    key, record = keys.create_api_key("front desk", Role.STAFF, NOW)

    assert keys.verify_api_key(key) == record
    assert keys.verify_api_key(key + "x") is None
    keys.revoke_api_key(record.prefix, NOW)
    assert keys.verify_api_key(key) is None
    with pytest.raises(NotFoundError):
        keys.revoke_api_key("999", NOW)


def test_patients_sharing_a_phone_are_ordered_by_the_latest_sms(storage: Storage) -> None:
    first = enroll(storage, "ana")
    send(storage, NOW, "SM1")
    second = enroll(storage, "ana-mother")
    send(storage, NOW + timedelta(hours=1), "SM2")
    enroll(storage, "ben", "+13125550188")

    matches = storage.inbound.patients_for_phone(PHONE)

    assert [m.patient_id for m in matches] == [second, first]
    assert storage.inbound.latest_sms(first, NOW + timedelta(days=1)) is not None


def test_a_delivery_status_never_moves_backwards(storage: Storage) -> None:
    enroll(storage, "ana")
    send(storage, NOW, "SM1")

    storage.outbox.update_delivery_status("SM1", "delivered", None, NOW)
    update = storage.outbox.update_delivery_status("SM1", "sent", None, NOW)

    assert update is not None and update.provider_status == "delivered"
    assert storage.outbox.update_delivery_status("SMunknown", "sent", None, NOW) is None


def test_an_inbound_message_is_recorded_once(storage: Storage) -> None:
    message = NewInbound("SMin1", PHONE, "+15005550006", "hi", NOW, "unmatched")

    storage.inbound.record_inbound(message)

    assert storage.inbound.inbound_seen("SMin1")
    with pytest.raises(Exception, match="SMin1"):
        storage.inbound.record_inbound(message)
    assert len(storage.inbound.list_inbound()) == 1


def test_no_reply_candidates_exclude_answered_and_flagged_checks(storage: Storage) -> None:
    enroll(storage, "ana")
    send(storage, NOW, "SM1")

    (candidate,) = storage.outcomes.relief_checks_without_reply(
        NOW + timedelta(days=3), ["relief-check"]
    )
    assert candidate.step_id == "relief-check-week-4"
    assert storage.outcomes.relief_checks_without_reply(NOW + timedelta(days=3), ["welcome"]) == []
    assert (
        storage.outcomes.relief_checks_without_reply(NOW - timedelta(hours=1), ["relief-check"])
        == []
    )
