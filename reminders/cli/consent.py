"""`opt-in EXT`: staff opt a patient back in to SMS (they agreed again)."""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli.options import JsonOption
from reminders.cli.output import echo_line, print_json
from reminders.cli.state import get_state


def opt_in(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(metavar="EXT", help="Patient's external id.")],
    note: Annotated[
        str, typer.Option("--note", help="How the patient agreed again (kept in the record).")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Opt a patient back in to SMS: what SMS stopping held back comes back while its window is
    open (not what staff cancelled, nor steps that went or will go by email)."""
    state = get_state(ctx)
    resumed = state.app.sms_consent(state.actor).resume_patient(external_id, note=note)
    if as_json:
        print_json(
            {
                "external_id": external_id,
                "opted_in": bool(resumed.opted_in),
                "restored_messages": resumed.restored,
            }
        )
        return
    if not resumed.opted_in:
        echo_line(f"{external_id} was not opted out of SMS; nothing changed")
        return
    echo_line(f"opted {external_id} back in to SMS: {resumed.restored} message(s) restored")
