"""The APScheduler service wakes when the next message is due, not on a busy loop."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from outbox_fixtures import daytime_zone
from plan_fixtures import CLINIC, write_demo_plan

from reminders.catalog import PlanCatalog
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.dispatch.service import DispatchService
from reminders.dispatch.settings import DispatchSettings
from reminders.plans.model import Phase
from reminders.schedule import PlannedMessage
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel


def _enroll_due_at(storage: Storage, due: datetime) -> None:
    # Real time runs this test: a zone where it is mid-day, so that the demo plan's quiet
    # hours (21:00-08:00) never hold the message, whatever the hour it runs at.
    zone = daytime_zone(due)
    local = due.astimezone(ZoneInfo(zone))
    message = PlannedMessage(
        step_id="week-one",
        phase=Phase.RECOVERY,
        channel="sms",
        template="week_one",
        language="en",
        due_at=due,
        send_before=due + timedelta(hours=1),
        local_due=local,
    )
    patient = PatientRecord(
        external_id="P-1",
        first_name="Sam",
        timezone=zone,
        language="en",
        preferred_channel="sms",
        phone="+12025550143",
    )
    request = EnrollmentRequest(patient, "demo", 1, date.today(), None, [message])
    storage.patients.enroll_many([request], datetime.now(UTC))


def test_service_sleeps_until_the_next_due_message_then_sends_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    storage = Storage.open(sqlite_url)
    plans, templates = write_demo_plan(tmp_path)
    channel = InMemoryChannel("sms")
    dispatcher = Dispatcher(
        storage,
        PlanCatalog(plans, templates),
        {"sms": channel, "email": InMemoryChannel("email")},
        DispatchSettings(clinic=CLINIC),
    )
    sent = threading.Event()

    def on_pass(report: PassReport) -> None:
        if report.outcomes.get("sent"):
            sent.set()

    service = DispatchService(dispatcher, idle_poll=timedelta(hours=1), on_pass=on_pass)
    due = datetime.now(UTC) + timedelta(milliseconds=700)
    service.start()
    try:
        assert not sent.wait(0.2)
        _enroll_due_at(storage, due)
        service.wake()  # an enrollment tells the service; it re-arms for the due instant
        assert sent.wait(5)
        ((sent_at, message),) = channel.sent
        assert sent_at >= due
        assert (sent_at - due) < timedelta(seconds=1)
        assert message.to == "+12025550143"
        assert service.passes <= 4  # woke for the start, the wake-up and the due instant
        next_wake = service.next_wake()
        assert next_wake is not None and next_wake > datetime.now(UTC) + timedelta(minutes=59)
    finally:
        service.stop()
        storage.close()
