"""Request and response bodies of the HTTP API (what /openapi.json documents)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from reminders.inputs import (
    MAX_FLAG_NOTE,
    MAX_STAFF_TEXT,
    LocalTime,
    ProcedureDate,
    Text,
    storable,
)
from reminders.plans.model import Phase, StepChannel
from reminders.schedule_diff import ChangeAction, MessageStatus
from reminders.store.inbound_schema import FlagKind, InboundKind
from reminders.store.message_records import MessageCursor
from reminders.store.records import ContactChannel, EnrollmentStatus


def _utc_instant(value: datetime) -> datetime:
    """An instant in UTC; one without a UTC offset is taken as UTC."""
    if not 1970 <= value.year <= 9000:
        raise ValueError("must be between the years 1970 and 9000")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _key_value(value: str) -> str:
    key, sep, _ = value.partition("=")
    if not sep or not key.strip():
        raise ValueError("expected key=value, e.g. takes_blood_thinners=true")
    return value


def _message_cursor(value: str) -> str:
    MessageCursor.parse(value)
    return value


KeyValue = Annotated[str, AfterValidator(storable), AfterValidator(_key_value)]
MessageCursorText = Annotated[str, AfterValidator(storable), AfterValidator(_message_cursor)]
Instant = Annotated[datetime, AfterValidator(_utc_instant)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- errors ---------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    """One bad field of a request."""

    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error the API answers with."""

    error: str = Field(description="A stable code: unauthorized, validation_error, not_found...")
    message: str
    fields: list[FieldProblem] = Field(default_factory=list)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not JSON (or cannot be read)."},
    401: {"model": ErrorOut, "description": "No valid API key."},
    413: {"model": ErrorOut, "description": "The body is over 1,000,000 bytes."},
    422: {"model": ErrorOut, "description": "A field is invalid; `fields` names it."},
}
"""The error answers every staff route can give."""


# -- requests -------------------------------------------------------------------------------


class RescheduleBody(_Body):
    """Move a patient's procedure; pending messages follow, sent ones stay."""

    procedure_date: ProcedureDate
    procedure_time: LocalTime | None = None
    plan: Text | None = Field(default=None, max_length=64, description="When on several plans.")


class CancelBody(_Body):
    """Stop a patient's enrollment."""

    reason: Text = Field(default="cancelled by staff", min_length=1, max_length=MAX_STAFF_TEXT)
    plan: Text | None = Field(default=None, max_length=64, description="When on several plans.")


class ResolveBody(_Body):
    """How staff dealt with a flag."""

    note: Text = Field(
        default="", max_length=MAX_FLAG_NOTE, description="What was done (a call, ...)."
    )


# -- responses ------------------------------------------------------------------------------
#
# PatientOut, MessageOut, InboundOut, OutcomeOut and FlagOut mirror the store's records
# (PatientSummary, MessageView, InboundView, OutcomeView, FlagView) field for field, with the
# same types: tests/test_api_schemas.py holds each pair together. They are not generated from
# the records on purpose: the records are internal and may grow (MessageView.updated_at feeds
# the list cursor), while these are the published contract of /openapi.json, its names and
# descriptions; a record's new field reaches API clients only when it is added here.


class ScheduleChangeOut(_Out):
    """What enrolling did to one step's pending message."""

    step_id: str
    action: ChangeAction
    old_due_at: datetime | None
    new_due_at: datetime | None
    reason: str | None


class EnrollmentOut(_Out):
    """The result of enrolling, updating or rescheduling a patient."""

    external_id: str
    patient_id: int
    enrollment_id: int
    created: bool
    changes: list[ScheduleChangeOut]
    warnings: list[str] = Field(
        default_factory=list,
        description="What staff should know, e.g. a language the plan lacks (messages then go "
        "in the plan's default language). Kept on the enrollment.",
    )


class CancelOut(BaseModel):
    """The result of cancelling an enrollment."""

    external_id: str
    cancelled_messages: int


class SmsOptInBody(_Body):
    """Staff opt a patient back in to SMS (they agreed again): how, for the record."""

    note: Text = Field(
        default="",
        max_length=MAX_STAFF_TEXT,
        description="How the patient agreed again (kept with the opt-in event and the audit log).",
    )


class SmsOptInOut(BaseModel):
    """The result of opting a patient back in to SMS."""

    external_id: str
    opted_in: bool = Field(description="False when the patient was not opted out.")
    restored_messages: int = Field(description="Messages SMS stopping held back, now pending.")


class PatientOut(_Out):
    """A patient with their enrollment and message counts."""

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


class MessageOut(_Out):
    """One outbound message."""

    id: int
    external_id: str
    plan_id: str
    step_id: str
    phase: Phase
    channel: ContactChannel
    status: MessageStatus
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


class InboundOut(_Out):
    """One SMS a patient (or an unknown number) sent us."""

    id: int
    provider_message_id: str
    external_id: str | None
    from_phone: str
    body: str
    received_at: datetime
    kind: InboundKind
    in_reply_to_message_id: int | None
    in_reply_to_step_id: str | None


class OutcomeOut(_Out):
    """A relief-check answer."""

    id: int
    external_id: str
    message_id: int
    step_id: str
    leg_pain: int | None
    walking_improved: bool | None
    raw: str
    received_at: datetime


class FlagOut(_Out):
    """Something staff should act on."""

    id: int
    external_id: str
    message_id: int | None
    kind: FlagKind
    detail: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None = None
    resolution_note: str | None = None


class TimelineOut(BaseModel):
    """Everything that passed between the service and one patient."""

    external_id: str
    messages: list[MessageOut]
    replies: list[InboundOut]
    flags: list[FlagOut]


class StepOut(BaseModel):
    """One step of a plan."""

    id: str
    phase: Phase
    when: str
    template: str
    channel: StepChannel
    description: str | None
    conditions: dict[str, Any]


class PlanOut(BaseModel):
    """A plan the service runs."""

    id: str
    name: str
    version: int
    procedure: str
    languages: list[str]
    steps: list[StepOut]


class PreviewMessageOut(BaseModel):
    """One message of a previewed schedule, rendered for a sample patient."""

    step_id: str
    phase: Phase
    channel: ContactChannel
    language: str
    due_at: datetime
    local_due: datetime
    send_before: datetime
    notes: list[str]
    skip_reason: str | None
    subject: str | None
    body: str | None
    sms_segments: int | None


class PreviewOut(BaseModel):
    """A plan's schedule for one procedure date, as a patient would receive it."""

    plan_id: str
    plan_version: int
    procedure_date: date
    timezone: str
    messages: list[PreviewMessageOut]


class ChannelHealthOut(BaseModel):
    """One channel: ok, or stopped by a configuration error (its messages wait)."""

    name: str
    state: Literal["ok", "stopped"]
    reason: str | None = None
    since: datetime | None = None
    next_check: datetime | None = None


class HealthOut(BaseModel):
    """The service's health: the database and each channel of the dispatcher in this process."""

    status: Literal["ok", "degraded"]
    database: str
    dispatcher: str
    channels: list[ChannelHealthOut]
