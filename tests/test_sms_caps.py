"""SMS caps on their own (reminders.dispatch.caps): the demo plan's 3 a day and 10 a week,
quiet hours ending at 08:00 in the patient's zone. Pure: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from plan_fixtures import write_demo_plan

from reminders.catalog import PlanCatalog
from reminders.dispatch.caps import SmsHistory, SmsLedger, sms_cap_hold, sms_history
from reminders.plans.model import Phase, Plan
from reminders.store.message_records import ClaimedMessage
from reminders.store.schema import EnrollmentStatus

# 21:30 in New York on Saturday 7 March 2026; the clocks go forward at 02:00 that night.
NOW = datetime(2026, 3, 8, 2, 30, tzinfo=UTC)
ZONE = "America/New_York"


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    plans, templates = write_demo_plan(tmp_path_factory.mktemp("caps"))
    return PlanCatalog(plans, templates).get("demo").plan


def claimed(phase: Phase, window: timedelta) -> ClaimedMessage:
    return ClaimedMessage(
        id=1, enrollment_id=1, patient_id=7, plan_id="demo", plan_version=1, step_id="s",
        phase=phase, channel="sms", template="s", language="en", due_at=NOW,
        send_before=NOW + window, attempts=1, claimed_at=NOW, first_name="Maria",
        phone="+12025550101", email=None, timezone=ZONE, attributes={}, sms_consent=True,
        sms_opted_out_at=None, phone_invalid_at=None, procedure_date=date(2026, 3, 10),
        procedure_time=None, enrollment_status=EnrollmentStatus.ACTIVE,
    )  # fmt: skip


def test_history_counts_the_patients_day_in_their_zone_and_the_last_seven_days() -> None:
    sent = [
        NOW - timedelta(days=8),  # outside the week
        NOW - timedelta(days=2),
        datetime(2026, 3, 7, 4, 59, tzinfo=UTC),  # 23:59 on Friday in New York
        datetime(2026, 3, 7, 5, 0, tzinfo=UTC),  # midnight starting Saturday there
    ]
    ledger = SmsLedger({7: sent})

    assert sms_history(ledger, claimed(Phase.RECOVERY, timedelta(hours=1)), NOW) == SmsHistory(
        total=4, today=1, this_week=3
    )


def test_within_the_caps_nothing_is_held(plan: Plan) -> None:
    message = claimed(Phase.RECOVERY, timedelta(hours=1))
    assert sms_cap_hold(message, plan, NOW, SmsHistory(total=9, today=2, this_week=9)) is None


def test_over_the_daily_cap_it_waits_for_the_next_local_morning_with_a_wider_window(
    plan: Plan,
) -> None:
    message = claimed(Phase.RECOVERY, timedelta(hours=1))

    hold = sms_cap_hold(message, plan, NOW, SmsHistory(total=3, today=3, this_week=3))

    assert hold is not None and not hold.skip
    assert hold.resume == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT, after the change
    assert hold.send_before == hold.resume + timedelta(hours=1)
    assert hold.reason.startswith("daily SMS cap reached (3/day, 10/week); ")


def test_a_window_that_outlasts_the_wait_is_left_as_it_is(plan: Plan) -> None:
    message = claimed(Phase.RECOVERY, timedelta(days=2))

    hold = sms_cap_hold(message, plan, NOW, SmsHistory(total=10, today=1, this_week=10))

    assert hold is not None and hold.send_before is None
    assert hold.reason.startswith("weekly SMS cap reached")


def test_a_pre_procedure_instruction_held_past_its_window_is_skipped(plan: Plan) -> None:
    message = claimed(Phase.PRE_PROCEDURE, timedelta(hours=1))

    hold = sms_cap_hold(message, plan, NOW, SmsHistory(total=3, today=3, this_week=3))

    assert hold is not None and hold.skip
    assert hold.reason == "daily SMS cap reached until after the procedure starts"
