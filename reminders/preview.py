"""A plan's whole timeline for one (made-up) patient, rendered: what staff check before use."""

from __future__ import annotations

from dataclasses import dataclass

from reminders.plans.model import Plan
from reminders.schedule import Enrollment, PlannedMessage, compute_schedule
from reminders.templating.context import Clinic, PatientFacts, render_step
from reminders.templating.render import RenderedMessage, TemplateRenderer


@dataclass(frozen=True)
class PreviewedMessage:
    """One message of the timeline with the text the patient would get."""

    planned: PlannedMessage
    rendered: RenderedMessage


def preview_plan(
    plan: Plan,
    renderer: TemplateRenderer,
    clinic: Clinic,
    enrollment: Enrollment,
    patient: PatientFacts,
) -> list[PreviewedMessage]:
    """Every message of the plan for this enrollment; the first SMS sent carries the opt-out."""
    previews = []
    first_sms_seen = False
    for message in compute_schedule(plan, enrollment):
        first_sms = message.channel == "sms" and not message.skip_reason and not first_sms_seen
        first_sms_seen = first_sms_seen or first_sms
        rendered = render_step(
            renderer,
            plan,
            message.step_id,
            message.channel,
            message.language,
            patient,
            clinic,
            first_sms=first_sms,
        )
        previews.append(PreviewedMessage(message, rendered))
    return previews
