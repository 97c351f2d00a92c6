"""InboundStore on each database: migration 0002, API keys, phone matching, delivery status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import reminders.store.inbound_schema  # noqa: F401 - registers the tables on Base.metadata
from reminders.errors import NotFoundError
from reminders.plans.model import Phase
from reminders.schedule import PlannedMessage
from reminders.store import migrate
from reminders.store.inbound import InboundStore, NewInbound
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.schema import Base
from reminders.store.store import Store

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


def enroll(store: Store, external_id: str, phone: str = PHONE) -> int:
    """A patient with one SMS step due at NOW; returns the message id."""
    (outcome,) = store.enroll_many(
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


def send(store: Store, at: datetime, sid: str) -> None:
    """Send every due message at `at` as provider message `sid`."""
    for message in store.claim_due(at, "test", 10):
        store.record_sent(
            message.id,
            at,
            provider_message_id=sid,
            provider_status="queued",
            recipient=message.phone or "",
            subject=None,
            body="How is your leg pain?",
        )


def test_migration_0002_matches_the_orm_tables(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


def test_migration_0002_downgrades_and_upgrades_again(store: Store) -> None:
    config = migrate.alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert migrate.current_revision(store.engine) == "0001"

    migrate.upgrade(store.engine)

    assert migrate.current_revision(store.engine) == "0002"
    assert InboundStore(store.engine).list_api_keys() == []


def test_api_keys_verify_until_revoked(store: Store) -> None:
    keys = InboundStore(store.engine)
    key, record = keys.create_api_key("front desk", NOW)

    assert keys.verify_api_key(key) == record
    assert keys.verify_api_key(key + "x") is None
    keys.revoke_api_key(record.prefix, NOW)
    assert keys.verify_api_key(key) is None
    with pytest.raises(NotFoundError):
        keys.revoke_api_key("999", NOW)


def test_patients_sharing_a_phone_are_ordered_by_the_latest_sms(store: Store) -> None:
    inbound = InboundStore(store.engine)
    first = enroll(store, "ana")
    send(store, NOW, "SM1")
    second = enroll(store, "ana-mother")
    send(store, NOW + timedelta(hours=1), "SM2")
    enroll(store, "ben", "+13125550188")

    matches = inbound.patients_for_phone(PHONE)

    assert [m.patient_id for m in matches] == [second, first]
    assert inbound.latest_sms(first, NOW + timedelta(days=1)) is not None


def test_a_delivery_status_never_moves_backwards(store: Store) -> None:
    inbound = InboundStore(store.engine)
    enroll(store, "ana")
    send(store, NOW, "SM1")

    inbound.update_delivery_status("SM1", "delivered", None, NOW)
    update = inbound.update_delivery_status("SM1", "sent", None, NOW)

    assert update is not None and update.provider_status == "delivered"
    assert inbound.update_delivery_status("SMunknown", "sent", None, NOW) is None


def test_an_inbound_message_is_recorded_once(store: Store) -> None:
    inbound = InboundStore(store.engine)
    message = NewInbound("SMin1", PHONE, "+15005550006", "hi", NOW, "unmatched")

    inbound.record_inbound(message)

    assert inbound.inbound_seen("SMin1")
    with pytest.raises(Exception, match="SMin1"):
        inbound.record_inbound(message)
    assert len(inbound.list_inbound()) == 1


def test_no_reply_candidates_exclude_answered_and_flagged_checks(store: Store) -> None:
    inbound = InboundStore(store.engine)
    enroll(store, "ana")
    send(store, NOW, "SM1")

    (candidate,) = inbound.relief_checks_without_reply(NOW + timedelta(days=3), ["relief-check"])
    assert candidate.step_id == "relief-check-week-4"
    assert inbound.relief_checks_without_reply(NOW + timedelta(days=3), ["welcome"]) == []
    assert inbound.relief_checks_without_reply(NOW - timedelta(hours=1), ["relief-check"]) == []
