"""The two-way side's records (inbound SMS, outcomes, flags, SMS consent): plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reminders.store.inbound_schema import FlagKind, InboundKind
from reminders.store.records import ContactChannel


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
    kind: InboundKind
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
    kind: FlagKind
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
    kind: InboundKind
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
    kind: FlagKind
    detail: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None = None
    resolution_note: str | None = None


@dataclass(frozen=True)
class OptOutEventView:
    """One opt-out or opt-in, for the audit trail."""

    patient_id: int
    channel: ContactChannel
    kind: ConsentEventKind
    keyword: str
    at: datetime


class ConsentEventKind(StrEnum):
    """What one row of the opt-out audit trail records."""

    OPTED_OUT = "opt_out"
    NUMBER_UNUSABLE = "phone_invalid"
    OPTED_IN = "opt_in"


class SmsStopKind(StrEnum):
    """Why SMS to a patient stopped (the value is the opt-out event's kind)."""

    OPTED_OUT = ConsentEventKind.OPTED_OUT.value  # the patient asked: STOP to us or the carrier
    NUMBER_UNUSABLE = ConsentEventKind.NUMBER_UNUSABLE.value  # the number cannot get SMS

    @property
    def event(self) -> ConsentEventKind:
        """The kind of the audit-trail row that records this stop."""
        return ConsentEventKind(self.value)


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
