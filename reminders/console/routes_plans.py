"""Plans: each plan's steps drawn around the procedure day, the plan check's findings with
file:line, a preview for a sample patient (attributes, language, channel; SMS segments), and
for admins what applying the plan file would change, and the button that applies it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response

from reminders.clock import utc_now
from reminders.console import forms
from reminders.console.context import console_context
from reminders.console.guard import PREFIX, ConsoleRouter, SignedIn
from reminders.console.pictures import plan_picture
from reminders.console.render import page
from reminders.errors import InputProblem, ReminderError
from reminders.inputs import time_zone
from reminders.plans.model import ContactChannel
from reminders.roles import Role
from reminders.sample_timeline import sample_timeline

routes = ConsoleRouter()
PlanId = Annotated[str, Path(min_length=1, max_length=64)]
DEFAULT_ZONE = "America/Chicago"


@routes.page("/plans", Role.VIEWER)
def plans(request: Request, identity: SignedIn) -> Response:
    """Every plan file, with the check's errors and warnings (file:line)."""
    result = console_context(request).app.check_plan_files()
    return page(
        request,
        "plans.html",
        identity=identity,
        active="plans",
        plans=[loaded.plan for loaded in result.plans],
        errors=result.errors,
        warnings=result.warnings,
    )


@routes.page("/plans/{plan_id}", Role.VIEWER)
def plan(request: Request, identity: SignedIn, plan_id: PlanId) -> Response:
    """One plan: its steps on a timeline and every text for a sample patient."""
    ctx = console_context(request)
    rollouts = ctx.app.plan_rollout(identity.actor)  # the plan files as they are now
    try:
        loaded = rollouts.catalog.get(plan_id)
    except ReminderError as exc:
        return page(request, "refused.html", status_code=404, identity=identity, message=str(exc))
    current = loaded.plan
    params = request.query_params
    problems: list[InputProblem] = []
    procedure = forms.procedure_date(params, "procedure_date", []) or (
        utc_now().date() + timedelta(days=14)
    )
    at = forms.local_time(params, "procedure_time", problems)
    zone = forms.text(params, "timezone", 64) or DEFAULT_ZONE
    try:
        time_zone(zone)
    except ValueError as exc:
        problems.append(InputProblem("timezone", str(exc)))
        zone = DEFAULT_ZONE
    language = forms.text(params, "language", 16)
    language = current.language_for(language) or current.languages[0]
    channel: ContactChannel = "email" if params.get("channel") == "email" else "sms"
    conditions = current.conditions()
    attributes = {
        name: params.get(f"attr_{name}") == "yes"
        if _boolean(values)
        else params.get(f"attr_{name}", "")
        for name, values in conditions.items()
    }
    try:
        previews = sample_timeline(
            current,
            ctx.app.catalog.renderer,
            ctx.app.clinic,
            procedure_date=procedure,
            timezone=zone,
            procedure_time=at,
            language=language,
            channel=channel,
            attributes=attributes,
        )
    except ReminderError as exc:
        previews, problems = [], [*problems, InputProblem("preview", str(exc))]
    frame, markers = plan_picture(
        procedure,
        [
            (
                p.planned.step_id,
                p.planned.local_due.date(),
                p.planned.channel,
                p.planned.skip_reason is not None,
            )
            for p in previews
        ],
    )
    admin = identity.role.allows(Role.ADMIN)
    # The rollout dry-runs every active enrollment on the plan: only when an admin asks.
    rollout = rollouts.preview(plan_id) if admin and params.get("rollout") == "1" else None
    return page(
        request,
        "plan.html",
        identity=identity,
        active="plans",
        plan=current,
        frame=frame,
        markers=markers,
        previews=previews,
        problems=problems,
        form={
            "procedure_date": procedure.isoformat(),
            "procedure_time": at.strftime("%H:%M") if at else "",
            "timezone": zone,
            "language": language,
            "channel": channel,
        },
        conditions=conditions,
        attributes=attributes,
        boolean={name: _boolean(values) for name, values in conditions.items()},
        rollout=rollout,
        admin=admin,
        notice="The plan is applied to its enrolled patients."
        if params.get("notice") == "applied"
        else "",
    )


@routes.action("/plans/{plan_id}/apply", Role.ADMIN)
def apply(request: Request, identity: SignedIn, plan_id: PlanId) -> Response:
    """Apply the plan file's current version to every active enrollment on it."""
    ctx = console_context(request)
    try:
        ctx.app.plan_rollout(identity.actor).apply(plan_id)
    except ReminderError as exc:
        return page(request, "refused.html", status_code=409, identity=identity, message=str(exc))
    ctx.wake_dispatcher()
    return RedirectResponse(f"{PREFIX}/plans/{plan_id}?notice=applied", status_code=303)


def _boolean(values: Sequence[object]) -> bool:
    return all(isinstance(v, bool) for v in values)
