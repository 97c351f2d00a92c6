"""One patient at a time: `enroll`, `reschedule EXT` and `cancel EXT`."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from reminders.cli.options import JsonOption, parse_attrs, parse_date, parse_time
from reminders.cli.output import (
    KEEP,
    Column,
    counts_line,
    echo_line,
    fitted_table,
    local_time,
    print_json,
    stdout,
)
from reminders.cli.state import CliState, get_state
from reminders.cli.views import MESSAGE_COLUMNS, message_cells, message_json
from reminders.clock import utc_now

if TYPE_CHECKING:
    from reminders.store.records import EnrollmentOutcome

PlanOption = Annotated[
    str | None, typer.Option("--plan", help="Plan id (needed when the patient is on several).")
]


def enroll(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Option("--id", help="The clinic's id for the patient.")],
    first_name: Annotated[str, typer.Option("--first-name", help="As messages greet them.")],
    tz: Annotated[
        str, typer.Option("--timezone", "--tz", help="IANA time zone, e.g. America/Chicago.")
    ],
    plan: Annotated[str, typer.Option("--plan", help="Plan id.")],
    procedure_date: Annotated[str, typer.Option("--procedure-date", help="YYYY-MM-DD.")],
    phone: Annotated[str | None, typer.Option("--phone", help="Mobile number.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Email address.")] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="e.g. en, es (default from settings).")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="sms or email (default: sms with a phone, else email)."),
    ] = None,
    sms_consent: Annotated[
        bool | None,
        typer.Option(
            "--sms-consent/--no-sms-consent",
            help="Whether the patient agreed to receive texts (required with --phone unless "
            "the plan states a default).",
        ),
    ] = None,
    procedure_time: Annotated[
        str | None, typer.Option("--procedure-time", help="HH:MM local.")
    ] = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Attribute key=value (repeat).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Enroll a patient on a plan (or update them) and show their planned messages."""
    from reminders.enrollment_input import read_input
    from reminders.schedule_diff import MessageStatus

    state = get_state(ctx)
    item = read_input(
        {
            "external_id": external_id,
            "first_name": first_name,
            "phone": phone,
            "email": email,
            "timezone": tz,
            "language": language,
            "preferred_channel": channel,
            "sms_consent": sms_consent,
            "plan": plan,
            "procedure_date": procedure_date,
            "procedure_time": procedure_time,
            "attributes": parse_attrs(attr),
        }
    )
    service = state.enrollment()
    entry = service.validate(item)
    outcome = service.enroll([entry])[0]
    views = [
        v
        for v in state.app.storage.message_views.timeline(external_id)
        if v.plan_id == entry.item.plan
    ]
    if json_output:
        print_json(
            {
                "external_id": outcome.external_id,
                "plan_id": entry.item.plan,
                "created": outcome.created,
                "changes": _action_counts(outcome),
                "warnings": list(outcome.warnings),
                "messages": [message_json(v) for v in views],
            }
        )
        return
    for warning in outcome.warnings:
        echo_line(f"warning: {warning}", err=True)
    verb = "enrolled" if outcome.created else "updated"
    pending = [v for v in views if v.status is MessageStatus.PENDING]
    console = stdout()
    console.print(
        fitted_table(
            f"{verb} {outcome.external_id} on {entry.item.plan}: {len(pending)} message(s) pending",
            MESSAGE_COLUMNS,
            (message_cells(v) for v in views),
            console.width,
        )
    )
    overdue = sum(1 for v in pending if v.due_at <= utc_now())
    if overdue:
        echo_line(
            f"note: {overdue} message(s) are already due and go out with the next dispatch "
            "pass (steps already past their window are recorded as skipped above)"
        )


def _action_counts(outcome: EnrollmentOutcome) -> dict[str, int]:
    return dict(Counter(change.action for change in outcome.changes))


def _show_outcome(state: CliState, outcome: EnrollmentOutcome, title: str) -> None:
    zone = state.app.storage.patients.enrollment_details(outcome.enrollment_id).patient.timezone
    from reminders.schedule import PAST_WINDOW
    from reminders.schedule_diff import ChangeAction

    changed = [c for c in outcome.changes if c.changed]
    if changed:
        console = stdout()
        columns = [
            *(Column("Step", keep=KEEP), Column("Change", keep=KEEP)),
            *(Column("Old (local)", keep=3), Column("New (local)", keep=5)),
            Column("Reason", keep=4, wrap_at=16),
        ]
        rows = (
            [
                c.step_id,
                c.action,
                local_time(c.old_due_at, zone),
                local_time(c.new_due_at, zone),
                c.reason,
            ]
            for c in changed
        )
        console.print(fitted_table(title, columns, rows, console.width))
    else:
        echo_line(title)
    echo_line(f"messages: {counts_line(_action_counts(outcome))} (sent ones stay as they were)")
    past = [
        c.step_id
        for c in changed
        if c.action is ChangeAction.SKIP and PAST_WINDOW in (c.reason or "")
    ]
    if past:
        echo_line(f"skipped as already past: {', '.join(past)}")


def reschedule(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(metavar="EXT", help="Patient's external id.")],
    procedure_date: Annotated[str, typer.Option("--procedure-date", help="YYYY-MM-DD.")],
    procedure_time: Annotated[
        str | None, typer.Option("--procedure-time", help="HH:MM local.")
    ] = None,
    plan: PlanOption = None,
) -> None:
    """Move a patient's procedure: pending messages move with it, sent ones stay as they were."""
    state = get_state(ctx)
    outcome = state.enrollment().reschedule(
        external_id, parse_date(procedure_date), parse_time(procedure_time), plan
    )
    _show_outcome(state, outcome, f"rescheduled {external_id} to {procedure_date}")


def cancel(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(metavar="EXT", help="Patient's external id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Recorded on every cancelled message.")
    ] = "cancelled by staff",
    plan: PlanOption = None,
) -> None:
    """Cancel a patient's enrollment and every message not sent yet."""
    count = get_state(ctx).enrollment().cancel(external_id, reason, plan)
    echo_line(f"cancelled {external_id}: {count} pending message(s) will not be sent")
