"""`reminders hl7 ...`: scheduling messages from files, the message log, the mapping check."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from reminders.cli.options import JsonOption, command_group
from reminders.cli.output import counts_line, echo_line, print_json, stdout, table, utc_time
from reminders.cli.state import get_state

app = command_group(
    "HL7 v2 scheduling messages (SIU): import files, read the message log, check the mapping file."
)


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="File of SIU messages."),
    ],
    json_output: JsonOption = False,
) -> None:
    """Process every SIU message in a file (plain or MLLP-framed); exit 1 if any was refused."""
    from reminders.integrations.wiring import hl7_handler

    replies = hl7_handler(get_state(ctx).app).handle_file(file.read_bytes())
    counts = Counter(reply.outcome for reply in replies)
    if json_output:
        print_json(
            {
                "messages": len(replies),
                "outcomes": dict(counts),
                "replies": [
                    {k: v for k, v in reply.__dict__.items() if k != "ack"} for reply in replies
                ],
            }
        )
    else:
        for number, reply in enumerate(replies, start=1):
            if reply.ack_code != "AA" or reply.refused:
                echo_line(
                    f"message {number} ({reply.control_id or 'no control id'}): "
                    f"{reply.ack_code} {reply.outcome}: {reply.detail}",
                    err=True,
                )
        echo_line(f"{len(replies)} message(s): {counts_line(dict(sorted(counts.items())))}")
    if any(reply.refused for reply in replies):
        raise typer.Exit(1)


@app.command("log")
def log(
    ctx: typer.Context,
    refused: Annotated[
        bool, typer.Option("--refused", help="Only messages refused (AE) or rejected (AR).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    show: Annotated[
        int | None,
        typer.Option("--show", help="Print the raw text of the message with this log id."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Messages received from the scheduling system (HL7 and FHIR), newest first."""
    feeds = get_state(ctx).app.storage.feeds
    records = feeds.list_messages(refused_only=refused, limit=limit if show is None else 10000)
    if show is not None:
        chosen = [record for record in records if record.id == show]
        if not chosen:
            echo_line(f"error: no logged message {show}", err=True)
            raise typer.Exit(1)
        record = chosen[0]
        echo_line(f"{record.outcome} ({record.ack_code}): {record.detail}")
        echo_line(record.raw.replace("\r", "\n") if record.raw else "(raw text no longer kept)")
        return
    if json_output:
        print_json({"counts": feeds.outcome_counts(), "messages": records})
        return
    echo_line("all messages: " + counts_line(dict(sorted(feeds.outcome_counts().items()))))
    rows = [
        [
            r.id,
            utc_time(r.received_at),
            f"{r.source} {r.sender}",
            r.message_id,
            r.event,
            r.appointment_id,
            r.external_id,
            r.outcome,
            r.ack_code,
            r.detail,
        ]
        for r in records
    ]
    columns = ["ID", "Received", "From", "Control id", "Event", "Appointment", "Patient id"]
    stdout().print(table(None, [*columns, "Outcome", "ACK", "Why"], rows))


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(help="Mapping file (default: REMINDERS_SCHEDULING_MAPPING)."),
    ] = None,
) -> None:
    """Check the mapping file: structure, time zones, that every plan exists and that its
    attributes fit the plans' declarations."""
    from reminders.integrations.mapping import load_mapping

    state = get_state(ctx)
    path = file or state.settings.scheduling_mapping
    catalog = state.catalog
    declared = {plan_id: catalog.get(plan_id).plan.attributes for plan_id in catalog.ids()}
    mapping = load_mapping(path, catalog.ids(), declared)
    echo_line(
        f"{path}: ok ({len(mapping.rules)} rule(s), {len(mapping.sites)} site(s), "
        f"refusals answered {mapping.refusals})"
    )
