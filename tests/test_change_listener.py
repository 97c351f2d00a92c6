"""On PostgreSQL a change written through another connection wakes the dispatcher in < 1 s:
an enrollment, a reschedule, an opt-out, and a delivery report kept until its send is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from sqlalchemy import select

from reminders.catalog import PlanCatalog
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.report import PassReport
from reminders.dispatch.service import DispatchService
from reminders.dispatch.settings import DispatchSettings
from reminders.replies.service import ReplyService
from reminders.store.reply_records import SmsStateChange, SmsStopKind
from reminders.store.schema import Message
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel

pytestmark = pytest.mark.postgres

WITHIN = 1.0  # seconds, from the other connection's commit to the send


@dataclass
class Running:
    service: DispatchService
    other: Storage  # another connection pool: another clinic desk, an import, a webhook
    catalog: PlanCatalog
    sms: InMemoryChannel
    sent: threading.Event
    passes: list[PassReport]


@pytest.fixture
def running(postgres_url: str, tmp_path: Path) -> Iterator[Running]:
    dispatcher_side, other = Storage.open(postgres_url), Storage.open(postgres_url)
    plans, templates = write_demo_plan(tmp_path)
    catalog = PlanCatalog(plans, templates)
    sms = InMemoryChannel("sms")
    dispatcher = Dispatcher(
        dispatcher_side,
        catalog,
        {"sms": sms, "email": InMemoryChannel("email")},
        DispatchSettings(clinic=CLINIC),
    )
    sent = threading.Event()
    passes: list[PassReport] = []
    replies = ReplyService(dispatcher_side, catalog, CLINIC)

    def on_pass(report: PassReport) -> None:
        replies.after_pass(report)  # as `reminders serve` does
        passes.append(report)
        if report.outcomes.get("sent"):
            sent.set()

    # An idle poll of an hour: only the notification can wake it within the test.
    service = DispatchService(
        dispatcher,
        idle_poll=timedelta(hours=1),
        on_pass=on_pass,
        changes=dispatcher_side.database.change_listener,
    )
    service.start()
    try:
        assert service.listener is not None and service.listener.listening.wait(10)
        wait_until(lambda: bool(passes))  # the pass at start has run; now idle for an hour
        yield Running(service, other, catalog, sms, sent, passes)
    finally:
        service.stop()
        dispatcher_side.close()
        other.close()


def heard(running: Running) -> int:
    listener = running.service.listener
    return listener.heard if listener is not None else 0


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_enrollment_made_elsewhere_is_sent_within_a_second(running: Running) -> None:
    (request,) = due_now_requests(running.catalog, datetime.now(UTC), 1)

    running.other.patients.enroll_many([request], datetime.now(UTC))
    committed = time.monotonic()

    assert running.sent.wait(WITHIN)
    assert time.monotonic() - committed < WITHIN
    assert [m.to for _, m in running.sms.sent] == [request.patient.phone]


def test_a_reschedule_made_elsewhere_is_sent_within_a_second(running: Running) -> None:
    now = datetime.now(UTC)
    (request,) = due_now_requests(running.catalog, now, 1)
    tomorrow = [
        replace(m, due_at=m.due_at + timedelta(days=1), send_before=m.send_before + timedelta(1))
        for m in request.messages
    ]
    passes_before = len(running.passes)
    running.other.patients.enroll_many([replace(request, messages=tomorrow)], now)
    wait_until(lambda: heard(running) and len(running.passes) > passes_before)
    assert not running.sms.sent

    running.other.patients.enroll_many([request], datetime.now(UTC))
    committed = time.monotonic()

    assert running.sent.wait(WITHIN)
    assert time.monotonic() - committed < WITHIN


def test_an_opt_out_made_elsewhere_wakes_the_dispatcher_within_a_second(
    running: Running,
) -> None:
    now = datetime.now(UTC)
    (request,) = due_now_requests(running.catalog, now, 1, window=timedelta(days=2))
    later = [replace(m, due_at=m.due_at + timedelta(days=1)) for m in request.messages]
    passes_before = len(running.passes)
    (outcome,) = running.other.patients.enroll_many([replace(request, messages=later)], now)
    wait_until(lambda: heard(running) and len(running.passes) > passes_before)
    passes_before = len(running.passes)

    now = datetime.now(UTC)
    stop = SmsStateChange(SmsStopKind.OPTED_OUT, "STOP", now, "opted out of SMS by text")
    running.other.consent.stop_sms([outcome.patient_id], stop)
    committed = time.monotonic()

    wait_until(lambda: len(running.passes) > passes_before, timeout=WITHIN)
    assert time.monotonic() - committed < WITHIN
    assert not running.sms.sent


def provider_status(storage: Storage, sid: str) -> str | None:
    with storage.database.session() as session:
        return session.scalar(
            select(Message.provider_status).where(Message.provider_message_id == sid)
        )


def test_a_report_kept_elsewhere_is_applied_within_a_second(running: Running) -> None:
    """The API kept a report a moment after the pass that committed its send had applied the
    kept ones (its check for the send came before that commit): the next pass applies it."""
    (request,) = due_now_requests(running.catalog, datetime.now(UTC), 1)
    running.other.patients.enroll_many([request], datetime.now(UTC))
    assert running.sent.wait(WITHIN)  # set after the pass's hook has applied the kept ones
    (sid,) = running.sms.sids
    assert provider_status(running.other, sid) == "queued"

    running.other.early_reports.keep(sid, "delivered", None, datetime.now(UTC))
    committed = time.monotonic()

    wait_until(lambda: provider_status(running.other, sid) == "delivered", timeout=WITHIN)
    assert time.monotonic() - committed < WITHIN
    assert running.other.early_reports.kept() == []
