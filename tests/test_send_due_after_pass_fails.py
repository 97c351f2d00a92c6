"""`reminders send-due` when what runs after its pass fails (applying kept delivery reports,
flagging unanswered relief checks): it says the pass's sends are committed and names what
failed, without a traceback, and exits 3 (the sends counted on standard output as usual), so
cron alerts without anyone taking the texts for unsent. Each step runs even when the other
fails. Through the CLI, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import ANA, RELIEF_4_AT, WELCOME_AT, World, run_send_due, utc
from sqlalchemy.exc import OperationalError

from reminders.store.early_reports import EarlyReportRepository
from reminders.store.outcomes import OutcomeRepository

pytestmark = pytest.mark.usefixtures("database_url")

EXIT_AFTER_PASS_FAILED = 3


def database_locked(*args: object, **kwargs: object) -> None:
    """The error a database statement raises when the database does not answer in time, as
    SQLAlchemy raises it: its text's next lines are the statement."""
    raise OperationalError(
        "SELECT early_reports.id FROM early_reports", None, sqlite3.OperationalError("locked")
    )


def relief_check_unanswered(world: World) -> None:
    """Ana's week-4 relief check was sent 73 hours ago and has no reply."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(RELIEF_4_AT)
    world.send_due()
    world.at((utc(RELIEF_4_AT) + timedelta(hours=73)).isoformat())


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_send_due_says_its_sends_stand_when_applying_kept_reports_fails(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_output: bool
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    monkeypatch.setattr(EarlyReportRepository, "any_kept", database_locked)

    result = run_send_due(world, tmp_path, monkeypatch, *(["--json"] if json_output else []))

    assert result.exit_code == EXIT_AFTER_PASS_FAILED, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert "Traceback" not in result.output and "[SQL:" not in result.output
    if json_output:
        assert json.loads(result.stdout)["outcomes"] == {"sent": 1}
    else:
        assert result.stdout.startswith("1 message(s) handled: ")
    assert world.message("ana", "welcome")["status"] == "sent"
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: the pass's sends are committed (1 message(s) handled)")
    assert errors[1:] == [
        "error: applying the kept delivery reports: "
        "OperationalError: (sqlite3.OperationalError) locked"
    ]


def test_unanswered_relief_checks_are_flagged_when_applying_kept_reports_fails(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relief_check_unanswered(world)
    monkeypatch.setattr(EarlyReportRepository, "any_kept", database_locked)

    result = run_send_due(world, tmp_path, monkeypatch)

    assert result.exit_code == EXIT_AFTER_PASS_FAILED, result.output
    assert len(world.get("/v1/flags", kind="no_reply")) == 1


def test_kept_reports_are_applied_when_flagging_unanswered_relief_checks_fails(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relief_check_unanswered(world)
    sid = world.message("ana", "relief-check-week-4")["provider_message_id"]
    world.app.storage.early_reports.keep(sid, "delivered", None, utc(RELIEF_4_AT))
    monkeypatch.setattr(OutcomeRepository, "relief_checks_without_reply", database_locked)

    result = run_send_due(world, tmp_path, monkeypatch)

    assert result.exit_code == EXIT_AFTER_PASS_FAILED, result.output
    assert result.stderr.splitlines()[1:] == [
        "error: flagging relief checks left unanswered: "
        "OperationalError: (sqlite3.OperationalError) locked"
    ]
    assert world.message("ana", "relief-check-week-4")["provider_status"] == "delivered"
    assert world.app.storage.early_reports.kept() == []
