"""A delivery report that outruns the grouped commit of its send is kept, then applied once.

Twilio does not post a status callback again on an error answer, so a report whose message
is not recorded yet (the dispatcher commits a batch's outcomes together) while a text to its
number is in flight is kept (204) and applied after the dispatcher's commit. Real app over
HTTP with Twilio's signature, on a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from api_fixtures import ANA, WELCOME_AT, World, run_send_due, utc
from httpx import Response

from reminders.channels.base import DeliveryReceipt, OutgoingMessage
from reminders.cli.dispatch import background_dispatch
from reminders.dispatch.dispatcher import Dispatcher
from reminders.testing.memory_channel import InMemoryChannel

pytestmark = pytest.mark.usefixtures("database_url")


def reports_at_once(world: World, *reports: tuple[str, str | None]) -> list[Response]:
    """An SMS channel whose provider posts `reports` (status, error code) as soon as it has
    accepted the text, before the dispatcher has committed its outcome."""
    answers: list[Response] = []

    class ReportsAtOnce(InMemoryChannel):
        def send(self, message: OutgoingMessage) -> DeliveryReceipt:
            receipt = super().send(message)
            sid = receipt.provider_message_id or ""
            for status, code in reports:
                answers.append(world.status(sid, status, code, to=message.to))
            return receipt

    world.sms = ReportsAtOnce("sms")
    return answers


def test_reports_before_the_commit_are_kept_then_applied_once_in_their_order(
    world: World,
) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    # Callbacks may come out of order: the later "delivered" must not be undone by "sent".
    answers = reports_at_once(world, ("delivered", None), ("sent", None))

    world.send_due()

    assert [a.status_code for a in answers] == [204, 204]
    assert world.message("ana", "welcome")["provider_status"] == "delivered"
    assert world.app.storage.early_reports.kept() == []
    assert world.app.replies().apply_early_reports() == 0  # nothing left to apply twice


def test_an_early_carrier_opt_out_stops_sms_and_flags_once(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    answers = reports_at_once(world, ("undelivered", "21610"), ("undelivered", "21610"))

    world.send_due()
    world.send_due()

    assert [a.status_code for a in answers] == [204, 204]
    message = world.message("ana", "welcome")
    assert (message["provider_status"], message["error_code"]) == ("undelivered", "21610")
    patient = next(p for p in world.get("/v1/patients") if p["external_id"] == "ana")
    assert patient["sms_opted_out_at"] is not None
    flags = [f for f in world.get("/v1/flags") if f["kind"] == "undelivered"]
    assert len(flags) == 1
    assert world.app.storage.early_reports.kept() == []


def test_a_kept_report_whose_send_is_never_recorded_is_dropped_after_a_day(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    kept = world.app.storage.early_reports
    kept.keep("SMnever", "delivered", None, utc(WELCOME_AT))
    replies = world.app.replies()

    world.at((utc(WELCOME_AT) + timedelta(hours=23)).isoformat())
    assert replies.apply_early_reports() == 0
    assert [r.provider_message_id for r in kept.kept()] == ["SMnever"]  # still waiting

    caplog.set_level(logging.INFO)
    world.at((utc(WELCOME_AT) + timedelta(days=1, minutes=1)).isoformat())
    assert replies.apply_early_reports() == 0
    assert kept.kept() == []
    assert "dropped a delivery report" in caplog.text


def test_serve_applies_the_kept_reports_after_its_pass(world: World) -> None:
    """The hook `reminders serve` runs after each pass is what applies them."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    answers = reports_at_once(world, ("delivered", None))
    dispatcher = Dispatcher(
        world.app.storage,
        world.app.catalog,
        {"sms": world.sms, "email": world.email},
        world.app.dispatch_settings(),
    )
    service = background_dispatch(world.app, dispatcher)

    report = dispatcher.run_once()
    assert [a.status_code for a in answers] == [204]
    assert world.message("ana", "welcome")["provider_status"] == "queued"  # kept, not lost
    assert service.on_pass is not None
    service.on_pass(report)

    assert world.message("ana", "welcome")["provider_status"] == "delivered"
    assert world.app.storage.early_reports.kept() == []


def test_send_due_applies_the_kept_reports_after_its_pass(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-shot `reminders send-due` (a process of its own, beside the API) applies the
    reports that came before its pass committed, as `serve` does after each pass."""
    assert world.enroll("ana", ANA).status_code == 201
    world.at(WELCOME_AT)
    answers = reports_at_once(world, ("delivered", None))

    result = run_send_due(world, tmp_path, monkeypatch, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcomes"] == {"sent": 1}
    assert [a.status_code for a in answers] == [204]  # kept: its send was not committed yet
    assert world.message("ana", "welcome")["provider_status"] == "delivered"
    assert world.app.storage.early_reports.kept() == []
