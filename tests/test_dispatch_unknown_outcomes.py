"""A send whose outcome is unknown is reconciled with Twilio before any resend; a channel whose
settings are wrong stops, and its messages wait. Twilio is the stand-in in its own process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from twilio_process import StandInProcess, standin_process

from reminders.catalog import PlanCatalog
from reminders.channels.twilio_sms import RECONCILE_MAX_PAGES, TwilioSmsChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

CLAIM_TIMEOUT = timedelta(minutes=2)


class Clock:
    """Real time at the start, moved on by the test (the stand-in stamps with real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    storage: Storage
    catalog: PlanCatalog
    clock: Clock
    twilio: StandInProcess

    def dispatcher(self, token: str = TEST_AUTH_TOKEN) -> Dispatcher:
        sms = TwilioSmsChannel(
            TEST_ACCOUNT_SID, token, from_number="+15005550006", base_url=self.twilio.url
        )
        settings = DispatchSettings(clinic=CLINIC, claim_timeout=CLAIM_TIMEOUT)
        channels = {"sms": sms, "email": InMemoryChannel("email")}
        return Dispatcher(self.storage, self.catalog, channels, settings, clock=self.clock)

    def enroll(self, count: int = 1) -> None:
        self.storage.patients.enroll_many(
            due_now_requests(self.catalog, self.clock.now, count), self.clock.now
        )

    def texts_per_patient(self) -> Counter[str]:
        return Counter(item["to"] for item in self.twilio.created())


Make = Callable[..., World]


@pytest.fixture
def world_with(storage: Storage, tmp_path: Path) -> Iterator[Make]:
    """A world whose Twilio stand-in runs with the given command-line flags."""
    plans, templates = write_demo_plan(tmp_path)
    catalog = PlanCatalog(plans, templates)
    with ExitStack() as stack:

        def make(*flags: str) -> World:
            twilio = stack.enter_context(standin_process(tmp_path, *flags))
            return World(storage, catalog, Clock(), twilio)

        yield make


def test_a_500_after_twilio_created_the_text_is_reconciled_not_sent_twice(world_with: Make) -> None:
    world = world_with("--script", "500-after-create")
    world.enroll()
    dispatcher = world.dispatcher()

    assert dispatcher.run_once().outcomes == {"unsettled": 1}
    world.clock.now += CLAIM_TIMEOUT + timedelta(seconds=1)
    assert dispatcher.run_once().outcomes == {"reconciled": 1}

    assert world.twilio.faults() == ["500-after-create"]
    assert world.texts_per_patient() == {"+12025550000": 1}
    assert world.storage.message_views.status_counts() == {"sent": 1}


def test_a_text_still_queued_at_twilio_is_found_and_not_sent_again(world_with: Make) -> None:
    world = world_with("--hold-queued", "--script", "lost")
    world.enroll()
    dispatcher = world.dispatcher()

    assert dispatcher.run_once().outcomes == {"unsettled": 1}
    world.clock.now += CLAIM_TIMEOUT + timedelta(seconds=1)
    assert dispatcher.run_once().outcomes == {"reconciled": 1}

    assert world.texts_per_patient() == {"+12025550000": 1}
    [message] = world.storage.message_views.timeline("P-00000")
    assert (message.status, message.provider_status) == ("sent", "queued")


def test_reconciliation_against_an_endless_list_is_bounded_and_never_resends(
    world_with: Make,
) -> None:
    world = world_with("--endless-pages", "--script", "500")
    world.enroll()
    dispatcher = world.dispatcher()

    dispatcher.run_once()
    world.clock.now += CLAIM_TIMEOUT + timedelta(seconds=1)
    report = dispatcher.run_once()
    world.clock.now += timedelta(hours=2)  # past the message's window
    final = dispatcher.run_once()

    assert report.outcomes == {"unsettled": 1}
    assert final.outcomes == {"failed": 1}
    assert world.twilio.created() == []
    [message] = world.storage.message_views.timeline("P-00000")
    assert message.status_reason is not None
    assert "outcome unknown" in message.status_reason
    assert f"first {RECONCILE_MAX_PAGES} pages" in message.status_reason


def test_throttling_is_retried_and_the_text_goes_once(world_with: Make) -> None:
    world = world_with("--script", "429")
    world.enroll()
    dispatcher = world.dispatcher()

    assert dispatcher.run_once().outcomes == {"retry": 1}
    world.clock.now += timedelta(minutes=5)
    assert dispatcher.run_once().outcomes == {"sent": 1}
    assert world.texts_per_patient() == {"+12025550000": 1}


def test_wrong_twilio_credentials_stop_the_channel_and_the_texts_wait(world_with: Make) -> None:
    world = world_with()
    world.enroll(3)

    report = world.dispatcher(token="wrong-token").run_once()

    assert report.outcomes == {"channel-stopped": 3}
    assert world.storage.message_views.status_counts() == {"pending": 3}
    reasons = {m.status_reason for m in world.storage.message_views.list_messages()}
    assert len(reasons) == 1
    assert "the sms channel is stopped" in str(reasons)
    assert "20003" in str(reasons)
    assert world.twilio.created() == []

    world.clock.now += timedelta(minutes=5)  # staff fixed the token; the service restarted
    assert world.dispatcher().run_once().outcomes == {"sent": 3}
    assert sum(world.texts_per_patient().values()) == 3
