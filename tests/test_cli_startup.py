"""The CLI starts fast: building any command's help imports none of the application.

Timing itself is measured by benchmarks/cli_latency.py; these tests pin down the cause of a
slow start (an import at the top of a CLI module), which a shared machine cannot hide.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
import typer
from typer.testing import CliRunner

from benchmarks.cli_latency import help_commands
from reminders.cli.main import app
from reminders.cli.views import STATUSES
from reminders.store.schema import MessageStatus

HEAVY_MODULES = [
    *("sqlalchemy", "alembic", "psycopg", "pydantic", "pydantic_core", "pydantic_settings"),
    *("fastapi", "starlette", "uvicorn", "httpx", "jinja2", "babel", "yaml", "twilio"),
    *("apscheduler", "phonenumbers", "rich"),
    *("reminders.app", "reminders.settings", "reminders.store", "reminders.plans"),
    "reminders.plan_check",
    *("reminders.templating", "reminders.dispatch", "reminders.channels.registry"),
    *("reminders.api", "reminders.replies", "reminders.csv_import", "reminders.enrollment"),
    "reminders.integrations",
]

EVERY_HELP = [list(command) for command in help_commands(typer.main.get_command(app))]


def test_every_command_is_listed_for_the_checks() -> None:
    names = {" ".join(command[:-1]) for command in EVERY_HELP}
    assert {"", "enroll", "timeline", "plans", "plans check", "db upgrade"} <= names


def test_no_help_imports_the_application() -> None:
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from reminders.cli.main import app
        for command in {EVERY_HELP!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    app(command, prog_name="reminders")
                except SystemExit as exit:
                    assert exit.code in (0, None), (command, exit.code)
        heavy = {HEAVY_MODULES!r}
        loaded = sorted(
            name for name in sys.modules
            if any(name == h or name.startswith(h + ".") for h in heavy)
        )
        print(json.dumps(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"imported while building help: {loaded}"


@pytest.mark.parametrize("command", EVERY_HELP, ids=" ".join)
def test_help_placeholders_read_plainly(command: list[str]) -> None:
    result = CliRunner().invoke(app, command, prog_name="reminders")
    assert result.exit_code == 0
    assert not re.search(r"<\w[\w\[\] ]*>", result.output), result.output  # <str>, <bool>
    assert not re.search(r"\{\w+\}", result.output), result.output  # {EXT}


def test_json_shows_as_a_flag() -> None:
    result = CliRunner().invoke(app, ["messages", "--help"], prog_name="reminders")
    assert re.search(r"^\s+--json\s+Print JSON", result.output, re.MULTILINE), result.output


def test_status_help_names_every_message_status() -> None:
    assert list(STATUSES) == [status.value for status in MessageStatus]
