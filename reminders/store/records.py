"""Every record that crosses the store's boundary: plain frozen values, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Literal

from reminders.schedule import PlannedMessage
from reminders.schedule_diff import ScheduleChange

ContactChannel = Literal["sms", "email"]
"""How a patient prefers to be reached."""


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
class PatientSearch:
    """What staff look for in the patient list; every part optional, all parts must match."""

    text: str = ""  # the start of an external id, or of a first name (any case)
    external_id: str | None = None  # exactly this patient
    plan_id: str | None = None
    status: str | None = None  # an enrollment status: active, cancelled
    procedure_from: date | None = None
    procedure_to: date | None = None

    @property
    def needs_enrollment(self) -> bool:
        """Whether an enrollment must match too."""
        return bool(self.plan_id or self.status or self.procedure_from or self.procedure_to)


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
    updated_at: datetime

    @property
    def cursor(self) -> MessageCursor:
        """Where a list of messages continues after this one."""
        return MessageCursor(self.updated_at, self.id)


@dataclass(frozen=True)
class MessageCursor:
    """A place in the messages list (newest activity first): continue before this row.

    Written as `<updated_at in UTC, ISO 8601>~<id>` for staff and API clients.
    """

    updated_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{self.updated_at.astimezone(UTC).isoformat()}~{self.id}"

    @classmethod
    def parse(cls, text: str) -> MessageCursor:
        """Read a cursor written by `str()`; a ValueError says what is wrong."""
        instant, sep, number = text.strip().rpartition("~")
        try:
            if not sep:
                raise ValueError
            updated_at = datetime.fromisoformat(instant)
            message_id = int(number)
        except ValueError:
            raise ValueError(
                f"not a messages cursor: {text!r} (expected '<UTC time>~<id>' as printed "
                "with the previous page)"
            ) from None
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=UTC)
        return cls(updated_at, message_id)


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
    uid: str | None = None


@dataclass(frozen=True)
class ClaimedBatch:
    """Messages one worker claimed, with when their patients were last texted (SMS sent, or
    held in "sending" by another claim), read in the same transaction as the claim."""

    messages: list[ClaimedMessage]
    sms_sent_at: dict[int, list[datetime]]


# -- the two-way side: API keys, inbound SMS, outcomes, flags -----------------------------


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as staff see it: never the key itself, nor its hash."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    scope: str = "staff"


@dataclass(frozen=True)
class PhoneMatch:
    """A patient whose phone number sent an inbound SMS."""

    patient_id: int
    external_id: str
    language: str
    email: str | None
    sms_opted_out_at: datetime | None
    last_sms_at: datetime | None


@dataclass(frozen=True)
class SentSms:
    """An SMS we sent, as replies are linked to it."""

    id: int
    patient_id: int
    plan_id: str
    step_id: str
    sent_at: datetime


@dataclass(frozen=True)
class NewInbound:
    """An inbound SMS to record."""

    provider_message_id: str
    from_phone: str
    to_phone: str
    body: str
    received_at: datetime
    kind: str
    patient_id: int | None = None
    in_reply_to_message_id: int | None = None


@dataclass(frozen=True)
class NewOutcome:
    """A parsed relief-check answer to record."""

    patient_id: int
    message_id: int
    step_id: str
    leg_pain: int | None
    walking_improved: bool | None
    raw: str
    received_at: datetime


@dataclass(frozen=True)
class NewFlag:
    """Something staff should look at."""

    patient_id: int
    kind: str
    detail: str
    message_id: int | None = None


@dataclass(frozen=True)
class InboundView:
    """An inbound SMS as staff see it."""

    id: int
    provider_message_id: str
    external_id: str | None
    from_phone: str
    body: str
    received_at: datetime
    kind: str
    in_reply_to_message_id: int | None
    in_reply_to_step_id: str | None


@dataclass(frozen=True)
class OutcomeView:
    """A relief-check answer as staff see it."""

    id: int
    external_id: str
    message_id: int
    step_id: str
    leg_pain: int | None
    walking_improved: bool | None
    raw: str
    received_at: datetime


@dataclass(frozen=True)
class StepOutcomes:
    """The answers to one relief check (a step) across patients."""

    step_id: str
    answers: int
    pain_answers: int
    mean_leg_pain: float | None
    walking_better: int
    walking_answers: int


@dataclass(frozen=True)
class FlagView:
    """A flag as staff see it."""

    id: int
    external_id: str
    message_id: int | None
    kind: str
    detail: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None = None
    resolution_note: str | None = None


@dataclass(frozen=True)
class OptOutEventView:
    """One opt-out or opt-in, for the audit trail."""

    patient_id: int
    channel: str
    kind: str
    keyword: str
    at: datetime


class SmsStopKind(StrEnum):
    """Why SMS to a patient stopped (the value is the opt-out event's kind)."""

    OPTED_OUT = "opt_out"  # the patient asked: STOP to us or to the carrier
    NUMBER_UNUSABLE = "phone_invalid"  # the provider says the number cannot get SMS


@dataclass(frozen=True)
class SmsStateChange:
    """Stop texting: why, how we learned it (`source`, e.g. "STOP", "delivery report 30005"),
    when, and the reason pending SMS are skipped with."""

    kind: SmsStopKind
    source: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class SmsStop:
    """What stopping SMS did: who changed state, what happened to pending SMS, and the
    external ids of the patients it was about."""

    changed: list[int]
    moved_to_email: int
    skipped: int
    external_ids: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryUpdate:
    """The message a status callback was about; `new_error` when this callback first recorded
    its error code (a repeated or stale callback must not act twice)."""

    message_id: int
    patient_id: int
    recipient: str | None
    provider_status: str | None
    error_code: str | None
    new_error: bool = False
    step_id: str | None = None
    phase: str | None = None
    undelivered: bool = False  # this report moved the message from sent to undelivered


@dataclass(frozen=True)
class UserRecord:
    """A staff user as the access service sees it (the hash never leaves the service)."""

    id: int
    name: str
    role: str
    password_hash: str
    failed_sign_ins: int
    locked_until: datetime | None
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    """A signed-in console session with its user."""

    id: int
    user_id: int
    user_name: str
    role: str
    csrf_token: str
    last_seen_at: datetime
    ended_at: datetime | None
    user_disabled_at: datetime | None


@dataclass(frozen=True)
class NewAuditEntry:
    """One change to record: who, what, about which patient (external id), and details."""

    actor: str
    action: str
    external_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class AuditRecord:
    """One recorded change."""

    id: int
    at: datetime
    actor: str
    action: str
    external_id: str | None
    detail: str
