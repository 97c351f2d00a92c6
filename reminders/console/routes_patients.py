"""The patient list: search by external id or name, filters, keyset pages, contacts masked."""

from __future__ import annotations

import base64
import binascii
from datetime import date

from fastapi import Request
from fastapi.responses import Response

from reminders.console.context import console_context
from reminders.console.filters import unstorable
from reminders.console.guard import ConsoleRouter, SignedIn
from reminders.console.render import page
from reminders.inputs import storable
from reminders.roles import Role
from reminders.store.records import PatientSearch, PatientSummary
from reminders.store.schema import EnrollmentStatus

routes = ConsoleRouter()
PAGE_SIZE = 50
MAX_TEXT = 128


def encode_cursor(external_id: str) -> str:
    """A page cursor that does not show the patient's id in the address bar."""
    return base64.urlsafe_b64encode(external_id.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    """The external id a cursor continues after, or None when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return storable(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError):
        return None


def _date(value: str, label: str, problems: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{label}: expected a date as YYYY-MM-DD, e.g. 2026-03-02")
        return None


@routes.page("/patients", Role.VIEWER)
def patients(request: Request, identity: SignedIn) -> Response:
    """One page of patients matching the search, in external-id order."""
    ctx = console_context(request)
    params = request.query_params
    plans = ctx.app.catalog.ids()
    form = {name: params.get(name, "")[:MAX_TEXT] for name in ("q", "plan", "status", "from", "to")}
    problems = unstorable(form)
    if form["plan"] and form["plan"] not in plans:
        problems.append(f"plan: no plan '{form['plan']}'; choose one of the list")
    statuses = [s.value for s in EnrollmentStatus]
    if form["status"] and form["status"] not in statuses:
        problems.append(f"status: expected one of {', '.join(statuses)}")
    search = PatientSearch(
        text=form["q"],
        plan_id=form["plan"] if form["plan"] in plans else None,
        status=EnrollmentStatus(form["status"]) if form["status"] in statuses else None,
        procedure_from=_date(form["from"], "procedure from", problems),
        procedure_to=_date(form["to"], "procedure to", problems),
    )
    after = decode_cursor(params.get("after", "")) if params.get("after") else None
    rows = ctx.app.storage.patient_lists.list_patients(limit=PAGE_SIZE, after=after, search=search)
    return page(
        request,
        "patients.html",
        identity=identity,
        active="patients",
        form=form,
        plans=plans,
        statuses=statuses,
        problems=problems,
        rows=rows,
        next_cursor=_next_cursor(rows),
        first_page=after is None,
    )


def _next_cursor(rows: list[PatientSummary]) -> str | None:
    """Where the next page starts, when this one is full."""
    if len({row.external_id for row in rows}) < PAGE_SIZE:
        return None
    return encode_cursor(rows[-1].external_id)
