"""`reminders plans preview PLAN`: a plan's whole timeline for one made-up patient."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from reminders.cli.options import JsonOption, parse_attrs, parse_date, parse_time, parse_zone
from reminders.cli.output import local_iso, local_time, print_json, stdout, table, utc_iso, utc_time
from reminders.cli.state import get_state
from reminders.cli.texts import with_subject

if TYPE_CHECKING:
    from reminders.schedule import PlannedMessage
    from reminders.templating.render import RenderedMessage

WIDE = 140  # columns from which the timeline fits one table


def preview(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="Plan id.")],
    procedure_date: Annotated[str, typer.Option("--procedure-date", help="YYYY-MM-DD.")],
    tz: Annotated[str, typer.Option("--timezone", "--tz", help="Patient's IANA time zone.")],
    procedure_time: Annotated[
        str | None, typer.Option("--procedure-time", help="HH:MM local.")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="e.g. en, es.")] = None,
    channel: Annotated[str, typer.Option("--channel", help="sms or email.")] = "sms",
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Patient attribute key=value (repeat).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show every message of a plan for a sample patient, in the patient's local time."""
    from rich.panel import Panel

    from reminders.plans.model import contact_channel
    from reminders.sample_timeline import sample_timeline

    state = get_state(ctx)
    try:
        sent_by = contact_channel(channel)
    except ValueError:
        raise typer.BadParameter("expected sms or email", param_hint="--channel") from None
    plan = state.catalog.get(plan_id).plan
    day = parse_date(procedure_date)
    zone = parse_zone(tz)
    planned = [
        (item.planned, item.rendered)
        for item in sample_timeline(
            plan,
            state.catalog.renderer,
            state.clinic,
            procedure_date=day,
            timezone=zone,
            procedure_time=parse_time(procedure_time),
            language=(language or state.settings.default_language).lower(),
            channel=sent_by,
            attributes=parse_attrs(attr),
        )
    ]
    if json_output:
        print_json([_preview_json(message, rendered, zone) for message, rendered in planned])
        return
    title = f"{plan.name} (v{plan.version}): procedure {day} in {zone}"
    console = stdout()
    if console.width >= WIDE:
        grid = table(
            title,
            ["Local time", "UTC", "Step", "Phase", "Channel", "SMS", "Notes", "Text"],
            (_preview_cells(message, rendered, zone) for message, rendered in planned),
        )
        grid.show_lines = True
        console.print(grid)
        return
    console.print(title, style="bold")
    for message, rendered in planned:
        cells = _preview_cells(message, rendered, zone)
        utc_clock = cells[1].split(" ")[-1]
        heading = " · ".join(
            part for part in [f"{cells[0]} ({utc_clock})", cells[2], *cells[4:6]] if part
        )
        notes = cells[6]
        console.print(Panel(cells[7], title=heading, title_align="left", subtitle=notes or None))


def _notes(message: PlannedMessage) -> list[str]:
    skipped = [f"skipped: {message.skip_reason}"] if message.skip_reason else []
    return [*message.notes, *skipped]


def _preview_json(message: PlannedMessage, rendered: RenderedMessage, zone: str) -> dict[str, Any]:
    size = rendered.sms
    return {
        "local_time": local_iso(message.due_at, zone),
        "local": local_time(message.due_at, zone),
        "utc": utc_iso(message.due_at),
        "step_id": message.step_id,
        "phase": message.phase.value,
        "channel": message.channel,
        "language": rendered.language,
        "segments": size.segments if size else None,
        "encoding": size.encoding if size else None,
        "notes": list(message.notes),
        "skip_reason": message.skip_reason,
        "subject": rendered.subject,
        "text": rendered.body,
    }


def _preview_cells(message: PlannedMessage, rendered: RenderedMessage, zone: str) -> list[str]:
    size = rendered.sms
    return [
        local_time(message.due_at, zone),
        utc_time(message.due_at),
        message.step_id,
        message.phase.value,
        f"{message.channel} ({rendered.language})",
        f"{size.segments} × {size.encoding}" if size else "",
        "\n".join(_notes(message)),
        with_subject(rendered),
    ]
