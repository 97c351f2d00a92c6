"""Settings for enrolling through each entry point in one test module: the CLI (and its CSV
import), the HTTP API and the HL7 feed."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import PLAN, write_plan


def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plan: str = PLAN) -> dict[str, str]:
    """The CLI's settings: its own SQLite file, the knee plan (English only) and an outbox."""
    monkeypatch.chdir(tmp_path)
    write_plan(tmp_path, plan)
    return {
        "REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'reminders.sqlite3'}",
        "REMINDERS_PLANS_DIR": str(tmp_path / "plans"),
        "REMINDERS_TEMPLATES_DIR": str(tmp_path / "templates"),
        "REMINDERS_OUTBOX_FILE": str(tmp_path / "outbox.log"),
        "COLUMNS": "250",
    }
