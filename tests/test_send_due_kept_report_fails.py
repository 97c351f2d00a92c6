"""A kept delivery report that keeps failing to apply (e.g. a carrier opt-out, 21610) is not
only a log line: `reminders send-due` names it on standard error, by id and without the
patient's number, and exits 3, so a cron deployment is alerted while it stays kept; the other
after-pass step (flagging unanswered relief checks) still runs. `serve`'s after-pass hook says
it in one log line (no traceback) and goes on. Through the CLI and the hook, on a SQLite file
and on PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import ANA, RELIEF_4_AT, World, run_send_due, utc
from test_early_reports_one_fails import kept_ids, opted_out, refuse_reports_on

from reminders.cli.dispatch import background_dispatch
from reminders.dispatch.dispatcher import Dispatcher

pytestmark = pytest.mark.usefixtures("database_url")

EXIT_AFTER_PASS_FAILED = 3


def stuck_opt_out(world: World) -> int:
    """Ana's week-4 relief check went 73 hours ago, unanswered; the carrier's opt-out report
    (21610) for it was kept just now, and the database refuses to record it. Its id."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(RELIEF_4_AT)
    world.send_due()
    now = utc(RELIEF_4_AT) + timedelta(hours=73)
    world.at(now.isoformat())
    sid = world.message("ana", "relief-check-week-4")["provider_message_id"]
    world.app.storage.early_reports.keep(sid, "undelivered", "21610", now)
    refuse_reports_on(world, sid)
    (report_id,) = kept_ids(world)
    return report_id


def test_send_due_exits_3_naming_a_kept_report_that_failed_to_apply(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_id = stuck_opt_out(world)

    result = run_send_due(world, tmp_path, monkeypatch)

    assert result.exit_code == EXIT_AFTER_PASS_FAILED, result.output
    assert "Traceback" not in result.output and ANA not in result.output
    assert result.stdout.startswith("0 message(s) handled")
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: the pass's sends are committed")
    (said,) = errors[1:]
    assert said.startswith(
        "error: applying the kept delivery reports: 1 kept delivery report(s) failed to "
        f"apply and stay kept for the next pass: id {report_id} (undelivered 21610): "
    )
    assert "refused by a test trigger" in said
    assert kept_ids(world) == [report_id] and not opted_out(world, "ana")
    assert len(world.get("/v1/flags", kind="no_reply")) == 1  # the other step still ran


def test_serve_says_it_in_one_log_line_and_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    report_id = stuck_opt_out(world)
    dispatcher = Dispatcher(
        world.app.storage,
        world.app.catalog,
        {"sms": world.sms, "email": world.email},
        world.app.dispatch_settings(),
    )
    service = background_dispatch(world.app, dispatcher)
    caplog.set_level(logging.INFO)

    service._pass()

    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.exc_info) for r in problems] == [("reminders.dispatch.service", None)]
    said = problems[0].getMessage()
    assert said.startswith("after-pass hook failed: applying the kept delivery reports: ")
    assert f"id {report_id} (undelivered 21610)" in said and ANA not in caplog.text
    assert kept_ids(world) == [report_id]
    assert len(world.get("/v1/flags", kind="no_reply")) == 1
