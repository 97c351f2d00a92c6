"""Scheduling many patients reuses work (a plan read once, remembered wall-clock times) without
changing any patient's schedule: what is remembered is keyed by every value it depends on, and
no patient's messages are shared with another's."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.plans.model import Plan
from reminders.schedule import (
    PlannedMessage,
    PlanSchedule,
    ScheduleInput,
    compute_schedule,
    day_step_time,
    plan_step,
    resolve_local,
)

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
ZONES = [
    "UTC",
    "America/New_York",
    "America/Santiago",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]
# Around the DST changes of the zones above, where gaps, folds and quiet hours meet.
DAYS = st.one_of(
    st.sampled_from(
        [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 6), date(2026, 11, 1)]
    ).flatmap(lambda day: st.integers(-3, 3).map(lambda delta: day + timedelta(days=delta))),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)),
)
WALL = st.sampled_from(
    [time(0, 0), time(1, 30), time(2, 30), time(7, 59), time(8, 0), time(9, 0), time(21, 0)]
)


def _hhmm(moment: time) -> str:
    return f"{moment:%H:%M}"


@st.composite
def steps(draw: st.DrawFn, index: int) -> dict[str, Any]:
    if draw(st.booleans()):
        offset: dict[str, Any] = {"hours_after_procedure": draw(st.sampled_from([0, 1.5, 4, 23]))}
        phase = "day-of"
    else:
        days = draw(st.integers(-20, 60))
        offset = {"days": days}
        if draw(st.booleans()):
            offset["at"] = _hhmm(draw(WALL))
        phase = "pre-procedure" if days < 0 else ("day-of" if days == 0 else "recovery")
    step: dict[str, Any] = {
        "id": f"s{index}",
        "template": f"s{index}",
        "phase": phase,
        "offset": offset,
        "when": draw(st.sampled_from([{}, {"flag": True}, {"flag": [False]}])),
    }
    channel = draw(st.sampled_from([None, "sms", "email", "preferred"]))
    if channel:
        step["channel"] = channel
    if draw(st.booleans()):
        step["max_late"] = draw(st.sampled_from(["1h", "2d"]))
    return step


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(1, 6))
    return Plan.model_validate(
        {
            "id": "demo",
            "name": "Demo",
            "version": 1,
            "procedure": "Demo",
            "languages": ["en", "es"],
            "defaults": {
                "send_time": _hhmm(draw(WALL)),
                "assumed_procedure_time": _hhmm(draw(WALL)),
                "quiet_hours": {"start": _hhmm(draw(WALL)), "end": _hhmm(draw(WALL))},
            },
            "steps": [draw(steps(i)) for i in range(count)],
        }
    )


@st.composite
def enrollments(draw: st.DrawFn) -> ScheduleInput:
    sms_allowed = draw(st.booleans())
    return ScheduleInput(
        procedure_date=draw(DAYS),
        timezone=draw(st.sampled_from(ZONES)),
        procedure_time=draw(st.one_of(st.none(), WALL)),
        attributes={"flag": draw(st.booleans())},
        preferred_channel=draw(st.sampled_from(["sms", "email"])),
        language=draw(st.sampled_from([None, "en", "es", "fr"])),
        has_phone=draw(st.booleans()),
        has_email=draw(st.booleans()),
        sms_allowed=sms_allowed,
        sms_opted_out_on=None if sms_allowed else draw(st.one_of(st.none(), DAYS)),
    )


def fresh(plan: Plan, enrollment: ScheduleInput) -> list[PlannedMessage]:
    """The schedule worked out from nothing remembered, step by step."""
    day_step_time.cache_clear()
    resolve_local.cache_clear()
    attributes = dict(enrollment.attributes)
    messages = [plan_step(plan, s, enrollment) for s in plan.steps if s.applies_to(attributes)]
    return sorted(messages, key=lambda message: message.due_at)


@PROPERTY
@given(
    plan=plans(),
    others=st.lists(st.tuples(plans(), enrollments()), max_size=4),
    patients=st.lists(enrollments(), min_size=1, max_size=4),
)
def test_a_reused_plan_and_remembered_times_give_every_patient_a_fresh_schedule(
    plan: Plan, others: list[tuple[Plan, ScheduleInput]], patients: list[ScheduleInput]
) -> None:
    for other_plan, other in others:  # other plans and patients fill what is remembered
        compute_schedule(other_plan, other)
    schedule = PlanSchedule(plan)
    reused = [schedule.compute(patient) for patient in patients]
    alone = [compute_schedule(plan, patient) for patient in patients]

    assert reused == alone == [fresh(plan, patient) for patient in patients]


@PROPERTY
@given(plan=plans(), enrollment=enrollments(), quiet=st.tuples(WALL, WALL), send_time=WALL)
def test_an_edited_plan_is_never_given_the_times_remembered_for_the_old_one(
    plan: Plan, enrollment: ScheduleInput, quiet: tuple[time, time], send_time: time
) -> None:
    defaults = plan.defaults.model_copy(
        update={
            "quiet_hours": plan.defaults.quiet_hours.model_copy(
                update={"start": quiet[0], "end": quiet[1]}
            ),
            "send_time": send_time,
        }
    )
    edited = plan.model_copy(update={"defaults": defaults})
    compute_schedule(plan, enrollment)  # the old plan's times are remembered

    assert compute_schedule(edited, enrollment) == fresh(edited, enrollment)


def test_patients_never_share_a_schedule_list() -> None:
    plan = Plan.model_validate(
        {
            "id": "demo",
            "name": "Demo",
            "version": 1,
            "procedure": "Demo",
            "steps": [
                {"id": "a", "template": "a", "phase": "pre-procedure", "offset": {"days": -2}},
                {"id": "b", "template": "b", "phase": "recovery", "offset": {"days": 3}},
            ],
        }
    )
    schedule = PlanSchedule(plan)
    patient = ScheduleInput(date(2026, 6, 1), "Europe/London")
    first = schedule.compute(patient)
    first.pop()
    first[0] = first[0].__class__(**{**first[0].__dict__, "step_id": "changed"})

    again = schedule.compute(patient)

    assert [m.step_id for m in again] == ["a", "b"]
    assert again == compute_schedule(plan, patient)
