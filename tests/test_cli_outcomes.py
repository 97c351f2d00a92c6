"""Staff see relief-check outcomes and flags from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from api_fixtures import running_world
from test_outcomes import ANA, relief_check_sent
from typer.testing import CliRunner

from reminders.cli.main import app


def _cli_env(world_root: Path) -> dict[str, str]:
    return {
        "REMINDERS_DATABASE_URL": f"sqlite:///{world_root / 'reminders.sqlite3'}",
        "REMINDERS_PLANS_DIR": str(world_root / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(world_root / "templates"),
    }


def test_outcomes_and_flags_list_what_patients_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_world(tmp_path) as world:
        relief_check_sent(world)
        world.text(ANA, "7 N, and I have a fever")
    for name, value in _cli_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    outcomes = runner.invoke(app, ["outcomes", "--json"])
    assert outcomes.exit_code == 0, outcomes.output
    (outcome,) = json.loads(outcomes.output)
    assert (outcome["external_id"], outcome["leg_pain"], outcome["walking_improved"]) == (
        "ana",
        7,
        False,
    )

    flags = runner.invoke(app, ["flags", "--json"])
    assert flags.exit_code == 0, flags.output
    kinds = {flag["kind"] for flag in json.loads(flags.output)}
    assert "warning_words" in kinds
    only = runner.invoke(app, ["flags", "--kind", "warning_words", "--json"])
    assert {flag["kind"] for flag in json.loads(only.output)} == {"warning_words"}
    misspelt = runner.invoke(app, ["flags", "--kind", "warning_word"])
    assert misspelt.exit_code == 2
    assert "expected one of: no_reply, not_improved, warning_words" in misspelt.output

    table = runner.invoke(app, ["outcomes"])
    assert table.exit_code == 0
    assert "1 outcome(s)" in table.output
