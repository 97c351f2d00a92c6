"""A channel's configuration error stops the channel, not the messages: they stay pending with
the reason, the state is said once, and sending resumes when the channel works again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from smtp_fixtures import SmtpTestServer

from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.channels.smtp_email import SmtpEmailChannel
from reminders.channels.twilio_sms import TwilioSmsChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioStandIn


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> PlanCatalog:
    return PlanCatalog(*write_demo_plan(tmp_path))


def dispatcher(
    storage: Storage, catalog: PlanCatalog, clock: Clock, **channels: Channel
) -> Dispatcher:
    settings = DispatchSettings(clinic=CLINIC)
    every = {"sms": InMemoryChannel("sms"), "email": InMemoryChannel("email"), **channels}
    return Dispatcher(storage, catalog, every, settings, clock=clock)


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


def test_smtp_without_starttls_keeps_every_email_pending_until_fixed(
    storage: Storage, catalog: PlanCatalog, smtp_server: SmtpTestServer
) -> None:
    clock = Clock()
    storage.patients.enroll_many(
        due_now_requests(catalog, clock.now, 3, channel="email"), clock.now
    )
    expects_tls = SmtpEmailChannel(
        smtp_server.host, smtp_server.port, from_address="clinic@example.org", timeout=5
    )

    report = dispatcher(storage, catalog, clock, email=expects_tls).run_once()

    assert report.outcomes == {"channel-stopped": 3}
    assert storage.message_views.status_counts() == {"pending": 3}
    assert all(
        "email channel is stopped" in str(m.status_reason)
        for m in storage.message_views.list_messages()
    )
    assert smtp_server.received == []
    fixed = SmtpEmailChannel(
        smtp_server.host,
        smtp_server.port,
        from_address="clinic@example.org",
        starttls=False,
        timeout=5,
    )
    clock.now += timedelta(minutes=2)
    assert dispatcher(storage, catalog, clock, email=fixed).run_once().outcomes == {"sent": 3}
    assert len(smtp_server.received) == 3
    fixed.close()


def test_an_invalid_twilio_sender_stops_sms_once_then_a_probe_resumes_it(
    storage: Storage, catalog: PlanCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    storage.patients.enroll_many(due_now_requests(catalog, clock.now, 3), clock.now)
    with TwilioStandIn() as twilio:
        sms = TwilioSmsChannel(
            TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550001", base_url=twilio.url
        )
        worker = dispatcher(storage, catalog, clock, sms=sms)
        twilio.fail_next(status=400, code=21212, message="The 'From' number is not valid")
        with caplog.at_level(logging.INFO, logger="reminders"):
            first = worker.run_once()
            clock.now += timedelta(seconds=30)
            waiting = worker.run_once()
            clock.now += timedelta(minutes=2)
            resumed = worker.run_once()

    assert first.outcomes == {"channel-stopped": 3}
    assert waiting.handled == 0  # nothing is due before the probe
    assert resumed.outcomes == {"sent": 3}
    assert len(twilio.messages) == 3
    stopped = [r for r in caplog.records if "channel stopped" in r.getMessage()]
    assert len(stopped) == 1
    assert "21212" in stopped[0].getMessage()
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert [s.ok for s in worker.health.states()] == [True, True]
