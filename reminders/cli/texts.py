"""The text a patient gets (or will get) for one stored message, for timelines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reminders.errors import NotFoundError, PlanError, TemplateError

if TYPE_CHECKING:
    from reminders.catalog import PlanCatalog
    from reminders.templating.context import Clinic, PatientFacts
    from reminders.templating.render import RenderedMessage


def preview_text(
    catalog: PlanCatalog,
    plan_id: str,
    step_id: str,
    channel: str,
    language: str,
    patient: PatientFacts,
    clinic: Clinic,
    *,
    first_sms: bool,
) -> str:
    """The text a stored, not yet sent message would have, or why it cannot be shown."""
    from reminders.templating.context import render_step

    try:
        plan = catalog.get(plan_id).plan
        language = plan.language_for(language) or plan.defaults.language
        rendered = render_step(
            catalog.renderer,
            plan,
            step_id,
            channel,
            language,
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
