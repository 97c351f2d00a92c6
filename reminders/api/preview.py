"""A plan's schedule for a sample patient, rendered: what staff check before going live."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from reminders.api.schemas import PreviewMessageOut
from reminders.plans.model import Plan
from reminders.schedule import Enrollment, compute_schedule
from reminders.templating.context import Clinic, message_context
from reminders.templating.render import TemplateRenderer


def preview_schedule(
    plan: Plan,
    renderer: TemplateRenderer,
    clinic: Clinic,
    *,
    procedure_date: date,
    timezone: str,
    procedure_time: time | None = None,
    language: str | None = None,
    channel: str = "sms",
    first_name: str = "Alex",
    attributes: dict[str, Any] | None = None,
) -> list[PreviewMessageOut]:
    """Every message of the plan for a patient with a phone and an email address."""
    attributes = attributes or {}
    enrollment = Enrollment(
        procedure_date=procedure_date,
        timezone=timezone,
        procedure_time=procedure_time,
        attributes=attributes,
        preferred_channel=channel,
        language=language,
        has_phone=True,
        has_email=True,
    )
    messages = compute_schedule(plan, enrollment)
    first_sms = next(
        (m.step_id for m in messages if m.channel == "sms" and not m.skip_reason), None
    )
    previews = []
    for message in messages:
        subject = body = None
        segments = None
        if not message.skip_reason:
            context = message_context(
                plan,
                message.step_id,
                first_name=first_name,
                procedure_date=procedure_date,
                procedure_time=procedure_time,
                clinic=clinic,
                first_sms=message.step_id == first_sms,
                attributes=attributes,
            )
            rendered = renderer.render(
                plan.templates_folder,
                message.template,
                message.channel,
                message.language,
                plan.defaults.language,
                context,
            )
            subject, body = rendered.subject, rendered.body
            segments = rendered.sms.segments if rendered.sms else None
        previews.append(
            PreviewMessageOut(
                step_id=message.step_id,
                phase=message.phase.value,
                channel=message.channel,
                language=message.language,
                due_at=message.due_at,
                local_due=message.local_due,
                send_before=message.send_before,
                notes=list(message.notes),
                skip_reason=message.skip_reason,
                subject=subject,
                body=body,
                sms_segments=segments,
            )
        )
    return previews
