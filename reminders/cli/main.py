"""The `reminders` command: one typer app; each command lives in the module for its job.

Start-up stays fast (`reminders --help` and every command's help in under 0.3 s; measured by
benchmarks/cli_latency.py) because building the command tree imports almost nothing:

- A CLI module imports at its top only the standard library, typer and other `reminders.cli`
  modules (which follow the same rule), plus `reminders.errors` and `reminders.clock`. The
  application (App, store, plans, templating, channels, pydantic, SQLAlchemy, FastAPI, rich)
  is imported inside the command function that uses it; names needed only in annotations go
  under `if TYPE_CHECKING:` (with `from __future__ import annotations`).
- Settings are read, and the database opened, on first use through `get_state(ctx)`.
- Groups are made with `command_group()` (plain help: typer's rich help costs ~0.3 s).

To add a command: write `reminders/cli/<job>.py` with the function (or a group from
`command_group()` with its commands), then register it below. tests/test_cli_startup.py fails
when building any command's help imports one of the heavy modules.
"""

from __future__ import annotations

from typing import Annotated

import typer

from reminders.cli import (
    api_keys,
    consent,
    db,
    demo,
    dispatch,
    doctor,
    enroll,
    importing,
    outcomes,
    plans,
    users,
    views,
)
from reminders.cli import hl7 as hl7_cli
from reminders.cli.errors import AS_NAME_KEY, ReminderGroup
from reminders.cli.options import command_group
from reminders.cli.state import CliState

app = command_group(
    "Recovery-plan reminders: plan files, enrollment, and SMS/email dispatch.",
    cls=ReminderGroup,
    name="reminders",
    epilog="--as NAME (before the command): who the audit log names for changes "
    "(default: the operating-system user).",
    pretty_exceptions_show_locals=False,  # locals may hold patient data
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("reminders")
        except PackageNotFoundError:
            installed = "unknown"
        typer.echo(f"reminders {installed}")
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
    state = CliState(as_name=ctx.meta.get(AS_NAME_KEY))
    ctx.obj = state
    ctx.call_on_close(state.close)


app.add_typer(plans.app, name="plans")
app.add_typer(db.app, name="db")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(hl7_cli.app, name="hl7")
app.add_typer(users.app, name="users")
app.command("enroll")(enroll.enroll)
app.command("import")(importing.import_csv)
app.command("reschedule")(enroll.reschedule)
app.command("cancel")(enroll.cancel)
app.command("opt-in")(consent.opt_in)
app.command("send-due")(dispatch.send_due)
app.command("serve")(dispatch.serve)
app.command("patients")(views.patients)
app.command("timeline")(views.timeline)
app.command("messages")(views.messages)
app.command("outcomes")(outcomes.outcomes)
app.command("flags")(outcomes.flags)
app.command("doctor")(doctor.doctor)
app.command("demo")(demo.demo)


if __name__ == "__main__":
    app()
