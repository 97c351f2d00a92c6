"""A claimed message made ready for its channel: whether its patient may get it there, and the
rendered message addressed to them. No I/O but reading the templates."""

from __future__ import annotations

from reminders.channels.base import OutgoingMessage
from reminders.plans.model import Plan
from reminders.store.message_records import ClaimedMessage
from reminders.templating.context import Clinic, PatientFacts, render_step
from reminders.templating.render import TemplateRenderer


def refusal(message: ClaimedMessage) -> str | None:
    """Why this patient must not get this message on this channel, if they must not."""
    if message.channel == "sms":
        if message.sms_opted_out_at is not None:
            return "patient opted out of SMS"
        if not message.sms_consent:
            return "no SMS consent"
        if message.phone is None or message.phone_invalid_at is not None:
            return "no valid phone number"
    elif message.channel == "email" and not message.email:
        return "no email address"
    return None


def outgoing_message(
    message: ClaimedMessage,
    plan: Plan,
    renderer: TemplateRenderer,
    clinic: Clinic,
    *,
    first_sms: bool,
) -> OutgoingMessage:
    """The message rendered for its patient (`first_sms`: with the opt-out line) and addressed
    to their number or email address; ValueError when they have none on its channel."""
    patient = PatientFacts(
        message.first_name, message.procedure_date, message.procedure_time, message.attributes
    )
    rendered = render_step(
        renderer,
        plan,
        message.step_id,
        message.channel,
        message.language,
        patient,
        clinic,
        first_sms=first_sms,
        template=message.template,
    )
    to = message.phone if message.channel == "sms" else message.email
    if not to:
        raise ValueError(f"no {message.channel} address")
    return OutgoingMessage(
        outbox_id=message.id,
        channel=message.channel,
        to=to,
        body=rendered.body,
        subject=rendered.subject,
        html=rendered.html,
        uid=message.uid,
    )
