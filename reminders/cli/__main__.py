"""`python -m reminders.cli` runs the command line."""

from reminders.cli.main import app

app(prog_name="reminders")
