"""A plan's schedule for a sample patient, rendered: what staff check before going live."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from reminders.api.schemas import PreviewMessageOut
from reminders.plans.model import Plan
from reminders.preview import preview_plan
from reminders.schedule import Enrollment
from reminders.templating.context import Clinic, PatientFacts
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
    patient = PatientFacts(first_name, procedure_date, procedure_time, attributes)
    return [
        PreviewMessageOut(
            step_id=item.planned.step_id,
            phase=item.planned.phase.value,
            channel=item.planned.channel,
            language=item.rendered.language,
            due_at=item.planned.due_at,
            local_due=item.planned.local_due,
            send_before=item.planned.send_before,
            notes=list(item.planned.notes),
            skip_reason=item.planned.skip_reason,
            subject=item.rendered.subject,
            body=item.rendered.body,
            sms_segments=item.rendered.sms.segments if item.rendered.sms else None,
        )
        for item in preview_plan(plan, renderer, clinic, enrollment, patient)
    ]
