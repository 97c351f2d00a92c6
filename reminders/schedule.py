"""The pure core: plan + enrollment -> the messages to send, each with its UTC instant.

No database, clock or network here. Times are planned on the patient's local wall clock
(a 9:00 step stays 9:00 across DST changes) and stored as UTC instants.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from reminders.plans.model import (
    ContactChannel,
    Phase,
    Plan,
    QuietHours,
    Step,
    StepChannel,
    contact_channel,
)

_MAX_GAP_MINUTES = 3 * 60


@dataclass(frozen=True)
class ScheduleInput:
    """What scheduling needs to know about one patient's procedure."""

    procedure_date: date
    timezone: str
    procedure_time: time | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    preferred_channel: ContactChannel = "sms"
    language: str | None = None
    has_phone: bool = True
    has_email: bool = False
    sms_allowed: bool = True
    sms_opted_out_on: date | None = None  # when the patient opted out, if that is why


@dataclass(frozen=True)
class PlannedMessage:
    """One message of a patient's timeline."""

    step_id: str
    phase: Phase
    channel: ContactChannel
    template: str
    language: str
    due_at: datetime  # UTC
    send_before: datetime  # UTC: after this instant the message is skipped as too late
    local_due: datetime  # the same instant on the patient's wall clock
    notes: tuple[str, ...] = ()
    skip_reason: str | None = None


@functools.lru_cache(maxsize=4096)
def resolve_local(day: date, wall: time, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """The instant of a wall-clock time; a time in a DST gap moves to the first valid minute.

    A time that occurs twice (clocks going back) takes its first occurrence. Remembered: a
    wave's messages share a few zones and days (the caps' day start, the next morning).
    """
    candidate = datetime.combine(day, wall, tzinfo=zone)
    for minute in range(_MAX_GAP_MINUTES + 1):
        moved = candidate + timedelta(minutes=minute) if minute else candidate
        naive = moved.replace(tzinfo=None)
        round_trip = moved.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip == naive:
            note = None
            if minute:
                note = f"{wall:%H:%M} does not exist on {day} (DST change); moved to {moved:%H:%M}"
            return moved.replace(fold=0), note
    raise ValueError(f"no valid local time near {day} {wall} in {zone.key}")


def leave_quiet_hours(moment: datetime, quiet: QuietHours) -> tuple[datetime, str | None]:
    """Move a local instant that falls in quiet hours to the end of that quiet period.

    When the end occurs twice (clocks going back) and its first occurrence is already past,
    the second one is taken, so that the result is never earlier than `moment`.
    """
    zone = moment.tzinfo
    assert isinstance(zone, ZoneInfo)
    wall = moment.timetz().replace(tzinfo=None)
    if not quiet.contains(wall):
        return moment, None
    day = moment.date() if wall < quiet.end else moment.date() + timedelta(days=1)
    moved, _ = resolve_local(day, quiet.end, zone)
    if moved.astimezone(UTC) <= moment.astimezone(UTC):
        moved = moved.replace(fold=1)
    return moved, f"{wall:%H:%M} is in quiet hours; moved to {moved:%Y-%m-%d %H:%M}"


def procedure_start(plan: Plan, enrollment: ScheduleInput) -> datetime:
    """When the procedure starts, as a local instant (assumed time when none was given)."""
    zone = ZoneInfo(enrollment.timezone)
    wall = enrollment.procedure_time or plan.defaults.assumed_procedure_time
    return resolve_local(enrollment.procedure_date, wall, zone)[0]


@dataclass(frozen=True)
class _Route:
    """How one patient gets the steps that ask for one channel: the channel, why it is not the
    one asked for (if it is not), and why the patient cannot get it at all (if they cannot)."""

    channel: ContactChannel
    note: str | None
    unreachable: str | None


def _route(wanted: StepChannel, enrollment: ScheduleInput) -> _Route:
    """The route of a step sent on `wanted` (a step's channel after the plan's default)."""
    channel, note = _channel_for(wanted, enrollment)
    return _Route(channel, note, _unreachable(wanted, enrollment, channel))


def _channel_for(
    wanted: StepChannel, enrollment: ScheduleInput
) -> tuple[ContactChannel, str | None]:
    if wanted is not StepChannel.PREFERRED:
        return contact_channel(wanted.value), None
    channel = enrollment.preferred_channel
    sms_possible = enrollment.has_phone and enrollment.sms_allowed
    if channel == "sms" and not sms_possible and enrollment.has_email:
        return "email", "no SMS for this patient; sent by email instead"
    if channel == "email" and not enrollment.has_email and sms_possible:
        return "sms", "no email address; sent by SMS instead"
    return channel, None


def choose_channel(
    plan: Plan, step: Step, enrollment: ScheduleInput
) -> tuple[ContactChannel, str | None]:
    """The channel a step goes out on for this patient, and why it differs if it does."""
    return _channel_for(plan.channel_of(step), enrollment)


def choose_language(plan: Plan, enrollment: ScheduleInput) -> str:
    """The patient's language when the plan has it (es-MX: its es), else the plan's default."""
    return plan.language_for(enrollment.language) or plan.defaults.language


_Timing = tuple[datetime, datetime, tuple[str, ...]]
"""A step's local due time, the same instant in UTC, and the notes on how it was moved."""


@functools.lru_cache(maxsize=8192)
def day_step_time(
    day: date, wall: time, zone: ZoneInfo, quiet_start: time, quiet_end: time
) -> _Timing:
    """When a day-offset step is due: a wall-clock time on a day, moved out of any DST gap and
    out of quiet hours, in local time and UTC, with the notes saying why it moved.

    Remembered: patients share a few zones, days and times. Keyed by values only (quiet hours
    as two times, cheap to hash), so an edited plan gets entries of its own."""
    local, gap_note = resolve_local(day, wall, zone)
    quiet = QuietHours(start=quiet_start, end=quiet_end)
    return _out_of_quiet_hours(local, quiet, (gap_note,) if gap_note else ())


def _out_of_quiet_hours(local: datetime, quiet: QuietHours, notes: tuple[str, ...]) -> _Timing:
    local, quiet_note = leave_quiet_hours(local, quiet)
    if quiet_note:
        notes += (quiet_note,)
    return local, local.astimezone(UTC), notes


@dataclass(frozen=True)
class _StepRule:
    """A step as scheduling reads it, after the plan's defaults."""

    step: Step
    conditional: bool  # has a `when`
    wanted: StepChannel
    max_late: timedelta
    pre_procedure: bool
    hours_after: float | None  # hours after the procedure starts, or None for a day offset
    days: timedelta  # from the procedure date, for a day offset
    wall: time  # the local time, for a day offset


def _rule(plan: Plan, step: Step) -> _StepRule:
    offset = step.offset
    return _StepRule(
        step=step,
        conditional=bool(step.when),
        wanted=plan.channel_of(step),
        max_late=plan.max_late_of(step),
        pre_procedure=step.phase is Phase.PRE_PROCEDURE,
        hours_after=offset.hours_after_procedure,
        days=timedelta(days=offset.day_offset or 0),
        wall=offset.at or plan.defaults.send_time,
    )


def _timing(
    rule: _StepRule, quiet: QuietHours, zone: ZoneInfo, procedure_date: date, start_utc: datetime
) -> _Timing:
    """When a step is due for a procedure on `procedure_date` starting at `start_utc`."""
    if rule.hours_after is not None:
        local = (start_utc + timedelta(hours=rule.hours_after)).astimezone(zone)
        return _out_of_quiet_hours(local, quiet, ())
    return day_step_time(procedure_date + rule.days, rule.wall, zone, quiet.start, quiet.end)


def _message(
    rule: _StepRule, timing: _Timing, route: _Route, language: str, start_utc: datetime
) -> PlannedMessage:
    """One step's message from its timing and the patient's route for its channel."""
    local, due_at, notes = timing
    if route.note:
        notes += (route.note,)
    send_before = due_at + rule.max_late
    skip_reason = None
    if rule.pre_procedure:
        send_before = min(send_before, start_utc)
        if due_at >= start_utc:
            skip_reason = "pre-procedure instruction would fall after the procedure starts"
    step = rule.step
    return PlannedMessage(
        step_id=step.id,
        phase=step.phase,
        channel=route.channel,
        template=step.template,
        language=language,
        due_at=due_at,
        send_before=send_before,
        local_due=local,
        notes=notes,
        skip_reason=skip_reason or route.unreachable,
    )


def plan_step(
    plan: Plan, step: Step, enrollment: ScheduleInput, start: datetime | None = None
) -> PlannedMessage:
    """Compute one step's message for one patient (`start`: the procedure's start, if known)."""
    zone = ZoneInfo(enrollment.timezone)
    start_utc = (start or procedure_start(plan, enrollment)).astimezone(UTC)
    rule = _rule(plan, step)
    return _message(
        rule,
        _timing(rule, plan.defaults.quiet_hours, zone, enrollment.procedure_date, start_utc),
        _route(rule.wanted, enrollment),
        choose_language(plan, enrollment),
        start_utc,
    )


class PlanSchedule:
    """A plan read once for scheduling many patients (`compute` for each): the steps after
    the plan's defaults are worked out once, not again for every step of every patient."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._rules = [_rule(plan, step) for step in plan.steps]

    def compute(self, enrollment: ScheduleInput) -> list[PlannedMessage]:
        """Every message of the plan that applies to this patient, in the order they are due.

        What is the same for every step (zone, start, language, the route for each channel)
        is worked out once per patient; each step then goes through the same rules as
        `plan_step`.
        """
        plan = self.plan
        quiet = plan.defaults.quiet_hours
        zone = ZoneInfo(enrollment.timezone)
        start_utc = procedure_start(plan, enrollment).astimezone(UTC)
        language = choose_language(plan, enrollment)
        attributes = dict(enrollment.attributes)
        routes: dict[StepChannel, _Route] = {}
        messages = []
        for rule in self._rules:
            if rule.conditional and not rule.step.applies_to(attributes):
                continue
            route = routes.get(rule.wanted)
            if route is None:
                route = routes[rule.wanted] = _route(rule.wanted, enrollment)
            timing = _timing(rule, quiet, zone, enrollment.procedure_date, start_utc)
            messages.append(_message(rule, timing, route, language, start_utc))
        return sorted(messages, key=lambda message: message.due_at)


def _unreachable(
    wanted: StepChannel, enrollment: ScheduleInput, channel: ContactChannel
) -> str | None:
    """Why this patient cannot get a step sent on `wanted` by `channel`, if they cannot."""
    fallback = (
        "and no email address"
        if wanted is StepChannel.PREFERRED
        else "and this step goes by SMS only"
    )
    if channel == "sms":
        if not enrollment.has_phone:
            return f"no phone number {fallback}"
        if not enrollment.sms_allowed and enrollment.sms_opted_out_on is not None:
            return f"opted out of SMS on {enrollment.sms_opted_out_on:%Y-%m-%d} {fallback}"
        if not enrollment.sms_allowed:
            return f"no SMS consent {fallback}"
    if channel == "email" and not enrollment.has_email:
        if wanted is StepChannel.PREFERRED:
            return "no email address and no SMS"
        return "no email address, and this step goes by email only"
    return None


def compute_schedule(plan: Plan, enrollment: ScheduleInput) -> list[PlannedMessage]:
    """Every message of the plan that applies to this patient, in the order they are due
    (for many patients on one plan, `PlanSchedule(plan).compute` reads the plan once)."""
    return PlanSchedule(plan).compute(enrollment)


class SendAction(StrEnum):
    """What the dispatcher does with a due message right now."""

    SEND = "send"
    DEFER = "defer"  # try again at the decision's `at`
    SKIP = "skip"  # too late (or quiet hours outlast its window): never sent


@dataclass(frozen=True)
class SendDecision:
    """What the dispatcher should do with a due message right now, and why."""

    action: SendAction
    at: datetime | None = None  # for DEFER: the UTC instant to try again
    reason: str | None = None


PAST_WINDOW = "its send window ended before it was scheduled"


def skip_past_windows(messages: list[PlannedMessage], now: datetime) -> list[PlannedMessage]:
    """Messages whose send window has already ended at `now` (enrolled late, or a procedure
    moved into the past) are skipped at once, with the reason, instead of waiting for a pass."""
    reason = f"{PAST_WINDOW} (on {now:%Y-%m-%d})"
    return [
        m if m.skip_reason or m.send_before > now else replace(m, skip_reason=reason)
        for m in messages
    ]


def waits_until(at: datetime, zone: str) -> str:
    """ "waits until 2026-03-08 08:00 EDT": when a held message will be tried, in local time."""
    return f"waits until {at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"


def decide_send(
    now: datetime,
    due_at: datetime,
    send_before: datetime,
    timezone: str,
    quiet: QuietHours,
) -> SendDecision:
    """Decide, at `now` (UTC), whether a due message goes now, waits, or is too late.

    A late message (the service was down) still goes if it is within its window; quiet hours
    hold in the patient's local time; a message never goes at or after `send_before`.
    """
    if now < due_at:
        return SendDecision(SendAction.DEFER, at=due_at, reason="not due yet")
    if now >= send_before:
        late = now - due_at
        return SendDecision(SendAction.SKIP, reason=f"too late: {_humane(late)} after its due time")
    local = now.astimezone(ZoneInfo(timezone))
    moved, _ = leave_quiet_hours(local, quiet)
    if moved == local:
        return SendDecision(SendAction.SEND)
    resume = moved.astimezone(UTC)
    if resume >= send_before:
        return SendDecision(
            SendAction.SKIP, reason="quiet hours last past the message's send window"
        )
    return SendDecision(
        SendAction.DEFER, at=resume, reason="quiet hours in the patient's time zone"
    )


def _humane(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
