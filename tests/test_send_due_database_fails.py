"""`reminders send-due` when the pass itself fails because the database does not answer (down,
refusing connections, locked): one line on standard error saying so, without a traceback or
the statement's SQL, and exit 1, the status `send-due --help` and the README give to a failed
pass (3 stays "the sends are committed, what runs after them failed"). Through the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from api_fixtures import ANA, WELCOME_AT, World, run_send_due, write_plan
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from reminders.cli.main import app as cli
from reminders.store.outbox import Outbox

EXIT_FAILED = 1
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on port 1


def assert_one_clean_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: the database did not answer: "), lines[0]
    for leak in ("Traceback", "[SQL:", "SELECT", "sqlalche.me"):
        assert leak not in stderr
    return lines[0]


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_send_due_says_in_one_line_that_the_database_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_output: bool
) -> None:
    plans, templates = write_plan(tmp_path)
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    env = {
        "REMINDERS_DATABASE_URL": UNREACHABLE,
        "REMINDERS_PLANS_DIR": str(plans),
        "REMINDERS_TEMPLATES_DIR": str(templates),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
    }

    result = CliRunner().invoke(cli, ["send-due", *(["--json"] if json_output else [])], env=env)

    assert result.exit_code == EXIT_FAILED, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert result.stdout == ""
    assert "Connection refused" in assert_one_clean_line(result.stderr)


def database_locked(*args: object, **kwargs: object) -> None:
    """A statement the database did not answer in time, as SQLAlchemy raises it: its text's
    next lines are the statement."""
    raise OperationalError(
        "SELECT messages.id FROM messages WHERE messages.status = 'pending'",
        None,
        sqlite3.OperationalError("database is locked"),
    )


@pytest.mark.usefixtures("database_url")
def test_send_due_says_in_one_line_that_the_database_failed_during_the_pass(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    monkeypatch.setattr(Outbox, "claim_batch", database_locked)

    result = run_send_due(world, tmp_path, monkeypatch)

    assert result.exit_code == EXIT_FAILED, result.output
    assert isinstance(result.exception, SystemExit)
    assert assert_one_clean_line(result.stderr).endswith("database is locked")
    assert world.message("ana", "welcome")["status"] == "pending"  # the next run sends it
