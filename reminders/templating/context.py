"""The variables every template sees, built the same way for checks, previews and sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Any

from reminders.plans.model import Plan
from reminders.settings import Settings
from reminders.templating.render import RenderedMessage, TemplateRenderer


@dataclass(frozen=True)
class Clinic:
    """Who the messages come from."""

    name: str
    phone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Clinic:
        """The clinic the service's settings name (the one place it is built from them)."""
        return cls(name=settings.clinic_name, phone=settings.clinic_phone)


SAMPLE_PATIENT = {"first_name": "Alex"}
SAMPLE_CLINIC = Clinic(name="Riverside Spine Clinic", phone="(555) 010-0100")


def message_context(
    plan: Plan,
    step_id: str,
    *,
    first_name: str,
    procedure_date: date,
    procedure_time: time | None,
    clinic: Clinic,
    first_sms: bool,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Template variables for one message of one patient."""
    return {
        "patient": {"first_name": first_name, "attributes": dict(attributes or {})},
        "clinic": {"name": clinic.name, "phone": clinic.phone},
        "procedure": {"name": plan.procedure, "date": procedure_date, "time": procedure_time},
        "settings": dict(plan.settings),
        "step": {"id": step_id},
        "first_sms": first_sms,
    }


def sample_context(plan: Plan, step_id: str, first_sms: bool = True) -> dict[str, Any]:
    """Variables with made-up patient data, for `plans check`."""
    return message_context(
        plan,
        step_id,
        first_name=SAMPLE_PATIENT["first_name"],
        procedure_date=date(2026, 3, 10),
        procedure_time=time(7, 30),
        clinic=SAMPLE_CLINIC,
        first_sms=first_sms,
    )


@dataclass(frozen=True)
class PatientFacts:
    """What templates know about a patient and their procedure."""

    first_name: str
    procedure_date: date
    procedure_time: time | None
    attributes: dict[str, Any]


def render_step(
    renderer: TemplateRenderer,
    plan: Plan,
    step_id: str,
    channel: str,
    language: str,
    patient: PatientFacts,
    clinic: Clinic,
    *,
    first_sms: bool,
    template: str | None = None,
) -> RenderedMessage:
    """Render one step of a plan for one patient, as the dispatcher sends it.

    `template` overrides the step's template (a stored message keeps the one it was planned
    with, even if the step has since left the plan).
    """
    context = message_context(
        plan,
        step_id,
        first_name=patient.first_name,
        procedure_date=patient.procedure_date,
        procedure_time=patient.procedure_time,
        clinic=clinic,
        first_sms=first_sms,
        attributes=patient.attributes,
    )
    return renderer.render(
        plan.templates_folder,
        template or plan.step(step_id).template,
        channel,
        language,
        plan.defaults.language,
        context,
    )
