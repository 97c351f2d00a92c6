"""One patient: contact and consent, enrollments, the timeline as a picture, and the actions
(edit contact, reschedule, cancel), each previewed as a change table before it is applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from reminders.access.service import StaffIdentity
from reminders.console import forms
from reminders.console.context import console_context
from reminders.console.guard import PREFIX, ConsoleRouter, SignedIn
from reminders.console.pictures import local_day, pain_chart, timeline_picture
from reminders.console.render import page
from reminders.enrollment_input import PatientChanges, input_problems
from reminders.errors import EnrollmentError, InputProblem, ReminderError
from reminders.inputs import Text, staff_text
from reminders.roles import Role
from reminders.schedule_diff import ChangeAction, MessageStatus, ScheduleChange
from reminders.store.records import PatientSearch

routes = ConsoleRouter()
ExternalId = Annotated[Text, Path(min_length=1, max_length=128)]
NOTICES = {
    "enrolled": "The patient is enrolled; their messages are scheduled.",
    "updated": "The patient was already enrolled on this plan; their details are updated.",
    "rescheduled": "The procedure is moved; pending messages follow it.",
    "contact": "The contact details are changed; the schedule is recomputed.",
    "cancelled": "The enrollment is cancelled; no further message will be sent.",
    "opted-in": "The patient is opted back in to SMS; messages the opt-out held back are "
    "restored while their send window is open.",
}


@dataclass(frozen=True)
class Action:
    """One change staff can make from the patient page."""

    key: str
    title: str
    verb: str


ACTIONS = {
    "reschedule": Action("reschedule", "Reschedule the procedure", "Reschedule"),
    "contact": Action("contact", "Edit contact details", "Save contact details"),
    "cancel": Action("cancel", "Cancel the enrollment", "Cancel the enrollment"),
    "opt-in": Action("opt-in", "Opt back in to SMS", "Opt back in to SMS"),
}


def patient_url(external_id: str, notice: str = "") -> str:
    """The patient page's address (the id is in the path, which the access log scrubs)."""
    return f"{PREFIX}/patients/{quote(external_id, safe='')}" + (
        f"?notice={notice}" if notice else ""
    )


@routes.page("/patients/{external_id:path}", Role.VIEWER)
def patient(request: Request, identity: SignedIn, external_id: ExternalId) -> Response:
    """The patient's contact, consent, enrollments, timeline picture and leg-pain chart."""
    storage = console_context(request).app.storage
    rows = storage.patient_lists.list_patients(
        limit=1, search=PatientSearch(external_id=external_id)
    )
    if not rows:
        return page(request, "not_found.html", status_code=404, what="patient")
    messages = storage.message_views.timeline(external_id)
    replies = list(reversed(storage.inbound.list_inbound(external_id=external_id, limit=1000)))
    outcomes = storage.outcomes.list_outcomes(external_id=external_id, limit=1000)
    enrollments = [
        {
            "row": row,
            "picture": timeline_picture(
                row.procedure_date, [m for m in messages if m.plan_id == row.plan_id], replies
            ),
        }
        for row in rows
        if row.plan_id is not None and row.procedure_date is not None
    ]
    first = rows[0]
    return page(
        request,
        "patient.html",
        identity=identity,
        active="patients",
        patient=first,
        enrollments=enrollments,
        unlinked_replies=[r for r in replies if r.in_reply_to_message_id is None],
        flags=storage.outcomes.list_flags(external_id=external_id, open_only=False, limit=100),
        chart=pain_chart(first.procedure_date, outcomes, first.timezone)
        if first.procedure_date
        else None,
        outcomes=outcomes,
        local_day=local_day,
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
        can_change=identity.role.allows(Role.STAFF),
        actions=ACTIONS,
    )


def _changes(
    request: Request, identity: StaffIdentity, external_id: str, key: str, form: Any, apply: bool
) -> tuple[list[ScheduleChange], list[InputProblem]]:
    """Preview (or apply) one action through the enrollment service."""
    ctx = console_context(request)
    service = ctx.app.enrollment(identity.actor)
    plan = forms.text(form, "plan", 64) or None
    problems: list[InputProblem] = []
    try:
        if key == "reschedule":
            when = forms.procedure_date(form, "procedure_date", problems)
            at = forms.local_time(form, "procedure_time", problems)
            if problems or when is None:
                return [], problems
            call = service.reschedule if apply else service.preview_reschedule
            return list(call(external_id, when, at, plan).changes), []
        if key == "contact":
            changes = read_changes(
                {
                    "phone": forms.text(form, "phone") or None,
                    "email": forms.text(form, "email") or None,
                    "preferred_channel": forms.text(form, "preferred_channel"),
                }
            )
            outcome = service.update_patient(external_id, changes, plan, dry_run=not apply)
            return list(outcome.changes), []
        if key == "opt-in":
            return _opt_in(request, identity, external_id, forms.text(form, "note"), apply)
        reason = forms.text(form, "reason") or "cancelled by staff"
        preview = service.preview_cancel(external_id, plan)
        if apply:
            service.cancel(external_id, reason, plan)
        else:
            staff_text("reason", reason)  # the rule cancel applies, told at the preview
        return [
            ScheduleChange(c.step_id, c.action, c.old_due_at, None, reason) for c in preview
        ], []
    except EnrollmentError as exc:
        return [], list(exc.problems)
    except ReminderError as exc:
        return [], [InputProblem("(patient)", str(exc))]


# Text messages an opt-in may bring back: held back, or skipped, with the reason why.
HELD_BACK = frozenset({MessageStatus.PENDING, MessageStatus.SKIPPED})


def _opt_in(
    request: Request, identity: StaffIdentity, external_id: str, note: str, apply: bool
) -> tuple[list[ScheduleChange], list[InputProblem]]:
    """Opting back in: the preview lists the messages now held back or skipped (the service
    restores those the opt-out held back while their window is open); applying resumes SMS."""
    app = console_context(request).app
    if apply:
        app.sms_consent(identity.actor).resume_patient(external_id, note=note)
        return [], []
    staff_text("note", note)  # the rule resume_patient applies, told at the preview
    held = [
        ScheduleChange(m.step_id, ChangeAction.RESTORE, m.due_at, None, m.status_reason)
        for m in app.storage.message_views.timeline(external_id)
        if m.channel == "sms" and m.status in HELD_BACK and m.status_reason
    ]
    return held, []


def read_changes(fields: dict[str, Any]) -> PatientChanges:
    """The contact form as the service's typed changes, or EnrollmentError naming each field."""
    try:
        return PatientChanges.model_validate(fields)
    except ValidationError as exc:
        raise EnrollmentError(input_problems(exc)) from None


def _preview(
    request: Request,
    identity: StaffIdentity,
    external_id: str,
    key: str,
    refused: list[InputProblem] | None = None,
) -> Response:
    """The change table, with the problems that stopped applying it (`refused`), if any."""
    form = request.state.form
    changes, problems = _changes(request, identity, external_id, key, form, apply=False)
    problems = problems or refused or []
    rows = console_context(request).app.storage.patient_lists.list_patients(
        limit=1, search=PatientSearch(external_id=external_id)
    )
    return page(
        request,
        "patient_change.html",
        status_code=422 if problems else 200,
        identity=identity,
        active="patients",
        external_id=external_id,
        zone=rows[0].timezone if rows else "UTC",
        action=ACTIONS[key],
        values={name: forms.text(form, name) for name in form if name != "csrf_token"},
        changes=[c for c in changes if c.changed],
        kept=sum(1 for c in changes if not c.changed),
        problems=problems,
    )


def _apply(request: Request, identity: StaffIdentity, external_id: str, key: str) -> Response:
    changes, problems = _changes(
        request, identity, external_id, key, request.state.form, apply=True
    )
    if problems:
        return _preview(request, identity, external_id, key, problems)
    console_context(request).wake_dispatcher()
    notice = {
        "reschedule": "rescheduled",
        "contact": "contact",
        "cancel": "cancelled",
        "opt-in": "opted-in",
    }[key]
    del changes
    return RedirectResponse(patient_url(external_id, notice), status_code=303)


def _register(key: str) -> None:
    @routes.action(f"/patients/{{external_id:path}}/{key}/preview", Role.STAFF)
    def preview(request: Request, identity: SignedIn, external_id: ExternalId) -> Response:
        return _preview(request, identity, external_id, key)

    @routes.action(f"/patients/{{external_id:path}}/{key}", Role.STAFF)
    def apply(request: Request, identity: SignedIn, external_id: ExternalId) -> Response:
        return _apply(request, identity, external_id, key)

    preview.__doc__ = f"What '{ACTIONS[key].title.lower()}' would change, before it is applied."
    apply.__doc__ = f"{ACTIONS[key].title}, as previewed."


for _key in ACTIONS:
    _register(_key)
