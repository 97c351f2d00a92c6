"""The scheduling feeds' tables on each database: migration 0005, the log, the appointments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reminders.store import migrate
from reminders.store.feed_schema import AppointmentStatus, FeedOutcome
from reminders.store.feeds import AppointmentRecord, FeedMessageRecord
from reminders.store.storage import Storage

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def logged(message_id: str, received_at: datetime) -> FeedMessageRecord:
    return FeedMessageRecord(
        0, "hl7", "RIVERSIDE", message_id, "hl7:RIVERSIDE", received_at, None, "S12", "APT1",
        "MRN1", "demo", FeedOutcome.ENROLLED, "AA", "enrolled on plan demo", "MSH|...",
    )  # fmt: skip


def test_migration_0005_downgrades_and_upgrades_again(storage: Storage) -> None:
    migrate.downgrade(storage.database.engine, "0004")
    assert migrate.current_revision(storage.database.engine) == "0004"

    migrate.upgrade(storage.database.engine)

    assert migrate.current_revision(storage.database.engine) == migrate.head_revision()
    assert storage.feeds.list_messages() == []


def test_a_control_id_is_logged_once_per_sender(storage: Storage) -> None:
    feeds = storage.feeds

    assert feeds.record_message(logged("M1", NOW)) is True
    assert feeds.record_message(logged("M1", NOW)) is False
    assert feeds.find_message("hl7", "RIVERSIDE", "M1") is not None
    assert feeds.find_message("hl7", "LAKESIDE", "M1") is None


def test_raw_text_is_purged_but_the_log_line_stays(storage: Storage) -> None:
    feeds = storage.feeds
    feeds.record_message(logged("OLD", NOW - timedelta(days=40)))
    feeds.record_message(logged("NEW", NOW))

    assert feeds.purge_raw(NOW - timedelta(days=30)) == 1

    raw = {m.message_id: m.raw for m in feeds.list_messages()}
    assert raw == {"OLD": None, "NEW": "MSH|..."}


def test_an_appointment_is_saved_and_updated_in_place(storage: Storage) -> None:
    feeds = storage.feeds
    first = AppointmentRecord(
        "hl7", "RIVERSIDE", "APT1", "MRN1", "demo", AppointmentStatus.BOOKED, NOW, NOW
    )
    feeds.save_appointment(first, NOW)
    moved = AppointmentRecord(
        "hl7",
        "RIVERSIDE",
        "APT1",
        "MRN1",
        "demo",
        AppointmentStatus.CANCELLED,
        None,
        NOW + timedelta(hours=1),
    )

    feeds.save_appointment(moved, NOW)

    assert feeds.appointment("hl7", "RIVERSIDE", "APT1") == moved


def test_outcomes_and_statuses_come_back_typed_from_every_read(storage: Storage) -> None:
    feeds = storage.feeds
    feeds.record_message(logged("OK", NOW))
    feeds.record_message(replace(logged("BAD", NOW), outcome=FeedOutcome.REFUSED))
    feeds.save_appointment(
        AppointmentRecord(
            "hl7", "RIVERSIDE", "APT1", None, None, AppointmentStatus.UNMAPPED, None, NOW
        ),
        NOW,
    )

    message, appointment = feeds.lookup("hl7", "RIVERSIDE", "BAD", "APT1")
    found = feeds.find_message("hl7", "RIVERSIDE", "OK")
    assert message is not None and found is not None and appointment is not None
    assert message.outcome is FeedOutcome.REFUSED and message.failed
    assert found.outcome is FeedOutcome.ENROLLED and not found.failed
    assert appointment.status is AppointmentStatus.UNMAPPED
    assert feeds.appointment("hl7", "RIVERSIDE", "APT1") == appointment
    assert feeds.outcome_counts() == {FeedOutcome.ENROLLED: 1, FeedOutcome.REFUSED: 1}
    assert all(type(key) is FeedOutcome for key in feeds.outcome_counts())
    assert [m.message_id for m in feeds.list_messages(refused_only=True)] == ["BAD"]
