"""Plain values that cross the store's boundary (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from reminders.schedule import PlannedMessage


@dataclass(frozen=True)
class PatientRecord:
    """A patient as enrollment input gives it, already validated."""

    external_id: str
    first_name: str
    timezone: str
    language: str
    preferred_channel: str
    phone: str | None = None
    email: str | None = None
    sms_consent: bool = True
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PatientState:
    """What the service has learned about a patient that scheduling must respect."""

    patient_id: int
    sms_opted_out_at: datetime | None
    phone_invalid_at: datetime | None
    phone: str | None = None


@dataclass(frozen=True)
class EnrollmentRequest:
    """Enroll (or re-enroll) one patient on one plan with a computed schedule."""

    patient: PatientRecord
    plan_id: str
    plan_version: int
    procedure_date: date
    procedure_time: time | None
    messages: list[PlannedMessage]


@dataclass(frozen=True)
class ScheduleChange:
    """What enrolling did to one step's pending message."""

    step_id: str
    action: str  # "add", "move", "restore" (after a cancel), "keep", "cancel"
    old_due_at: datetime | None
    new_due_at: datetime | None
    reason: str | None = None


@dataclass(frozen=True)
class EnrollmentOutcome:
    """The result of one enrollment request."""

    external_id: str
    patient_id: int
    enrollment_id: int
    created: bool
    changes: list[ScheduleChange]


@dataclass(frozen=True)
class PatientSummary:
    """A row of `reminders patients`."""

    external_id: str
    first_name: str
    phone: str | None
    email: str | None
    timezone: str
    language: str
    preferred_channel: str
    sms_opted_out_at: datetime | None
    plan_id: str | None
    procedure_date: date | None
    enrollment_status: str | None
    pending: int
    sent: int
    failed: int


@dataclass(frozen=True)
class MessageView:
    """A message as staff see it in timelines and lists."""

    id: int
    external_id: str
    plan_id: str
    step_id: str
    phase: str
    channel: str
    status: str
    status_reason: str | None
    due_at: datetime
    send_before: datetime
    next_attempt_at: datetime
    attempts: int
    sent_at: datetime | None
    provider_message_id: str | None
    provider_status: str | None
    error_code: str | None
    timezone: str
    body: str | None


@dataclass(frozen=True)
class ClaimedMessage:
    """A due message claimed by one worker, with everything needed to render and send it."""

    id: int
    enrollment_id: int
    patient_id: int
    plan_id: str
    plan_version: int
    step_id: str
    phase: str
    channel: str
    template: str
    language: str
    due_at: datetime
    send_before: datetime
    attempts: int
    claimed_at: datetime
    first_name: str
    phone: str | None
    email: str | None
    timezone: str
    attributes: dict[str, Any]
    sms_consent: bool
    sms_opted_out_at: datetime | None
    phone_invalid_at: datetime | None
    procedure_date: date
    procedure_time: time | None
    enrollment_status: str
