"""Enrolled patients whose stored attributes no longer fit their plan's declarations."""

from __future__ import annotations

from collections.abc import Iterable

from reminders.errors import PlanProblem
from reminders.plans.attributes import read_attributes
from reminders.plans.loader import LoadedPlan
from reminders.plans.versions import EnrolledAttributes

SHOWN_MISFITS = 50


def misfit_problems(
    loaded: LoadedPlan, enrolled: Iterable[EnrolledAttributes]
) -> list[PlanProblem]:
    """A warning per patient on this plan whose attributes the declarations refuse."""
    plan = loaded.plan
    if not plan.attributes:
        return []
    where = (str(loaded.path), loaded.line("attributes"), "attributes")
    found = []
    for patient in enrolled:
        if patient.plan_id != plan.id:
            continue
        _, problems = read_attributes(plan.attributes, patient.attributes)
        if problems:
            details = "; ".join(f"{name}: {message}" for name, message in problems.items())
            found.append(f"enrolled patient {patient.external_id} does not fit: {details}")
    shown = [PlanProblem(*where, message, severity="warning") for message in found[:SHOWN_MISFITS]]
    if len(found) > SHOWN_MISFITS:
        more = f"... and {len(found) - SHOWN_MISFITS} more enrolled patient(s) that do not fit"
        shown.append(PlanProblem(*where, more, severity="warning"))
    return shown
