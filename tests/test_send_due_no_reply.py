"""The one-shot `reminders send-due` (cron, the API in another process) flags relief checks
left unanswered, as `serve` does after each pass (ReplyService.after_pass), after the window
REMINDERS_NO_REPLY_AFTER_HOURS sets (72 h by default). Through the CLI and the hook `serve`
runs, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import ANA, RELIEF_4_AT, WELCOME_AT, World, run_send_due, utc

from reminders.app import App
from reminders.cli.dispatch import background_dispatch
from reminders.dispatch.dispatcher import Dispatcher

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


def test_a_shorter_window_set_for_send_due_flags_sooner(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relief_check_sent(world)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=25)).isoformat())
    by_default = run_send_due(world, tmp_path, monkeypatch)
    flags_by_default = no_reply_flags(world)
    monkeypatch.setenv("REMINDERS_NO_REPLY_AFTER_HOURS", "24")

    shorter = run_send_due(world, tmp_path, monkeypatch)

    assert [r.exit_code for r in (by_default, shorter)] == [0, 0], shorter.output
    assert flags_by_default == []
    (flag,) = no_reply_flags(world)
    assert "24 h" in str(flag["detail"])


def test_a_longer_window_set_for_serve_holds_the_flag_back(world: World) -> None:
    relief_check_sent(world)
    world.at((utc(RELIEF_4_AT) + timedelta(hours=73)).isoformat())
    settings = world.app.settings.model_copy(update={"no_reply_after_hours": 96})
    app = App.from_settings(settings)
    dispatcher = Dispatcher(app.storage, app.catalog, {"sms": world.sms}, app.dispatch_settings())
    service = background_dispatch(app, dispatcher)  # what `reminders serve` runs
    assert service.on_pass is not None
    try:
        service.on_pass(dispatcher.run_once())
        held_back = no_reply_flags(world)
        world.at((utc(RELIEF_4_AT) + timedelta(hours=97)).isoformat())
        service.on_pass(dispatcher.run_once())
    finally:
        app.close()

    assert held_back == []
    (flag,) = no_reply_flags(world)
    assert "96 h" in str(flag["detail"])


@pytest.mark.parametrize("hours", ["0", "721", "three days"])
def test_a_window_out_of_range_is_refused_by_name(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hours: str
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    monkeypatch.setenv("REMINDERS_NO_REPLY_AFTER_HOURS", hours)

    result = run_send_due(world, tmp_path, monkeypatch)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: REMINDERS_NO_REPLY_AFTER_HOURS: ")
    assert world.message("ana", "welcome")["status"] == "pending"  # nothing sent
