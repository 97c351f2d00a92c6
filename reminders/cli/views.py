"""Staff views: `patients`, `timeline EXT` and `messages`; list views mask contact details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reminders.cli.options import JsonOption, parse_since
from reminders.cli.output import (
    KEEP,
    Column,
    echo_line,
    fitted_table,
    local_iso,
    local_time,
    print_json,
    stdout,
    utc_iso,
    utc_time,
)
from reminders.cli.state import CliState, get_state
from reminders.cli.texts import preview_text
from reminders.clock import utc_now
from reminders.redact import mask_address

if TYPE_CHECKING:
    from reminders.store.message_records import MessageView
    from reminders.store.records import (
        EnrollmentDetails,
        PatientSummary,
        StoredEnrollment,
        StoredPatient,
    )
    from reminders.templating.context import PatientFacts

# MessageStatus's values, written out so that help needs no database module (a test compares).
STATUSES = ("pending", "sending", "sent", "failed", "skipped", "cancelled", "undelivered")


def message_json(view: MessageView) -> dict[str, Any]:
    """A stored message with its due time on the patient's clock and in UTC."""
    return {
        "id": view.id,
        "external_id": view.external_id,
        "plan_id": view.plan_id,
        "step_id": view.step_id,
        "phase": view.phase,
        "channel": view.channel,
        "status": view.status,
        "status_reason": view.status_reason,
        "timezone": view.timezone,
        "local_time": local_iso(view.due_at, view.timezone),
        "local": local_time(view.due_at, view.timezone),
        "utc": utc_iso(view.due_at),
        "next_attempt_utc": utc_iso(view.next_attempt_at),
        "sent_at_utc": utc_iso(view.sent_at),
        "attempts": view.attempts,
        "provider_message_id": view.provider_message_id,
        "provider_status": view.provider_status,
        "error_code": view.error_code,
    }


def message_cells(view: MessageView) -> list[str | None]:
    """When, what and how it went, for one message in a patient's own timeline."""
    return [
        local_time(view.due_at, view.timezone),
        utc_time(view.due_at),
        view.step_id,
        view.channel,
        view.status,
        view.status_reason,
    ]


MESSAGE_COLUMNS = [
    Column("Local time", keep=8),
    Column("UTC", keep=2),
    Column("Step", keep=7),
    Column("Channel", keep=3),
    Column("Status", keep=9),
    Column("Reason", keep=6, wrap_at=14),
]
TIMELINE_TABLE_WIDTH = 140  # narrower terminals get one record per message


def _patient_json(summary: PatientSummary) -> dict[str, Any]:
    return {
        "external_id": summary.external_id,
        "first_name": summary.first_name,
        "phone": mask_address(summary.phone) or None,
        "email": mask_address(summary.email) or None,
        "timezone": summary.timezone,
        "language": summary.language,
        "preferred_channel": summary.preferred_channel,
        "sms_opted_out": summary.sms_opted_out_at is not None,
        "plan_id": summary.plan_id,
        "procedure_date": summary.procedure_date,
        "enrollment_status": summary.enrollment_status,
        "pending": summary.pending,
        "sent": summary.sent,
        "failed": summary.failed,
    }


def patients(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many patients.")] = 500,
    after: Annotated[
        str | None,
        typer.Option("--after", metavar="EXT", help="Continue after this patient (next page)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List patients with their plan and message counts (phone and email masked)."""
    summaries = get_state(ctx).app.storage.patient_lists.list_patients(limit=limit, after=after)
    if json_output:
        print_json([_patient_json(s) for s in summaries])
        return
    columns = [
        *(Column("ID", keep=KEEP), Column("Name", keep=8, wrap_at=10), Column("Phone", keep=7)),
        *(Column("Email", keep=3), Column("Zone", keep=2), Column("Lang", keep=1)),
        *(Column("Prefers", keep=2, wrap_at=10), Column("Plan", keep=4)),
        *(Column("Procedure", keep=6), Column("Status", keep=6), Column("Pending", keep=5)),
        *(Column("Sent", keep=4), Column("Failed", keep=5)),
    ]
    rows = [
        [
            s.external_id,
            s.first_name,
            mask_address(s.phone),
            mask_address(s.email),
            s.timezone,
            s.language,
            s.preferred_channel + (" (opted out of SMS)" if s.sms_opted_out_at else ""),
            s.plan_id,
            s.procedure_date,
            s.enrollment_status,
            s.pending,
            s.sent,
            s.failed,
        ]
        for s in summaries
    ]
    console = stdout()
    console.print(fitted_table(f"{len(rows)} patient(s)", columns, rows, console.width))
    if len({s.external_id for s in summaries}) >= limit:
        echo_line(f"More: reminders patients --after {summaries[-1].external_id}")


def messages(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help=f"One of: {', '.join(STATUSES)}.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help='Changed since: "24h", "7d" or an ISO time (naive = UTC).'),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 500,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="CURSOR", help="Continue a list (printed under it)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List messages across patients, most recently changed first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"expected one of: {', '.join(STATUSES)}", param_hint="--status")
    try:
        from reminders.store.message_records import MessageCursor

        cursor = MessageCursor.parse(before) if before is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--before") from None
    from reminders.schedule_diff import MessageStatus

    views = get_state(ctx).app.storage.message_views.list_messages(
        status=MessageStatus(status) if status else None,
        since=parse_since(since, utc_now()),
        limit=limit,
        before=cursor,
    )
    if json_output:
        print_json([message_json(v) for v in views])
        return
    columns = [Column("Patient", keep=KEEP), Column("Plan", keep=1), *MESSAGE_COLUMNS]
    columns.append(Column("Tries", keep=1))
    rows = [[v.external_id, v.plan_id, *message_cells(v), v.attempts] for v in views]
    console = stdout()
    console.print(fitted_table(f"{len(rows)} message(s)", columns, rows, console.width))
    if len(views) >= limit:
        echo_line(f"More: reminders messages --before {views[-1].cursor} (same filters)")


def _facts(details: EnrollmentDetails) -> tuple[PatientFacts, str]:
    from reminders.templating.context import PatientFacts

    patient, enrollment = details.patient, details.enrollment
    facts = PatientFacts(
        first_name=patient.first_name,
        procedure_date=enrollment.procedure_date,
        procedure_time=enrollment.procedure_time,
        attributes=dict(patient.attributes),
    )
    return facts, patient.language


def timeline_texts(
    state: CliState, views: list[MessageView], details: Mapping[str, EnrollmentDetails]
) -> dict[int, tuple[str, bool]]:
    """Each message's text and whether it is a preview (not sent yet) rather than what was sent."""
    from reminders.store.schema import MessageStatus

    sms_sent = any(v.channel == "sms" and v.status is MessageStatus.SENT for v in views)
    first_sms_open = not sms_sent
    texts: dict[int, tuple[str, bool]] = {}
    for view in views:
        if view.body is not None:
            texts[view.id] = (view.body, False)
            continue
        first_sms = (
            first_sms_open and view.channel == "sms" and view.status is MessageStatus.PENDING
        )
        first_sms_open = first_sms_open and not first_sms
        facts, language = _facts(details[view.plan_id])
        text = preview_text(
            state.catalog,
            view.plan_id,
            view.step_id,
            view.channel,
            language,
            facts,
            state.clinic,
            first_sms=first_sms,
        )
        texts[view.id] = (text, True)
    return texts


def timeline(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(metavar="EXT", help="Patient's external id.")],
    json_output: JsonOption = False,
) -> None:
    """Every message of one patient: local and UTC time, channel, status, reason and text."""
    state = get_state(ctx)
    patients = state.app.storage.patients
    views = state.app.storage.message_views.timeline(external_id)
    details = {
        plan_id: patients.enrollment_details(patients.enrollment_id(external_id, plan_id)[0])
        for plan_id in dict.fromkeys(v.plan_id for v in views)
    }
    texts = timeline_texts(state, views, details)
    patient = next(iter(details.values())).patient if details else None
    enrollments = [d.enrollment for d in details.values()]
    if json_output:
        print_json(
            {
                "external_id": external_id,
                "patient": _contact(patient) if patient else None,
                "enrollments": [_enrollment_json(e) for e in enrollments],
                "messages": [
                    {
                        **message_json(v),
                        "text": texts[v.id][0],
                        "text_is_preview": texts[v.id][1],
                    }
                    for v in views
                ],
            }
        )
        return
    if patient:
        echo_line(_header(patient))
        for enrollment in enrollments:
            echo_line(_enrollment_line(enrollment))
    console = stdout()
    title = f"{len(views)} message(s)"
    if console.width >= TIMELINE_TABLE_WIDTH:
        rows = [[*message_cells(v), _text_cell(*texts[v.id])] for v in views]
        columns = [*MESSAGE_COLUMNS, Column("Text", keep=KEEP, wrap_at=40)]
        grid = fitted_table(title, columns, rows, console.width)
        grid.show_lines = True
        console.print(grid)
        return
    console.print(title)
    for view in views:
        console.print(_message_record(view, *texts[view.id]))


def _message_record(view: MessageView, text: str, is_preview: bool) -> Any:
    """One message on a narrow terminal: a heading line, then its text indented below."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    heading = " · ".join(
        part
        for part in (
            f"{local_time(view.due_at, view.timezone)} ({utc_time(view.due_at)})",
            view.step_id,
            view.channel,
            view.status,
            view.status_reason,
        )
        if part
    )
    body = Text(_text_cell(text, is_preview), overflow="fold")
    return Group(Text(heading, style="bold"), Padding(body, (0, 0, 1, 2)))


def _contact(patient: StoredPatient) -> dict[str, Any]:
    contact = asdict(patient)
    del contact["id"]
    return contact


def _enrollment_json(enrollment: StoredEnrollment) -> dict[str, Any]:
    shown = asdict(enrollment)
    del shown["id"]
    return shown | {"warnings": list(enrollment.warnings)}


def _header(patient: StoredPatient) -> str:
    contact = " · ".join(
        part
        for part in (
            patient.phone,
            patient.email,
            patient.timezone,
            f"language {patient.language}",
            f"prefers {patient.preferred_channel}",
            "" if patient.sms_consent else "no SMS consent",
            "opted out of SMS" if patient.sms_opted_out_at else "",
            "phone refused by the provider" if patient.phone_invalid_at else "",
        )
        if part
    )
    return f"{patient.first_name} ({patient.external_id}): {contact}"


def _enrollment_line(enrollment: StoredEnrollment) -> str:
    at = f" {enrollment.procedure_time:%H:%M}" if enrollment.procedure_time else ""
    reason = f" ({enrollment.status_reason})" if enrollment.status_reason else ""
    warnings = "".join(f"\n    warning: {warning}" for warning in enrollment.warnings)
    return (
        f"  plan {enrollment.plan_id} v{enrollment.plan_version}: procedure "
        f"{enrollment.procedure_date}{at}, {enrollment.status}{reason}{warnings}"
    )


def _text_cell(text: str, is_preview: bool) -> str:
    return f"(preview) {text}" if is_preview else text
