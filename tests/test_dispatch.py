"""The main job end to end: enroll, then send each message once, at its local time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from plan_fixtures import CLINIC, write_demo_plan

from reminders.catalog import PlanCatalog
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import DeliveryError, FailureKind
from reminders.schedule_diff import MessageStatus
from reminders.store.outbox import Outbox
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel

NEW_YORK = ZoneInfo("America/New_York")
PHONE = "+12025550143"


@dataclass
class DispatchWorld:
    storage: Storage
    catalog: PlanCatalog
    service: EnrollmentService
    sms: InMemoryChannel
    email: InMemoryChannel

    def dispatcher(self, worker: str = "w1") -> Dispatcher:
        settings = DispatchSettings(clinic=CLINIC)
        channels = {"sms": self.sms, "email": self.email}
        return Dispatcher(self.storage, self.catalog, channels, settings, worker_id=worker)


@pytest.fixture
def dispatch_world(storage: Storage, tmp_path: Path) -> Iterator[DispatchWorld]:
    plans, templates = write_demo_plan(tmp_path)
    catalog = PlanCatalog(plans, templates)
    yield DispatchWorld(
        storage,
        catalog,
        EnrollmentService(storage, catalog),
        InMemoryChannel("sms"),
        InMemoryChannel("email"),
    )


def patient(**overrides: object) -> EnrollmentInput:
    data: dict[str, object] = {
        "external_id": "P-1",
        "first_name": "Maria",
        "phone": "(202) 555-0143",
        "timezone": "America/New_York",
        "plan": "demo",
        "procedure_date": "2026-03-10",
        "procedure_time": "07:30",
        "attributes": {"takes_blood_thinners": "yes"},
        "sms_consent": True,
    }
    data.update(overrides)
    return read_input(data)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK).astimezone(UTC)


EXPECTED_LOCAL_TIMES = {
    "medicines": "2026-03-07 10:00",
    "prepare": "2026-03-08 10:00",  # the day clocks spring forward
    "ride": "2026-03-09 18:00",
    "discharge": "2026-03-10 10:30",  # 3 h after the 07:30 procedure
    "week-one": "2026-03-17 09:00",
}


def test_whole_journey_sends_each_message_once_at_its_local_time(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient())
    dispatcher = dispatch_world.dispatcher()
    for step, wall in EXPECTED_LOCAL_TIMES.items():
        due = local(wall)
        with freeze_time(due - timedelta(seconds=1)):
            assert dispatcher.run_once().handled == 0
        with freeze_time(due):
            report = dispatcher.run_once()
        assert report.outcomes == {"sent": 1}, step
        sent_at, message = dispatch_world.sms.sent[-1]
        assert sent_at == due
        assert message.to == PHONE
    with freeze_time("2026-04-30"):
        assert dispatch_world.dispatcher().run_once().handled == 0
    assert len(dispatch_world.sms.sent) == len(EXPECTED_LOCAL_TIMES)
    statuses = {m.step_id: m.status for m in dispatch_world.storage.message_views.timeline("P-1")}
    assert set(statuses.values()) == {"sent"}


def test_first_sms_carries_the_opt_out_line_and_later_ones_do_not(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    with freeze_time(local("2026-03-08 10:00")):
        dispatch_world.dispatcher().run_once()
    with freeze_time(local("2026-03-09 18:00")):
        dispatch_world.dispatcher().run_once()
    first, second = (m.body for _, m in dispatch_world.sms.sent)
    assert "Reply STOP to opt out." in first
    assert first.startswith("Riverside Clinic: Hi Maria, your procedure is on Tuesday, March 10.")
    assert "STOP" not in second


def test_step_condition_leaves_out_the_blood_thinner_message(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={"takes_blood_thinners": "no"}))
    steps = [m.step_id for m in dispatch_world.storage.message_views.timeline("P-1")]
    assert steps == ["prepare", "ride", "discharge", "week-one"]


def test_late_message_within_its_window_is_sent_and_beyond_it_skipped(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient())
    # The service was down from before the medicines reminder until 3 h after "ride" was due.
    with freeze_time(local("2026-03-09 21:00")):
        report = dispatch_world.dispatcher().run_once()
    timeline = {m.step_id: m for m in dispatch_world.storage.message_views.timeline("P-1")}
    assert timeline["medicines"].status == "skipped"
    assert "too late" in (timeline["medicines"].status_reason or "")
    assert timeline["prepare"].status == "skipped"
    assert timeline["ride"].status == "skipped"  # max_late 2h
    assert report.outcomes == {"skipped": 3}


def test_pre_procedure_instruction_is_never_sent_after_the_procedure(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(procedure_time="19:00"))
    # "ride" is due 18:00 the day before with 2 h grace; the procedure starts next day 19:00.
    # Send window for "prepare" (12 h) is over by the time the service comes back at 23:00.
    with freeze_time(local("2026-03-10 19:00")):
        dispatch_world.dispatcher().run_once()
    timeline = {m.step_id: m for m in dispatch_world.storage.message_views.timeline("P-1")}
    for step in ("medicines", "prepare", "ride"):
        assert timeline[step].status == "skipped"
        assert timeline[step].send_before <= local("2026-03-10 19:00")
    assert dispatch_world.sms.sent == []


def test_late_send_waits_for_the_end_of_quiet_hours(
    dispatch_world: DispatchWorld, tmp_path: Path
) -> None:
    plans, templates = write_demo_plan(
        tmp_path / "patient",
        extra_steps="  - id: check-in\n    phase: recovery\n    offset: {days: 5}\n"
        "    template: week_one\n    max_late: 2d\n",
    )
    dispatch_world.catalog = PlanCatalog(plans, templates)
    dispatch_world.service = EnrollmentService(dispatch_world.storage, dispatch_world.catalog)
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    # The service comes back at 21:30 local, inside quiet hours, 12.5 h after 09:00.
    with freeze_time(local("2026-03-15 21:30")):
        dispatch_world.dispatcher().run_once()
    check_in = next(
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "check-in"
    )
    assert check_in.status == "pending"
    assert check_in.next_attempt_at == local("2026-03-16 08:00")
    assert check_in.attempts == 0
    assert "quiet hours" in (check_in.status_reason or "")
    assert "waits until 2026-03-16 08:00 EDT" in (check_in.status_reason or "")
    with freeze_time(local("2026-03-16 08:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"sent": 1}


def test_late_send_whose_window_ends_in_quiet_hours_is_skipped(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    # "discharge" was due 10:30 with 12 h grace (22:30); at 21:30 quiet hours outlast it.
    with freeze_time(local("2026-03-10 21:30")):
        dispatch_world.dispatcher().run_once()
    discharge = next(
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "discharge"
    )
    assert discharge.status == "skipped"
    assert discharge.status_reason == "quiet hours last past the message's send window"


def test_transient_failure_retries_with_backoff_then_sends(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    dispatch_world.sms.fail_next(
        DeliveryError("Too Many Requests", code="20429", kind=FailureKind.RETRY)
    )
    due = local("2026-03-08 10:00")
    with freeze_time(due):
        assert dispatch_world.dispatcher().run_once().outcomes == {"retry": 1}
    prepare = next(
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "prepare"
    )
    assert prepare.status == "pending"
    assert prepare.next_attempt_at == due + timedelta(seconds=30)
    with freeze_time(due + timedelta(seconds=30)):
        assert dispatch_world.dispatcher().run_once().outcomes == {"sent": 1}


def test_permanent_failure_is_recorded_with_code_and_marks_the_phone_invalid(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    dispatch_world.sms.fail_next(
        DeliveryError("The 'To' number is not valid", code="21211", kind=FailureKind.INVALID_NUMBER)
    )
    with freeze_time(local("2026-03-08 10:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"failed": 1}
    failed = dispatch_world.storage.message_views.list_messages(status=MessageStatus.FAILED)
    assert [(m.step_id, m.error_code) for m in failed] == [("prepare", "21211")]
    skipped = dispatch_world.storage.message_views.list_messages(
        status=MessageStatus.SKIPPED
    )  # at once, not when due
    reason = "no valid phone number since 2026-03-08: The 'To' number is not valid, per send error"
    assert {m.status_reason for m in skipped} == {reason}
    with freeze_time(local("2026-03-09 18:00")):
        assert dispatch_world.dispatcher().run_once().handled == 0


def test_crash_after_provider_accepted_is_reconciled_not_resent(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    due = local("2026-03-08 10:00")
    with freeze_time(due):
        claimed = dispatch_world.storage.outbox.claim_due(due, "dead-worker", 10)
        assert [m.step_id for m in claimed] == ["prepare"]
        # The dead worker got as far as the provider, then died before recording it.
        dead = dispatch_world.dispatcher("dead-worker")
        dispatch_world.sms.send(dead._outgoing(claimed[0], dead._plan(claimed[0]), first_sms=True))
    with freeze_time(due + timedelta(minutes=1)):
        assert dispatch_world.dispatcher("w2").run_once().handled == 0  # claim still fresh
    with freeze_time(due + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w2").run_once().outcomes == {"reconciled": 1}
    assert len(dispatch_world.sms.sent) == 1
    prepare = next(
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "prepare"
    )
    assert prepare.status == "sent"


def test_crash_before_the_provider_saw_it_sends_exactly_once(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    due = local("2026-03-08 10:00")
    with freeze_time(due):
        dispatch_world.storage.outbox.claim_due(due, "dead-worker", 10)
    with freeze_time(due + timedelta(minutes=3)):
        assert dispatch_world.dispatcher("w2").run_once().outcomes == {"sent": 1}
    with freeze_time(due + timedelta(minutes=10)):
        assert dispatch_world.dispatcher("w3").run_once().handled == 0
    assert len(dispatch_world.sms.sent) == 1


def test_reschedule_recomputes_pending_and_keeps_sent_history(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    with freeze_time(local("2026-03-08 10:00")):
        dispatch_world.dispatcher().run_once()
        outcome = dispatch_world.service.reschedule("P-1", datetime(2026, 3, 24).date())
    actions = {c.step_id: c.action for c in outcome.changes}
    assert actions == {"ride": "move", "discharge": "move", "week-one": "move"}
    timeline = {m.step_id: m for m in dispatch_world.storage.message_views.timeline("P-1")}
    assert timeline["prepare"].status == "sent"
    assert timeline["ride"].due_at == local("2026-03-23 18:00")
    assert timeline["week-one"].due_at == local("2026-03-31 09:00")
    assert len(dispatch_world.storage.message_views.timeline("P-1")) == 4


def test_enrolling_again_is_idempotent(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        first = dispatch_world.service.enroll_one(patient())
        again = dispatch_world.service.enroll_one(patient())
    assert first.created and not again.created
    assert {c.action for c in again.changes} == {"keep"}
    assert len(dispatch_world.storage.message_views.timeline("P-1")) == 5


def test_cancel_cancels_pending_messages_with_the_reason(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient())
        assert dispatch_world.service.cancel("P-1", "procedure called off") == 5
    with freeze_time("2026-04-30"):
        assert dispatch_world.dispatcher().run_once().handled == 0
    reasons = {m.status_reason for m in dispatch_world.storage.message_views.timeline("P-1")}
    assert reasons == {"procedure called off"}


def test_patient_without_phone_gets_preferred_steps_by_email(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(
            patient(phone=None, email="maria@example.org", preferred_channel="email", attributes={})
        )
    with freeze_time(local("2026-03-08 10:00")):
        dispatch_world.dispatcher().run_once()
    ((_, message),) = dispatch_world.email.sent
    assert message.subject == "Prepare"
    assert message.html is not None and message.html.startswith("<p>Riverside Clinic")


def test_daily_cap_defers_to_the_next_morning_without_dropping(
    dispatch_world: DispatchWorld, tmp_path: Path
) -> None:
    plans, templates = write_demo_plan(
        tmp_path / "capped",
        extra_steps='  - id: same-day\n    phase: recovery\n    offset: {days: 7, at: "09:30"}\n'
        "    template: week_one\n",
    )
    text = (plans / "demo.yaml").read_text().replace("per_day: 3", "per_day: 1")
    (plans / "demo.yaml").write_text(text)
    dispatch_world.catalog = PlanCatalog(plans, templates)
    dispatch_world.service = EnrollmentService(dispatch_world.storage, dispatch_world.catalog)
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    with freeze_time(local("2026-03-17 09:30")):
        # The three earlier messages are past their windows; 09:00 goes, 09:30 waits.
        outcomes = dispatch_world.dispatcher().run_once().outcomes
    assert outcomes == {"skipped": 3, "sent": 1, "deferred": 1}
    same_day = next(
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "same-day"
    )
    assert same_day.status == "pending"
    assert same_day.next_attempt_at == local("2026-03-18 08:00")
    assert "daily SMS cap" in (same_day.status_reason or "")
    assert "waits until 2026-03-18 08:00 EDT" in (same_day.status_reason or "")
    with freeze_time(local("2026-03-18 08:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"sent": 1}


def one_text_a_day(
    dispatch_world: DispatchWorld, root: Path, extra_step: str, edit: tuple[str, str] = ("", "")
) -> EnrollmentService:
    """The demo plan with an SMS cap of one a day, `extra_step` (id, phase, offset) sending the
    week-one text, and `edit` made to its text; P-1 enrolled on it (procedure 10 March)."""
    plans, templates = write_demo_plan(root, extra_steps=extra_step + "    template: week_one\n")
    text = (plans / "demo.yaml").read_text().replace("per_day: 3", "per_day: 1")
    (plans / "demo.yaml").write_text(text.replace(*edit) if edit[0] else text)
    dispatch_world.catalog = PlanCatalog(plans, templates)
    service = dispatch_world.service = EnrollmentService(
        dispatch_world.storage, dispatch_world.catalog
    )
    with freeze_time("2026-03-01 12:00:00"):
        service.enroll_one(patient(attributes={}))
    return service


def reschedule_right_after_the_claim(
    monkeypatch: pytest.MonkeyPatch, service: EnrollmentService, procedure_date: date
) -> None:
    """Staff move P-1's procedure just after the next claim, before its outcome is written."""
    claim_batch = Outbox.claim_batch

    def claim_then_staff_reschedule(self: Outbox, *args: Any, **kwargs: Any) -> Any:
        batch = claim_batch(self, *args, **kwargs)
        monkeypatch.setattr(Outbox, "claim_batch", claim_batch)
        service.reschedule("P-1", procedure_date)
        return batch

    monkeypatch.setattr(Outbox, "claim_batch", claim_then_staff_reschedule)


def test_a_cap_deferral_does_not_undo_a_reschedule_made_while_it_was_decided(
    dispatch_world: DispatchWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff move the procedure a day earlier just after the dispatcher claimed a
    pre-procedure instruction that the daily cap then defers to the next morning: the
    deferral, decided on the claimed (old) window, must not write that window back over the
    new one, or the instruction goes out after the procedure."""
    service = one_text_a_day(
        dispatch_world,
        tmp_path / "capped",
        '  - id: early\n    phase: pre-procedure\n    offset: {days: -2, at: "09:00"}\n',
        ("template: prepare\n", "template: prepare\n    max_late: 2d\n"),
    )  # procedure 10 March, 07:30
    with freeze_time(local("2026-03-08 09:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"sent": 1}  # early
    reschedule_right_after_the_claim(monkeypatch, service, date(2026, 3, 9))
    with freeze_time(local("2026-03-08 10:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"deferred": 1}  # prepare

    with freeze_time(local("2026-03-09 08:00")):  # the procedure began at 07:30
        dispatch_world.dispatcher().run_once()
    timeline = dispatch_world.storage.message_views.timeline("P-1")
    prepare = next(m for m in timeline if m.step_id == "prepare")
    assert (prepare.status, prepare.send_before) == ("skipped", local("2026-03-09 07:30"))
    assert [m for _, m in dispatch_world.sms.sent if "procedure is on" in m.body] == []


def test_a_cap_deferral_that_widens_the_window_keeps_a_later_one_given_meanwhile(
    dispatch_world: DispatchWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recovery text deferred by the cap past its window gets a wider one; if staff moved
    the procedure two days later meanwhile, the new (later) window stands, or the text would
    be skipped as too late when it comes due."""
    service = one_text_a_day(
        dispatch_world,
        tmp_path / "capped",
        '  - id: same-day\n    phase: recovery\n    offset: {days: 7, at: "08:30"}\n',
    )
    with freeze_time(local("2026-03-17 08:30")):
        assert dispatch_world.dispatcher().run_once().outcomes["sent"] == 1  # same-day
    reschedule_right_after_the_claim(monkeypatch, service, date(2026, 3, 12))
    with freeze_time(local("2026-03-17 09:00")):
        assert dispatch_world.dispatcher().run_once().outcomes == {"deferred": 1}  # week-one

    timeline = dispatch_world.storage.message_views.timeline("P-1")
    week_one = next(m for m in timeline if m.step_id == "week-one")
    assert (week_one.status, week_one.due_at) == ("pending", local("2026-03-19 09:00"))
    assert week_one.send_before == local("2026-03-19 21:00")


def test_two_workers_never_send_the_same_message(dispatch_world: DispatchWorld) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        entries = [
            dispatch_world.service.validate(patient(external_id=f"P-{i}", attributes={}))
            for i in range(60)
        ]
        dispatch_world.service.enroll(entries)
    now = local("2026-03-10 10:30")  # earlier messages are past their windows
    barrier = threading.Barrier(2)
    reports = []

    def work(name: str) -> None:
        barrier.wait()
        reports.append(dispatch_world.dispatcher(name).run_once())

    with freeze_time(now):
        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    sent_ids = [m.outbox_id for _, m in dispatch_world.sms.sent]
    assert len(sent_ids) == len(set(sent_ids)) == 60  # one "discharge" per patient
    assert sum(r.handled for r in reports) == 60 * 3  # "prepare", "ride" late; "discharge" sent


def test_enrolling_again_keeps_skipped_history_without_duplicates(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient())
    with freeze_time(local("2026-03-09 21:00")):  # three messages are too late by now
        dispatch_world.dispatcher().run_once()
        again = dispatch_world.service.enroll_one(patient())
    assert {c.step_id: c.action for c in again.changes} == {
        "medicines": "keep",
        "prepare": "keep",
        "ride": "keep",
        "discharge": "keep",
        "week-one": "keep",
    }
    assert len(dispatch_world.storage.message_views.timeline("P-1")) == 5


def test_enrolling_again_after_a_cancel_restores_the_pending_messages(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient())
        dispatch_world.service.cancel("P-1", "called off")
        again = dispatch_world.service.enroll_one(patient())
    assert {c.action for c in again.changes} == {"restore"}
    timeline = dispatch_world.storage.message_views.timeline("P-1")
    assert len(timeline) == 5
    assert {m.status for m in timeline} == {"pending"}


def test_an_outcome_from_a_worker_that_lost_its_claim_is_ignored(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    due = local("2026-03-08 10:00")
    (claimed,) = dispatch_world.storage.outbox.claim_due(due, "slow", 1)
    assert dispatch_world.storage.outbox.reclaim(
        claimed.id, "fast", claimed.claimed_at, due + timedelta(minutes=3)
    )
    dispatch_world.storage.outbox.record_skipped(claimed.id, due, "too late", worker="slow")
    (row,) = [m for m in dispatch_world.storage.message_views.timeline("P-1") if m.id == claimed.id]
    assert row.status == "sending"


def test_rescheduling_while_a_message_is_being_sent_retimes_its_window(
    dispatch_world: DispatchWorld,
) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        dispatch_world.service.enroll_one(patient(attributes={}))
    due = local("2026-03-08 10:00")
    with freeze_time(due):
        assert len(dispatch_world.storage.outbox.claim_due(due, "w1", 1)) == 1
        outcome = dispatch_world.service.reschedule("P-1", datetime(2026, 3, 9).date())
    changes = {c.step_id: c for c in outcome.changes}
    assert changes["prepare"].action == "move"
    assert changes["prepare"].new_due_at == local("2026-03-07 10:00")
    (row,) = [
        m for m in dispatch_world.storage.message_views.timeline("P-1") if m.step_id == "prepare"
    ]
    assert row.status == "sending"  # the claim stands
    assert row.send_before == local("2026-03-07 22:00")  # a retry would now be too late
