"""Patients with SMS due right now (real time), for tests that run a real Twilio stand-in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from reminders.catalog import PlanCatalog
from reminders.schedule import ScheduleInput, compute_schedule
from reminders.store.records import EnrollmentRequest, PatientRecord

ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles",
         "Asia/Kolkata", "Pacific/Auckland", "America/Sao_Paulo", "Asia/Dubai")  # fmt: skip


def daytime_zone(now: datetime) -> str:
    """A zone where it is mid-day at `now`, so quiet hours never hold a message back."""
    return next(z for z in ZONES if 10 <= now.astimezone(ZoneInfo(z)).hour < 18)


def due_now_requests(
    catalog: PlanCatalog,
    now: datetime,
    count: int,
    *,
    steps: tuple[str, ...] = ("discharge",),
    window: timedelta = timedelta(hours=1),
    channel: str = "sms",
) -> list[EnrollmentRequest]:
    """`count` patients, each with their own number (or email address) and the given steps
    due a minute ago on `channel`."""
    plan = catalog.get("demo").plan
    zone = daytime_zone(now)
    procedure = now.date() - timedelta(days=1)
    planned = {m.step_id: m for m in compute_schedule(plan, ScheduleInput(procedure, zone))}
    due = now - timedelta(minutes=1)
    messages = [
        replace(
            planned[step], due_at=due, send_before=due + window, skip_reason=None, channel=channel
        )
        for step in steps
    ]
    return [
        EnrollmentRequest(
            PatientRecord(
                f"P-{i:05d}",
                "Maria",
                zone,
                "en",
                channel,
                phone=f"+1202555{i:04d}" if channel == "sms" else None,
                email=f"patient{i}@example.org" if channel == "email" else None,
            ),
            plan.id,
            plan.version,
            procedure,
            None,
            messages,
        )
        for i in range(count)
    ]
