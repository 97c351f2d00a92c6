"""The one-shot `reminders send-due` (cron, the API in another process) flags relief checks
left unanswered, as `serve` does after each pass (ReplyService.after_pass). Through the CLI,
on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import ANA, RELIEF_4_AT, World, run_send_due, utc

pytestmark = pytest.mark.usefixtures("database_url")


def no_reply_flags(world: World) -> list[dict[str, object]]:
    result: list[dict[str, object]] = world.get("/v1/flags", kind="no_reply")
    return result


def relief_check_sent(world: World) -> None:
    """Ana is enrolled and has been sent the week-4 relief check."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(RELIEF_4_AT)
    world.send_due()
    assert world.message("ana", "relief-check-week-4")["status"] == "sent"


def test_send_due_flags_a_relief_check_left_unanswered_past_the_window(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relief_check_sent(world)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=73)).isoformat())

    result = run_send_due(world, tmp_path, monkeypatch, "--json")

    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"handled", "outcomes", "next_due_utc"}
    (flag,) = no_reply_flags(world)
    assert flag["message_id"] == world.message("ana", "relief-check-week-4")["id"]
    assert "72 h" in str(flag["detail"])


def test_send_due_within_the_window_or_again_raises_no_further_flag(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relief_check_sent(world)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=71)).isoformat())
    early = run_send_due(world, tmp_path, monkeypatch)
    flags_early = no_reply_flags(world)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=73)).isoformat())
    due = run_send_due(world, tmp_path, monkeypatch)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=90)).isoformat())
    again = run_send_due(world, tmp_path, monkeypatch)

    assert [r.exit_code for r in (early, due, again)] == [0, 0, 0], due.output
    assert "message(s) handled" in due.stdout
    assert flags_early == []
    assert len(no_reply_flags(world)) == 1
