"""The `reminders` command: one typer app; each command lives in the module for its job."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from reminders.cli import (
    api_keys,
    db,
    dispatch,
    doctor,
    enroll,
    importing,
    outcomes,
    plans,
    views,
)
from reminders.cli import hl7 as hl7_cli
from reminders.cli.errors import ReminderGroup
from reminders.cli.state import CliState, read_settings

app = typer.Typer(
    name="reminders",
    cls=ReminderGroup,
    help="Recovery-plan reminders: plan files, enrollment, and SMS/email dispatch.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold patient data
    add_completion=False,
)


def _package_version() -> str:
    try:
        return version("reminders")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"reminders {_package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Settings come from REMINDERS_* environment variables (and a .env file)."""
    state = CliState(read_settings())
    ctx.obj = state
    ctx.call_on_close(state.close)


app.add_typer(plans.app, name="plans")
app.add_typer(db.app, name="db")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(hl7_cli.app, name="hl7")
app.command("enroll")(enroll.enroll)
app.command("import")(importing.import_csv)
app.command("reschedule")(enroll.reschedule)
app.command("cancel")(enroll.cancel)
app.command("send-due")(dispatch.send_due)
app.command("serve")(dispatch.serve)
app.command("patients")(views.patients)
app.command("timeline")(views.timeline)
app.command("messages")(views.messages)
app.command("outcomes")(outcomes.outcomes)
app.command("flags")(outcomes.flags)
app.command("doctor")(doctor.doctor)


if __name__ == "__main__":
    app()
