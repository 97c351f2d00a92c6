"""A realistic day for the dispatch benchmark: a 9:00 local wave in several time zones.

Patients are spread over four US zones; each has one SMS due at 9:00 on their own wall clock,
so the day has four waves an hour apart (each wave due at one instant), and most patients
were texted earlier, so the dispatcher reads real SMS history and checks the plan's caps
(MILD: 1 a day, 3 in 7 days) on every message. By patient index, of every 20:

- 1 has never been texted (their text carries the opt-out line);
- 1 was texted at 08:30 today: the daily cap defers the 9:00 text to tomorrow;
- 1 was texted on each of the last three days: the weekly cap defers it too;
- 17 were texted 2 and (every other one) 5 days ago: sent.

The dispatcher runs with a clock moved to each wave's instant in turn (`SimulatedClock`), so
the waves are dispatched as they would be that day, back to back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from benchmarks import common
from reminders.catalog import PlanCatalog
from reminders.schedule import PlannedMessage, ScheduleInput, compute_schedule
from reminders.store.records import EnrollmentRequest, PatientRecord
from reminders.store.schema import Message
from reminders.store.storage import Storage

ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
WAVE = time(9, 0)


@dataclass(frozen=True)
class Day:
    """The waves' instants (UTC, in order) and what the dispatcher should do with the texts."""

    waves: list[datetime]
    sent: int
    deferred: int
    earlier: int  # texts sent before the day's waves (rows already "sent")


class SimulatedClock:
    """The real clock moved by an offset: `jump_to` makes it read that instant now."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def jump_to(self, instant: datetime) -> None:
        self.offset = instant - datetime.now(UTC)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def earlier_texts(index: int, day: date, zone: ZoneInfo) -> list[datetime]:
    """When patient `index` was texted before today's 9:00 (see the module docstring)."""

    def at(days_before: int, wall: time = WAVE) -> datetime:
        return datetime.combine(day - timedelta(days=days_before), wall, tzinfo=zone)

    kind = index % 20
    if kind == 0:
        return []
    if kind == 1:
        return [at(0, time(8, 30))]
    if kind == 2:
        return [at(1), at(2), at(3)]
    return [at(2), at(5)] if index % 2 else [at(2)]


def is_capped(index: int) -> bool:
    """Whether today's text of patient `index` waits for a cap."""
    return index % 20 in (1, 2)


def enroll_day(
    storage: Storage, catalog: PlanCatalog, plan_id: str, messages: int, day: date
) -> Day:
    """Enroll `messages` patients, each with a 9:00 text due on `day` and earlier texts sent."""
    plan = catalog.get(plan_id).plan
    template = _sms_step(catalog, plan_id)
    procedure = day - timedelta(days=3)
    waves = {zone: datetime.combine(day, WAVE, tzinfo=ZoneInfo(zone)) for zone in ZONES}
    for start in range(0, messages, 1000):
        requests = []
        for index in range(start, min(start + 1000, messages)):
            zone_name = ZONES[index % len(ZONES)]
            zone = ZoneInfo(zone_name)
            due = waves[zone_name]
            texts = [
                _message(template, f"earlier-{n}", at, zone)  # sent below, never rendered
                for n, at in enumerate(earlier_texts(index, day, zone))
            ]
            record = PatientRecord(
                external_id=f"P-{index:08d}",
                first_name="Maria",
                timezone=zone_name,
                language="en",
                preferred_channel="sms",
                phone=common.phone_number(index),
            )
            requests.append(
                EnrollmentRequest(
                    record,
                    plan.id,
                    plan.version,
                    procedure,
                    None,
                    [*texts, _message(template, template.step_id, due, zone)],
                )
            )
        storage.patients.enroll_many(requests, datetime.now(UTC))
    with storage.database.engine.begin() as connection:
        connection.execute(
            update(Message)
            .where(Message.step_id != template.step_id)
            .values(status="sent", sent_at=Message.due_at, attempts=1)
        )
    capped = sum(1 for index in range(messages) if is_capped(index))
    earlier = sum(len(earlier_texts(index, day, ZoneInfo("UTC"))) for index in range(messages))
    instants = sorted(wave.astimezone(UTC) for wave in waves.values())
    return Day(instants, messages - capped, capped, earlier)


def _sms_step(catalog: PlanCatalog, plan_id: str) -> PlannedMessage:
    """A post-procedure SMS step of the plan (so it renders), to be moved to other instants."""
    plan = catalog.get(plan_id).plan
    procedure = datetime.now(UTC).date() - timedelta(days=3)
    for message in compute_schedule(plan, ScheduleInput(procedure, ZONES[0])):
        if (
            message.channel == "sms"
            and message.skip_reason is None
            and message.phase.value != "pre-procedure"
        ):
            return message
    raise RuntimeError(f"plan {plan_id} has no post-procedure SMS step")


def _message(
    template: PlannedMessage, step_id: str, due: datetime, zone: ZoneInfo
) -> PlannedMessage:
    return replace(
        template,
        step_id=step_id,
        due_at=due.astimezone(UTC),
        send_before=due.astimezone(UTC) + timedelta(hours=2),
        local_due=due.astimezone(zone),
    )
