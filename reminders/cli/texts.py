"""Render the text a patient gets (or will get) for one step, the way the dispatcher does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import Any

from reminders.catalog import PlanCatalog
from reminders.errors import NotFoundError, PlanError, TemplateError
from reminders.plans.model import Plan
from reminders.templating.context import Clinic, message_context
from reminders.templating.render import RenderedMessage


@dataclass(frozen=True)
class PatientFacts:
    """What templates know about a patient and their procedure."""

    first_name: str
    language: str
    procedure_date: date
    procedure_time: time | None
    attributes: dict[str, Any]


def render_step(
    catalog: PlanCatalog,
    plan: Plan,
    step_id: str,
    channel: str,
    language: str,
    patient: PatientFacts,
    clinic: Clinic,
    *,
    first_sms: bool,
) -> RenderedMessage:
    """Render one step of a plan for one patient (TemplateError when it cannot)."""
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
    return catalog.renderer.render(
        plan.templates_folder,
        plan.step(step_id).template,
        channel,
        language,
        plan.defaults.language,
        context,
    )


def preview_text(
    catalog: PlanCatalog,
    plan_id: str,
    step_id: str,
    channel: str,
    patient: PatientFacts,
    clinic: Clinic,
    *,
    first_sms: bool,
) -> str:
    """The text a stored, not yet sent message would have, or why it cannot be shown."""
    try:
        plan = catalog.get(plan_id).plan
        language = patient.language if patient.language in plan.languages else ""
        rendered = render_step(
            catalog,
            plan,
            step_id,
            channel,
            language or plan.defaults.language,
            patient,
            clinic,
            first_sms=first_sms,
        )
    except KeyError:
        return f"(step '{step_id}' is no longer in plan '{plan_id}')"
    except (NotFoundError, PlanError, TemplateError) as exc:
        return f"(cannot render: {str(exc).splitlines()[0]})"
    return with_subject(rendered)


def with_subject(message: RenderedMessage) -> str:
    """An email's subject line above its text; an SMS as it is."""
    if message.subject:
        return f"Subject: {message.subject}\n\n{message.body}"
    return message.body
