"""`reminders db upgrade`: bring the database schema up to date and say where it stands."""

from __future__ import annotations

import typer

from reminders.cli.dispatch import database_label
from reminders.cli.options import command_group
from reminders.cli.output import echo_line
from reminders.cli.state import get_state

app = command_group("Database schema.")


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (opening the database does) and print the revision."""
    from reminders.store.migrate import current_revision

    state = get_state(ctx)
    revision = current_revision(state.app.storage.database.engine)
    echo_line(f"{database_label(state.settings.database_url)} is at revision {revision}")
