"""Select statements that more than one repository reads through, each named for its rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from reminders.plans.model import Phase
from reminders.store.inbound_schema import Flag, FlagKind, InboundKind, InboundMessage, Outcome
from reminders.store.message_records import ClaimedMessage, MessageView
from reminders.store.records import contact_channel
from reminders.store.reply_records import FlagView, InboundView
from reminders.store.schema import Enrollment, EnrollmentStatus, Message, MessageStatus, Patient


def claimed_query() -> Select[*tuple[Any, ...]]:
    """A claimed message with the patient and enrollment facts needed to send it."""
    return (
        select(
            Message.id,
            Message.uid,
            Message.enrollment_id,
            Message.patient_id,
            Message.plan_id,
            Message.plan_version,
            Message.step_id,
            Message.phase,
            Message.channel,
            Message.template,
            Message.language,
            Message.due_at,
            Message.send_before,
            Message.attempts,
            Message.claimed_at,
            Patient.first_name,
            Patient.phone,
            Patient.email,
            Patient.timezone,
            Patient.attributes,
            Patient.sms_consent,
            Patient.sms_opted_out_at,
            Patient.phone_invalid_at,
            Enrollment.procedure_date,
            Enrollment.procedure_time,
            Enrollment.status.label("enrollment_status"),
        )
        .join(Patient, Patient.id == Message.patient_id)
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
    )


def claimed(row: Any) -> ClaimedMessage:
    """A row of `claimed_query` as a record: phase, channel and enrollment status parsed."""
    parsed = {
        "phase": Phase(row.phase),
        "channel": contact_channel(row.channel),
        "enrollment_status": EnrollmentStatus(row.enrollment_status),
    }
    return ClaimedMessage(**{**row._asdict(), **parsed})


def view_query() -> Select[*tuple[Any, ...]]:
    """A message as staff see it."""
    return select(
        Message.id,
        Patient.external_id,
        Message.plan_id,
        Message.step_id,
        Message.phase,
        Message.channel,
        Message.status,
        Message.status_reason,
        Message.due_at,
        Message.send_before,
        Message.next_attempt_at,
        Message.attempts,
        Message.sent_at,
        Message.provider_message_id,
        Message.provider_status,
        Message.error_code,
        Patient.timezone,
        Message.body,
        Message.updated_at,
    ).join(Patient, Patient.id == Message.patient_id)


def view(row: Any) -> MessageView:
    """A row of `view_query` as a record: its phase, channel and status parsed here, once."""
    parsed = {
        "phase": Phase(row.phase),
        "channel": contact_channel(row.channel),
        "status": MessageStatus(row.status),
    }
    return MessageView(**{**row._asdict(), **parsed})


def sent_sms_query() -> Select[*tuple[Any, ...]]:
    """SMS we sent, as replies are linked to them (`SentSms`)."""
    return select(
        Message.id, Message.patient_id, Message.plan_id, Message.step_id, Message.sent_at
    ).where(
        Message.channel == "sms",
        Message.status == MessageStatus.SENT.value,
        Message.sent_at.is_not(None),
    )


def outcome_query() -> Select[*tuple[Any, ...]]:
    """Relief-check answers as staff see them (`OutcomeView`)."""
    return select(
        Outcome.id,
        Patient.external_id,
        Outcome.message_id,
        Outcome.step_id,
        Outcome.leg_pain,
        Outcome.walking_improved,
        Outcome.raw,
        Outcome.received_at,
    ).join(Patient, Patient.id == Outcome.patient_id)


def flag_view(row: Any) -> FlagView:
    """A row of `flag_query` as a record, its kind parsed here, once."""
    return FlagView(**{**row._asdict(), "kind": FlagKind(row.kind)})


def flag_query() -> Select[*tuple[Any, ...]]:
    """Flags as staff see them (`FlagView`)."""
    return select(
        Flag.id,
        Patient.external_id,
        Flag.message_id,
        Flag.kind,
        Flag.detail,
        Flag.created_at,
        Flag.resolved_at,
        Flag.resolved_by,
        Flag.resolution_note,
    ).join(Patient, Patient.id == Flag.patient_id)


def inbound_query() -> Select[*tuple[Any, ...]]:
    """Inbound SMS as staff see them (`InboundView`)."""
    return (
        select(
            InboundMessage.id,
            InboundMessage.provider_message_id,
            Patient.external_id,
            InboundMessage.from_phone,
            InboundMessage.body,
            InboundMessage.received_at,
            InboundMessage.kind,
            InboundMessage.in_reply_to_message_id,
            Message.step_id,
        )
        .outerjoin(Patient, Patient.id == InboundMessage.patient_id)
        .outerjoin(Message, Message.id == InboundMessage.in_reply_to_message_id)
    )


def inbound_view(row: Any) -> InboundView:
    """A row of `inbound_query` as a record, its kind parsed here, once."""
    fields = row._asdict()
    fields["in_reply_to_step_id"] = fields.pop("step_id")
    return InboundView(**{**fields, "kind": InboundKind(row.kind)})
