"""Enrolling: one patient by form, or many from a CSV file (dry run first, then the good rows).

Both go through the enrollment service with the typed input every entry point uses, so the
form and the file are checked, and explained, as the CLI and the API are.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from reminders.access.service import StaffIdentity
from reminders.console import forms
from reminders.console.context import console_context
from reminders.console.guard import ConsoleRouter, SignedIn
from reminders.console.render import page
from reminders.console.routes_patient import patient_url
from reminders.csv_import import ImportSummary
from reminders.enrollment_input import read_input
from reminders.errors import EnrollmentError, InputProblem, ReminderError
from reminders.plans.model import Scalar
from reminders.roles import Role

routes = ConsoleRouter()
FIELDS = (
    "external_id",
    "first_name",
    "phone",
    "email",
    "timezone",
    "language",
    "preferred_channel",
    "plan",
    "procedure_date",
    "procedure_time",
)
ATTR_PREFIX = "attr_"
CONSENT_ANSWERS = {"yes": True, "no": False}
MAX_UPLOAD_BYTES = 10_000_000


def _conditions(request: Request) -> dict[str, list[Scalar]]:
    """Every attribute some plan's steps look at (the form asks for each)."""
    catalog = console_context(request).app.catalog
    found: dict[str, list[Scalar]] = {}
    for plan_id in catalog.ids():
        for name, values in catalog.get(plan_id).plan.conditions().items():
            found.setdefault(name, []).extend(v for v in values if v not in found[name])
    return dict(sorted(found.items()))


def _enroll_form(
    request: Request,
    identity: StaffIdentity,
    values: dict[str, str],
    problems: list[InputProblem],
    status_code: int = 200,
) -> Response:
    try:
        plans = console_context(request).app.catalog.ids()
        conditions = _conditions(request)
    except ReminderError as exc:
        plans, conditions = [], {}
        problems = [*problems, InputProblem("plan", f"the plans do not load: {exc}")]
    return page(
        request,
        "enroll.html",
        status_code=status_code,
        identity=identity,
        active="enroll",
        values=values,
        problems=problems,
        bad_fields={p.field for p in problems},
        plans=plans,
        conditions=conditions,
        default_region=console_context(request).app.settings.default_region,
    )


@routes.page("/enroll", Role.STAFF)
def enroll_page(request: Request, identity: SignedIn) -> Response:
    """The enrollment form."""
    return _enroll_form(request, identity, {}, [])


@routes.action("/enroll", Role.STAFF)
def enroll(request: Request, identity: SignedIn) -> Response:
    """Enroll (or update) one patient; a refused field is named next to the form."""
    form = request.state.form
    values = {name: forms.text(form, name) for name in form if name != "csrf_token"}
    fields: dict[str, Any] = {name: values.get(name, "") for name in FIELDS}
    # Unanswered stays None: the service then takes the plan's default or asks for an answer.
    fields["sms_consent"] = CONSENT_ANSWERS.get(values.get("sms_consent", ""))
    fields["attributes"] = {
        name.removeprefix(ATTR_PREFIX): value
        for name, value in values.items()
        if name.startswith(ATTR_PREFIX) and value
    }
    ctx = console_context(request)
    try:
        outcome = ctx.app.enrollment(identity.actor).enroll_one(read_input(fields))
    except EnrollmentError as exc:
        return _enroll_form(request, identity, values, list(exc.problems), status_code=422)
    except ReminderError as exc:
        problem = InputProblem("(enrollment)", str(exc))
        return _enroll_form(request, identity, values, [problem], status_code=422)
    ctx.wake_dispatcher()
    notice = "enrolled" if outcome.created else "updated"
    return RedirectResponse(patient_url(outcome.external_id, notice), status_code=303)


@routes.page("/import", Role.STAFF)
def import_page(request: Request, identity: SignedIn) -> Response:
    """Choose a CSV file to check."""
    return page(request, "import.html", identity=identity, active="import", error="")


@routes.action("/import/check", Role.STAFF)
def import_check(request: Request, identity: SignedIn) -> Response:
    """A dry run of the uploaded file: every bad row by line, and what the good rows would do."""
    upload = request.state.form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_refused(request, identity, 422, "Choose a CSV file to check.")
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _import_refused(
            request,
            identity,
            413,
            f"The file is over {MAX_UPLOAD_BYTES // 1_000_000} MB; split it.",
        )
    ctx = console_context(request)
    try:
        summary = ctx.app.csv_import(identity.actor).run(data, dry_run=True)
    except EnrollmentError as exc:
        return _import_refused(request, identity, 422, str(exc))
    good = summary.created + summary.updated + summary.unchanged
    token = ctx.uploads.put(identity.session_id, upload.filename, data) if good else ""
    return _summary(request, identity, upload.filename, summary, token)


@routes.action("/import", Role.STAFF)
def import_file(request: Request, identity: SignedIn) -> Response:
    """Import the good rows of the file the dry run checked (bad rows are reported again)."""
    ctx = console_context(request)
    token = forms.text(request.state.form, "upload", 64)
    upload = ctx.uploads.take(identity.session_id, token)
    if upload is None:
        return _import_refused(
            request,
            identity,
            409,
            "That checked file is no longer here (imported already, or over 30 minutes "
            "old). Upload it again.",
        )
    try:
        summary = ctx.app.csv_import(identity.actor).run(upload.data)
    except EnrollmentError as exc:
        return _import_refused(request, identity, 422, str(exc))
    ctx.wake_dispatcher()
    return _summary(request, identity, upload.name, summary, "")


def _import_refused(
    request: Request, identity: StaffIdentity, status_code: int, error: str
) -> Response:
    """The import page again, saying why the file was not checked or imported."""
    return page(
        request,
        "import.html",
        status_code=status_code,
        identity=identity,
        active="import",
        error=error,
    )


def _summary(
    request: Request, identity: StaffIdentity, name: str, summary: ImportSummary, token: str
) -> Response:
    return page(
        request,
        "import_result.html",
        identity=identity,
        active="import",
        name=name,
        summary=summary,
        counts=summary.counts(),
        token=token,
    )
