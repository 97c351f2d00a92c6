"""Patient and enrollment records that cross the store's boundary: plain frozen values, no ORM
objects. Each aggregate's records live beside it: message_records (outbox), reply_records
(inbound, outcomes, flags, consent), access_records (keys, users, sessions, audit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from reminders.plans.model import CONTACT_CHANNELS as CONTACT_CHANNELS
from reminders.plans.model import ContactChannel as ContactChannel
from reminders.plans.model import contact_channel as contact_channel
from reminders.schedule import PlannedMessage
from reminders.schedule_diff import ScheduleChange


class EnrollmentStatus(StrEnum):
    """Life of an enrollment."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PatientRecord:
    """A patient as enrollment input gives it, already validated."""

    external_id: str
    first_name: str
    timezone: str
    language: str
    preferred_channel: ContactChannel
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
    clear_phone_invalid: bool = False  # a new number: the provider's refusal of the old one ends
    plan_digest: str | None = None  # plans.versions.schedule_digest of the plan applied
    opting_in: bool = False  # the patient may be texted again (schedule_diff.diff_schedule)
    keep_cancelled: bool = False  # a re-plan that books nothing: cancelled rows stay cancelled
    warnings: tuple[str, ...] = ()  # what staff should know about the input (kept on it)


@dataclass(frozen=True)
class EnrollmentOutcome:
    """The result of one enrollment request."""

    external_id: str
    patient_id: int
    enrollment_id: int
    created: bool
    changes: list[ScheduleChange]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredPatient:
    """A patient as stored: what was given at enrollment and what the service learned since."""

    id: int
    external_id: str
    first_name: str
    phone: str | None
    email: str | None
    timezone: str
    language: str
    preferred_channel: ContactChannel
    sms_consent: bool
    sms_opted_out_at: datetime | None
    phone_invalid_at: datetime | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class StoredEnrollment:
    """An enrollment as stored, with the warnings kept on its input (one a line when given)."""

    id: int
    plan_id: str
    plan_version: int
    procedure_date: date
    procedure_time: time | None
    status: EnrollmentStatus
    status_reason: str | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class EnrollmentDetails:
    """One enrollment with its patient: what re-planning, updating and the timeline read."""

    patient: StoredPatient
    enrollment: StoredEnrollment


@dataclass(frozen=True)
class PatientSummary:
    """A row of `reminders patients`."""

    external_id: str
    first_name: str
    phone: str | None
    email: str | None
    timezone: str
    language: str
    preferred_channel: ContactChannel
    sms_opted_out_at: datetime | None
    plan_id: str | None
    procedure_date: date | None
    enrollment_status: EnrollmentStatus | None
    pending: int
    sent: int
    failed: int

    @property
    def active(self) -> bool:
        """Whether this row's enrollment is active (staff may still change it)."""
        return self.enrollment_status is EnrollmentStatus.ACTIVE


@dataclass(frozen=True)
class PatientSearch:
    """What staff look for in the patient list; every part optional, all parts must match."""

    text: str = ""  # the start of an external id, or of a first name (any case)
    external_id: str | None = None  # exactly this patient
    plan_id: str | None = None
    status: EnrollmentStatus | None = None
    procedure_from: date | None = None
    procedure_to: date | None = None

    @property
    def needs_enrollment(self) -> bool:
        """Whether an enrollment must match too."""
        return bool(self.plan_id or self.status or self.procedure_from or self.procedure_to)
