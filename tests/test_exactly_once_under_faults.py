"""Exactly once under slow workers, failing reconciliation and unexpected channel errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from plan_fixtures import CLINIC, write_demo_plan

from reminders.catalog import PlanCatalog
from reminders.channels.base import DeliveryReceipt, OutgoingMessage
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import read_input
from reminders.errors import DeliveryError, FailureKind
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel

NEW_YORK = ZoneInfo("America/New_York")
PREPARE_DUE = datetime(2026, 3, 8, 10, 0, tzinfo=NEW_YORK).astimezone(UTC)


class ScriptedChannel(InMemoryChannel):
    """An in-memory provider whose sends and look-ups can run a step first (slow, or broken)."""

    def __init__(self) -> None:
        super().__init__("sms")
        self.before_send: list[Callable[[OutgoingMessage], None]] = []
        self.before_find: list[Callable[[], None]] = []
        self.after_send: list[Callable[[], None]] = []

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        if self.before_send:
            self.before_send.pop(0)(message)
        receipt = super().send(message)
        if self.after_send:
            self.after_send.pop(0)()
        return receipt

    def find_sent(self, message: OutgoingMessage, since: datetime) -> DeliveryReceipt | None:
        if self.before_find:
            self.before_find.pop(0)()
        return super().find_sent(message, since)


@dataclass
class DispatchWorld:
    storage: Storage
    service: EnrollmentService
    catalog: PlanCatalog
    sms: ScriptedChannel

    def dispatcher(self, worker: str) -> Dispatcher:
        settings = DispatchSettings(clinic=CLINIC)
        channels = {"sms": self.sms, "email": InMemoryChannel("email")}
        return Dispatcher(self.storage, self.catalog, channels, settings, worker_id=worker)

    def sends(self) -> Counter[int]:
        return Counter(message.outbox_id for _, message in self.sms.sent)


@pytest.fixture
def dispatch_world(storage: Storage, tmp_path: Path) -> Iterator[DispatchWorld]:
    plans, templates = write_demo_plan(tmp_path)
    catalog = PlanCatalog(plans, templates)
    yield DispatchWorld(storage, EnrollmentService(storage, catalog), catalog, ScriptedChannel())


def enroll(dispatch_world: DispatchWorld, count: int = 1) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll(
            [
                dispatch_world.service.validate(
                    read_input(
                        {
                            "external_id": f"P-{i}",
                            "first_name": "Maria",
                            "phone": f"(202) 555-01{i:02d}",
                            "timezone": "America/New_York",
                            "plan": "demo",
                            "procedure_date": "2026-03-10",
                            "procedure_time": "07:30",
                            "sms_consent": True,
                        }
                    )
                )
                for i in range(count)
            ]
        )


def test_a_worker_whose_claim_was_taken_over_does_not_send_it_again(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world)
    with freeze_time(PREPARE_DUE):
        [claimed] = dispatch_world.storage.outbox.claim_due(PREPARE_DUE, "slow", 10)
    # The slow worker stalls past the claim timeout; another worker takes the claim over.
    with freeze_time(PREPARE_DUE + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w2").run_once().outcomes == {"sent": 1}
        dispatch_world.dispatcher("slow").process(claimed)
    assert list(dispatch_world.sends().values()) == [1]


def test_the_tail_of_a_slow_batch_is_not_taken_over_and_sent_twice(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world, count=3)
    with freeze_time(PREPARE_DUE) as frozen:

        def slow_send(_: OutgoingMessage) -> None:
            frozen.tick(timedelta(seconds=50))  # a slow provider, well within its timeout

        def other_worker_passes(_: OutgoingMessage) -> None:
            frozen.tick(timedelta(seconds=30))
            dispatch_world.dispatcher("w2").run_once()
            frozen.tick(timedelta(seconds=20))

        dispatch_world.sms.before_send = [slow_send, slow_send, other_worker_passes]
        dispatch_world.dispatcher("w1").run_once()
    assert sorted(dispatch_world.sends().values()) == [1, 1, 1]


def test_a_failed_reconciliation_never_resends_without_asking_the_provider(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world)

    def worker_dies() -> None:
        raise SystemExit("killed after the provider accepted the message")

    with freeze_time(PREPARE_DUE):
        dispatch_world.sms.after_send = [worker_dies]
        with pytest.raises(SystemExit):
            dispatch_world.dispatcher("dead").run_once()
    assert len(dispatch_world.sms.sent) == 1

    def provider_list_down() -> None:
        raise DeliveryError("Twilio list unavailable", code="503", kind=FailureKind.UNKNOWN_OUTCOME)

    dispatch_world.sms.before_find = [provider_list_down]
    for minutes in (3, 4, 6, 9):
        with freeze_time(PREPARE_DUE + timedelta(minutes=minutes)):
            dispatch_world.dispatcher(f"w{minutes}").run_once()
    assert len(dispatch_world.sms.sent) == 1
    prepare = next(
        m for m in dispatch_world.storage.message_views.timeline("P-0") if m.step_id == "prepare"
    )
    assert prepare.status == "sent"


def test_an_unexpected_channel_error_does_not_end_the_pass(dispatch_world: DispatchWorld) -> None:
    enroll(dispatch_world, count=2)

    def crash(_: OutgoingMessage) -> None:
        raise RuntimeError("bug in a provider library")

    dispatch_world.sms.before_send = [crash]
    with freeze_time(PREPARE_DUE):
        report = dispatch_world.dispatcher("w1").run_once()
    assert report.outcomes["sent"] == 1
    assert len(dispatch_world.sms.sent) == 1


def test_a_message_whose_send_raised_is_reconciled_then_sent_once(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world)

    def crash(_: OutgoingMessage) -> None:
        raise RuntimeError("bug in a provider library")

    dispatch_world.sms.before_send = [crash]
    with freeze_time(PREPARE_DUE):
        dispatch_world.dispatcher("w1").run_once()
    with freeze_time(PREPARE_DUE + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w1").run_once().outcomes == {"sent": 1}
    with freeze_time(PREPARE_DUE + timedelta(minutes=10)):
        assert dispatch_world.dispatcher("w1").run_once().handled == 0
    assert list(dispatch_world.sends().values()) == [1]


def test_a_message_accepted_before_the_channel_raised_is_not_sent_again(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world)

    def crash_after_handoff() -> None:
        raise RuntimeError("provider answer could not be parsed")

    dispatch_world.sms.after_send = [crash_after_handoff]
    with freeze_time(PREPARE_DUE):
        dispatch_world.dispatcher("w1").run_once()
    with freeze_time(PREPARE_DUE + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w1").run_once().outcomes == {"reconciled": 1}
    assert list(dispatch_world.sends().values()) == [1]


def test_a_recovery_that_raises_does_not_stop_due_messages(dispatch_world: DispatchWorld) -> None:
    enroll(dispatch_world, count=2)
    with freeze_time(PREPARE_DUE):
        dispatch_world.storage.outbox.claim_due(PREPARE_DUE, "dead", 1)

    def crash(_: OutgoingMessage) -> None:
        raise RuntimeError("bug in a provider library")

    dispatch_world.sms.before_send = [crash]
    with freeze_time(PREPARE_DUE + timedelta(minutes=3)):
        report = dispatch_world.dispatcher("w2").run_once()
    assert report.outcomes["sent"] == 1


def test_a_send_that_timed_out_after_the_provider_took_it_is_not_resent(
    dispatch_world: DispatchWorld,
) -> None:
    enroll(dispatch_world)

    def read_timeout() -> None:
        raise DeliveryError(
            "Twilio did not answer in time", code="timeout", kind=FailureKind.UNKNOWN_OUTCOME
        )

    dispatch_world.sms.after_send = [read_timeout]
    with freeze_time(PREPARE_DUE):
        dispatch_world.dispatcher("w1").run_once()
    with freeze_time(PREPARE_DUE + timedelta(minutes=1)):
        assert dispatch_world.dispatcher("w1").run_once().handled == 0
    with freeze_time(PREPARE_DUE + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w1").run_once().outcomes == {"reconciled": 1}
    assert list(dispatch_world.sends().values()) == [1]
