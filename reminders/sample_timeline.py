"""A plan's whole timeline for one made-up patient, rendered: what staff check before use.

The CLI's `plans preview` and the API's `GET /v1/plans/{id}/preview` both call
`sample_timeline`; only their output formats differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from reminders.plans.model import ContactChannel, Plan
from reminders.schedule import PlannedMessage, ScheduleInput, compute_schedule
from reminders.templating.context import SAMPLE_PATIENT, Clinic, PatientFacts, render_step
from reminders.templating.render import RenderedMessage, TemplateRenderer


@dataclass(frozen=True)
class PreviewedMessage:
    """One message of the timeline with the text the patient would get."""

    planned: PlannedMessage
    rendered: RenderedMessage


def sample_timeline(
    plan: Plan,
    renderer: TemplateRenderer,
    clinic: Clinic,
    *,
    procedure_date: date,
    timezone: str,
    procedure_time: time | None = None,
    language: str | None = None,
    channel: ContactChannel = "sms",
    first_name: str = SAMPLE_PATIENT["first_name"],
    attributes: Mapping[str, Any] | None = None,
) -> list[PreviewedMessage]:
    """Every message of the plan for a sample patient with a phone and an email address;
    the first SMS sent carries the opt-out."""
    facts = dict(attributes or {})
    schedule_input = ScheduleInput(
        procedure_date=procedure_date,
        timezone=timezone,
        procedure_time=procedure_time,
        attributes=facts,
        preferred_channel=channel,
        language=language,
        has_phone=True,
        has_email=True,
    )
    patient = PatientFacts(first_name, procedure_date, procedure_time, facts)
    previews = []
    first_sms_seen = False
    for message in compute_schedule(plan, schedule_input):
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
