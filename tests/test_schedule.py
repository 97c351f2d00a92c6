"""The schedule keeps wall-clock times across time zones and DST, honours quiet hours, and
decide_send sends, defers or skips a due message for a stated reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.plans.model import Phase, Plan, QuietHours
from reminders.schedule import (
    ScheduleInput,
    compute_schedule,
    decide_send,
    procedure_start,
    resolve_local,
    skip_past_windows,
)

ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]
NEW_YORK = ZoneInfo("America/New_York")
QUIET = QuietHours(start=time(21, 0), end=time(8, 0))
NO_QUIET_HOURS = {"start": "00:00", "end": "00:00"}
# Deterministic and quick: the same examples on every run.
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None)


def make_plan(steps: list[dict[str, Any]], **defaults: Any) -> Plan:
    return Plan.model_validate(
        {
            "id": "demo",
            "name": "Demo",
            "version": 1,
            "procedure": "Demo",
            "defaults": defaults,
            "steps": steps,
        }
    )


def step(step_id: str, phase: str, **offset: Any) -> dict[str, Any]:
    return {"id": step_id, "phase": phase, "offset": offset, "template": step_id}


def enroll(day: date, zone: str = "America/New_York", **extra: Any) -> ScheduleInput:
    return ScheduleInput(procedure_date=day, timezone=zone, **extra)


def only(plan: Plan, enrollment: ScheduleInput) -> Any:
    [message] = compute_schedule(plan, enrollment)
    return message


def wall(message: Any) -> tuple[date, time]:
    return message.local_due.date(), message.local_due.time()


# ------------------------------------------------------------------ strategies ---

WALL_TIMES = [
    time(0, 15),
    time(1, 30),
    time(2, 30),
    time(6, 0),
    time(7, 59),
    time(8, 0),
    time(9, 0),
    time(12, 30),
    time(17, 45),
    time(20, 59),
    time(21, 0),
    time(23, 30),
]


def phase_for(days: int) -> str:
    if days < 0:
        return "pre-procedure"
    return "day-of" if days == 0 else "recovery"


@st.composite
def day_steps(draw: st.DrawFn) -> dict[str, Any]:
    # Days near the procedure are where quiet hours and the start time interact.
    days = draw(st.one_of(st.integers(-2, 2), st.integers(min_value=-30, max_value=200)))
    at = draw(st.sampled_from(WALL_TIMES))
    return {
        "phase": phase_for(days),
        "offset": {"days": days, "at": f"{at:%H:%M}"},
        "when": draw(st.sampled_from([{}, {"flag": True}, {"flag": False}])),
    }


@st.composite
def hour_steps(draw: st.DrawFn) -> dict[str, Any]:
    hours = draw(st.floats(min_value=0, max_value=24, allow_nan=False).map(lambda h: round(h, 2)))
    return {"phase": "day-of", "offset": {"hours_after_procedure": hours}, "when": {}}


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    drawn = draw(st.lists(st.one_of(day_steps(), hour_steps()), min_size=1, max_size=8))
    steps = [{"id": f"s{i}", "template": f"s{i}", **s} for i, s in enumerate(drawn)]
    return make_plan(steps)


@st.composite
def enrollments(draw: st.DrawFn) -> ScheduleInput:
    return ScheduleInput(
        procedure_date=draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))),
        timezone=draw(st.sampled_from(ZONES)),
        procedure_time=draw(st.one_of(st.none(), st.sampled_from(WALL_TIMES))),
        attributes={"flag": draw(st.booleans())},
    )


# ------------------------------------------------------------------ properties ---


@PROPERTY
@given(
    day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    zone=st.sampled_from(ZONES),
    days=st.integers(min_value=-30, max_value=200),
)
def test_a_nine_oclock_step_lands_at_nine_local_on_its_date(
    day: date, zone: str, days: int
) -> None:
    plan = make_plan([step("s", phase_for(days), days=days, at="09:00")])
    message = only(plan, enroll(day, zone))
    assert wall(message) == (day + timedelta(days=days), time(9, 0))


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_a_day_step_lands_at_its_time_unless_quiet_hours_or_a_dst_gap_move_it(
    plan: Plan, enrollment: ScheduleInput
) -> None:
    for message in compute_schedule(plan, enrollment):
        offset = plan.step(message.step_id).offset
        if offset.day_offset is None or message.notes:
            continue
        assert offset.at is not None
        assert not QUIET.contains(offset.at)
        assert wall(message) == (
            enrollment.procedure_date + timedelta(offset.day_offset),
            offset.at,
        )


@PROPERTY
@given(
    plan=plans(),
    enrollment=enrollments(),
    hours=st.integers(min_value=-24 * 60, max_value=24 * 400),
)
def test_planning_skips_exactly_the_messages_whose_window_has_ended(
    plan: Plan, enrollment: ScheduleInput, hours: int
) -> None:
    start = procedure_start(plan, enrollment).astimezone(UTC)
    now = start + timedelta(hours=hours)
    planned = compute_schedule(plan, enrollment)

    marked = skip_past_windows(planned, now)

    for before, after in zip(planned, marked, strict=True):
        if before.skip_reason is None and before.send_before <= now:
            assert after.skip_reason is not None
            assert after.skip_reason.startswith("its send window ended before it was scheduled")
            assert after.due_at == before.due_at
            decision = decide_send(
                now, before.due_at, before.send_before, enrollment.timezone, QUIET
            )
            assert decision.action == "skip"  # the dispatcher would have skipped it too
        else:
            assert after == before


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_nothing_lands_in_quiet_hours(plan: Plan, enrollment: ScheduleInput) -> None:
    for message in compute_schedule(plan, enrollment):
        assert not QUIET.contains(message.local_due.time())


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_every_instant_is_utc_and_matches_the_local_time(
    plan: Plan, enrollment: ScheduleInput
) -> None:
    for message in compute_schedule(plan, enrollment):
        assert message.due_at.tzinfo is UTC
        assert message.send_before.tzinfo is UTC
        assert message.local_due.tzinfo == ZoneInfo(enrollment.timezone)
        assert message.local_due == message.due_at
        assert message.send_before > message.due_at or message.skip_reason


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_pre_procedure_messages_are_due_before_the_start_or_say_why_not(
    plan: Plan, enrollment: ScheduleInput
) -> None:
    start = procedure_start(plan, enrollment)
    for message in compute_schedule(plan, enrollment):
        if message.phase is Phase.PRE_PROCEDURE:
            assert message.send_before <= start
            assert message.due_at < start or message.skip_reason


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_schedule_is_sorted_by_due_time(plan: Plan, enrollment: ScheduleInput) -> None:
    due = [message.due_at for message in compute_schedule(plan, enrollment)]
    assert due == sorted(due)


@PROPERTY
@given(plan=plans(), enrollment=enrollments())
def test_one_message_per_step_whose_condition_holds(plan: Plan, enrollment: ScheduleInput) -> None:
    ids = [message.step_id for message in compute_schedule(plan, enrollment)]
    expected = [s.id for s in plan.steps if s.applies_to(dict(enrollment.attributes))]
    assert sorted(ids) == sorted(expected)


# -------------------------------------------------------------------- DST edges ---


def test_time_in_the_spring_forward_gap_moves_to_the_first_valid_minute() -> None:
    moment, note = resolve_local(date(2026, 3, 8), time(2, 30), NEW_YORK)
    assert (moment.time(), moment.utcoffset()) == (time(3, 0), timedelta(hours=-4))
    assert note == "02:30 does not exist on 2026-03-08 (DST change); moved to 03:00"


def test_step_in_the_spring_forward_gap_is_planned_at_three_with_a_note() -> None:
    plan = make_plan([step("s", "day-of", days=0, at="02:30")], quiet_hours=NO_QUIET_HOURS)
    message = only(plan, enroll(date(2026, 3, 8)))
    assert message.due_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert any("does not exist" in note for note in message.notes)


def test_time_that_occurs_twice_takes_the_first_occurrence() -> None:
    plan = make_plan([step("s", "day-of", days=0, at="01:30")], quiet_hours=NO_QUIET_HOURS)
    message = only(plan, enroll(date(2026, 11, 1)))
    assert message.due_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not EST
    assert message.notes == ()


H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "procedure", "offsets"),
    [
        ("America/New_York", date(2026, 3, 6), (-5 * H, -4 * H)),  # clocks spring 8 March
        ("America/New_York", date(2026, 10, 30), (-4 * H, -5 * H)),  # fall back 1 November
        ("Europe/London", date(2026, 3, 27), (0 * H, 1 * H)),  # spring 29 March
        ("Australia/Lord_Howe", date(2026, 4, 3), (11 * H, 10.5 * H)),  # half an hour back
        ("Pacific/Chatham", date(2026, 4, 3), (13.75 * H, 12.75 * H)),  # 5 April
        ("America/Santiago", date(2026, 4, 2), (-3 * H, -4 * H)),  # 5 April
    ],
)
def test_nine_oclock_stays_nine_on_either_side_of_a_dst_change(
    zone: str, procedure: date, offsets: tuple[timedelta, timedelta]
) -> None:
    plan = make_plan(
        [step("before", "recovery", days=1, at="09:00"), step("after", "recovery", days=3)]
    )
    before, after = compute_schedule(plan, enroll(procedure, zone))
    assert wall(before)[1] == wall(after)[1] == time(9, 0)
    assert (before.local_due.utcoffset(), after.local_due.utcoffset()) == offsets


def test_hours_after_procedure_count_elapsed_time_across_a_dst_change() -> None:
    plan = make_plan([step("s", "day-of", hours_after_procedure=6)], quiet_hours=NO_QUIET_HOURS)
    message = only(plan, enroll(date(2026, 3, 7), procedure_time=time(22, 0)))
    assert message.due_at == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    assert wall(message) == (date(2026, 3, 8), time(5, 0))  # six hours later, clocks sprang


# ----------------------------------------------------------- quiet hours, midnight ---


def test_quiet_hours_move_an_early_step_to_their_end_the_same_day() -> None:
    message = only(make_plan([step("s", "recovery", days=2, at="07:00")]), enroll(date(2026, 6, 1)))
    assert wall(message) == (date(2026, 6, 3), time(8, 0))
    assert "07:00 is in quiet hours; moved to 2026-06-03 08:00" in message.notes


def test_quiet_hours_move_a_late_step_to_eight_the_next_day() -> None:
    message = only(make_plan([step("s", "recovery", days=2, at="22:00")]), enroll(date(2026, 6, 1)))
    assert wall(message) == (date(2026, 6, 4), time(8, 0))


def test_hours_after_procedure_can_cross_midnight() -> None:
    plan = make_plan([step("s", "day-of", hours_after_procedure=6)], quiet_hours=NO_QUIET_HOURS)
    message = only(plan, enroll(date(2026, 6, 1), procedure_time=time(20, 0)))
    assert wall(message) == (date(2026, 6, 2), time(2, 0))


def test_hours_after_procedure_past_midnight_waits_for_quiet_hours_to_end() -> None:
    plan = make_plan([step("s", "day-of", hours_after_procedure=6)])
    message = only(plan, enroll(date(2026, 6, 1), procedure_time=time(20, 0)))
    assert wall(message) == (date(2026, 6, 2), time(8, 0))


def test_hours_after_procedure_use_the_assumed_time_when_none_is_given() -> None:
    plan = make_plan([step("s", "day-of", hours_after_procedure=4)])
    message = only(plan, enroll(date(2026, 6, 1)))
    assert wall(message) == (date(2026, 6, 1), time(12, 0))


def test_pre_procedure_step_pushed_past_the_start_is_skipped_with_a_reason() -> None:
    plan = make_plan([step("s", "pre-procedure", days=-1, at="22:00")])
    message = only(plan, enroll(date(2026, 6, 2), procedure_time=time(7, 30)))
    assert message.skip_reason == "pre-procedure instruction would fall after the procedure starts"


def test_condition_filters_steps_for_the_patient() -> None:
    plan = make_plan(
        [
            {**step("thinners", "pre-procedure", days=-7), "when": {"on_thinners": True}},
            step("welcome", "pre-procedure", days=-14),
        ]
    )
    on = compute_schedule(plan, enroll(date(2026, 6, 1), attributes={"on_thinners": "yes"}))
    off = compute_schedule(plan, enroll(date(2026, 6, 1), attributes={"on_thinners": "no"}))
    assert ([m.step_id for m in on], [m.step_id for m in off]) == (
        ["welcome", "thinners"],
        ["welcome"],
    )


def test_schedule_does_not_depend_on_todays_date() -> None:
    plan = make_plan([step("a", "pre-procedure", days=-3), step("b", "recovery", weeks=2)])
    enrollment = enroll(date(2026, 6, 1), "Pacific/Chatham")
    with freeze_time("2020-01-01 12:00:00"):
        early = compute_schedule(plan, enrollment)
    with freeze_time("2031-07-15 03:00:00"):
        late = compute_schedule(plan, enrollment)
    assert early == late


# ------------------------------------------------------------------ decide_send ---

DUE = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # 09:00 in New York
WINDOW_END = DUE + timedelta(hours=12)  # 21:00 in New York


def decide(now: datetime, due: datetime = DUE, send_before: datetime = WINDOW_END) -> Any:
    return decide_send(now, due, send_before, "America/New_York", QUIET)


def test_on_time_message_is_sent() -> None:
    assert decide(DUE).action == "send"


def test_message_not_yet_due_waits_for_its_time() -> None:
    decision = decide(DUE - timedelta(minutes=5))
    assert (decision.action, decision.at) == ("defer", DUE)


def test_late_message_within_its_window_is_sent() -> None:
    assert decide(DUE + timedelta(hours=5)).action == "send"


def test_message_past_its_window_is_skipped_with_how_late_it_is() -> None:
    decision = decide(WINDOW_END + timedelta(hours=1))
    assert (decision.action, decision.reason) == ("skip", "too late: 13 h after its due time")


def test_message_in_quiet_hours_waits_for_quiet_hours_to_end() -> None:
    late_evening = datetime(2026, 6, 2, 1, 30, tzinfo=UTC)  # 21:30 in New York
    decision = decide(late_evening, send_before=DUE + timedelta(days=2))
    assert decision.action == "defer"
    assert decision.at == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # 08:00 in New York
    assert decision.reason == "quiet hours in the patient's time zone"


def test_message_whose_window_closes_during_quiet_hours_is_skipped() -> None:
    late_evening = datetime(2026, 6, 2, 1, 30, tzinfo=UTC)  # 21:30 in New York
    decision = decide(late_evening, send_before=DUE + timedelta(hours=14))
    assert (decision.action, decision.reason) == (
        "skip",
        "quiet hours last past the message's send window",
    )


def test_pre_procedure_message_is_never_sent_after_the_procedure_starts() -> None:
    plan = make_plan([{**step("s", "pre-procedure", days=-1, at="18:00"), "max_late": "2d"}])
    enrollment = enroll(date(2026, 6, 2), procedure_time=time(9, 0))
    message = only(plan, enrollment)
    start = procedure_start(plan, enrollment).astimezone(UTC)
    assert message.send_before == start
    decision = decide_send(start, message.due_at, message.send_before, enrollment.timezone, QUIET)
    assert decision.action == "skip"
