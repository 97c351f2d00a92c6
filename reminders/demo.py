"""Made-up demo patients whose first message falls due within about a minute, at any hour.

The demo enrolls through the EnrollmentService like staff do, so the real rules hold (the
plan's timing, quiet hours, caps): it picks the plan's first step timed in hours after the
procedure (discharge in plans/mild.yaml), a time zone where that step falls in the daytime
now, and a procedure start that puts it just under a minute ahead. It runs only where every
channel is the console outbox, and each run replaces the previous demo patients.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminders.catalog import PlanCatalog
from reminders.channels.base import Channel
from reminders.channels.console import ConsoleChannel
from reminders.enrollment import EnrollmentService
from reminders.enrollment_input import EnrollmentInput, PreferredChannel
from reminders.errors import NotFoundError, ReminderError
from reminders.plans.model import Plan, QuietHours, Step
from reminders.store.patients import PatientRepository


@dataclass(frozen=True)
class DemoPatient:
    """One of the two made-up patients the demo enrolls."""

    external_id: str
    first_name: str
    preferred_channel: PreferredChannel
    phone: str | None = None
    email: str | None = None


PATIENTS = (
    DemoPatient("DEMO-1", "Alex (demo)", "sms", phone="+12025550143"),  # 555-01xx: fiction
    DemoPatient("DEMO-2", "Sam (demo)", "email", email="sam.demo@example.com"),  # example.com
)
ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
LEAD = timedelta(seconds=1)  # the message falls due 1-60 s after the demo runs
MARGIN = timedelta(hours=1)  # and at least this far from the plan's quiet hours


class DemoError(ReminderError):
    """The demo cannot run here (live channels configured, or a plan it cannot time)."""


@dataclass(frozen=True)
class DemoRun:
    """What the demo enrolled, and when the first message falls due."""

    plan_id: str
    step_id: str
    zone: str
    procedure_start: datetime  # UTC
    due_at: datetime  # UTC
    external_ids: tuple[str, ...]


def _ceil_to_minute(instant: datetime) -> datetime:
    floor = instant.replace(second=0, microsecond=0)
    return floor if floor == instant else floor + timedelta(minutes=1)


def _in_the_daytime(local: datetime, quiet: QuietHours) -> bool:
    return not any(
        quiet.contains((local + shift).time()) for shift in (-MARGIN, timedelta(0), MARGIN)
    )


def demo_timing(plan: Plan, now: datetime) -> tuple[Step, str, datetime]:
    """The step, time zone and procedure start (UTC) that put a message just ahead of `now`."""
    for step in plan.steps:
        hours = step.offset.hours_after_procedure
        if hours is None:
            continue
        start = _ceil_to_minute(now + LEAD - timedelta(hours=hours))
        due = start + timedelta(hours=hours)
        for zone in ZONES:
            if _in_the_daytime(due.astimezone(ZoneInfo(zone)), plan.defaults.quiet_hours):
                return step, zone, start
    raise DemoError(
        f"plan '{plan.id}' has no step timed in hours after the procedure "
        "(offset: {hours_after_procedure: N}); the demo needs one"
    )


class DemoService:
    """Enrolls the demo patients, and removes them."""

    def __init__(
        self,
        enrollment: EnrollmentService,
        patients: PatientRepository,
        catalog: PlanCatalog,
        clock: Callable[[], datetime],
    ) -> None:
        self.enrollment = enrollment
        self.patients = patients
        self.catalog = catalog
        self.clock = clock

    def run(self, plan_id: str, channels: Mapping[str, Channel]) -> DemoRun:
        """Replace the demo patients with new ones whose first message is about to fall due."""
        live = sorted(
            kind for kind, channel in channels.items() if not isinstance(channel, ConsoleChannel)
        )
        if live:
            raise DemoError(
                f"the demo sends to the console outbox only, and {', '.join(live)} would go to "
                "a real provider here; run it without REMINDERS_TWILIO_* and REMINDERS_SMTP_HOST"
            )
        plan = self.catalog.get(plan_id).plan
        now = self.clock()
        step, zone, start = demo_timing(plan, now)
        local_start = start.astimezone(ZoneInfo(zone))
        attributes = {
            key: str(value[0] if isinstance(value, list) else value).lower()
            for key, value in step.when.items()
        }
        self.clean()
        taken = [p.external_id for p in PATIENTS if self._is_demo(p.external_id) is False]
        if taken:
            raise DemoError(
                f"{', '.join(map(str, taken))}: a patient who is not a demo patient has this id; "
                "the demo leaves them alone and does not run"
            )
        entries = [
            self.enrollment.validate(
                EnrollmentInput(
                    external_id=patient.external_id,
                    first_name=patient.first_name,
                    phone=patient.phone,
                    email=patient.email,
                    timezone=zone,
                    language=plan.defaults.language,
                    preferred_channel=patient.preferred_channel,
                    sms_consent=True,
                    plan=plan.id,
                    procedure_date=local_start.date(),
                    procedure_time=time(local_start.hour, local_start.minute),
                    attributes=attributes,
                )
            )
            for patient in PATIENTS
        ]
        self.enrollment.enroll(entries)
        return DemoRun(
            plan.id,
            step.id,
            zone,
            start,
            start + timedelta(hours=step.offset.hours_after_procedure or 0),
            tuple(p.external_id for p in PATIENTS),
        )

    def clean(self) -> list[str]:
        """Remove the demo patients (only those marked demo=yes) and all stored for them."""
        removed = []
        for patient in PATIENTS:
            if self._is_demo(patient.external_id) and self.patients.delete_patient(
                patient.external_id
            ):
                removed.append(patient.external_id)
        return removed

    def _is_demo(self, external_id: str) -> bool | None:
        """True for a demo patient, False for a real one with this id, None for nobody.

        A demo patient has the demo's id, its "(demo)" name and its made-up contact (numbers
        and addresses reserved for fiction); only those are ever removed.
        """
        try:
            enrollment_id, _ = self.patients.enrollment_id(external_id)
        except NotFoundError:
            return None
        stored = self.patients.enrollment_details(enrollment_id).patient
        return any(
            (p.external_id, p.first_name, p.phone, p.email)
            == (external_id, stored.first_name, stored.phone, stored.email)
            for p in PATIENTS
        )
