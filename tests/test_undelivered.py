"""A text the carrier could not deliver is "undelivered" with the error's meaning in words, in
the timeline, the API and the CLI; staff get a flag when it was a pre-procedure step or a relief
check; transient and filtering errors never mark the number invalid."""

from __future__ import annotations

import json

import pytest
from api_fixtures import ANA, RELIEF_4_AT, WELCOME_AT, World
from typer.testing import CliRunner

from reminders.cli.main import app as cli

pytestmark = pytest.mark.usefixtures("database_url")  # each test on each database


def welcome(world: World) -> str:
    assert world.enroll("ana", ANA, email="ana@example.org").status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    return world.sms.sids[0]


def test_an_unreachable_phone_makes_the_text_undelivered_with_its_meaning(world: World) -> None:
    sid = welcome(world)

    world.status(sid, "undelivered", "30003")

    message = world.message("ana", "welcome")
    assert message["status"] == "undelivered"
    assert message["status_reason"] == (
        "not delivered: the phone was unreachable (switched off or out of coverage) (30003)"
    )
    listed = world.get("/v1/messages", status="undelivered")
    assert [m["step_id"] for m in listed] == ["welcome"]
    assert world.message("ana", "relief-check-week-4")["status"] == "pending"  # number kept


def test_a_pre_procedure_text_that_did_not_arrive_raises_a_flag(world: World) -> None:
    sid = welcome(world)

    world.status(sid, "undelivered", "30007")
    world.status(sid, "undelivered", "30007")  # Twilio may post the callback again

    flags = [(f["external_id"], f["kind"], f["detail"]) for f in world.get("/v1/flags")]
    assert len(flags) == 1
    assert flags[0][:2] == ("ana", "undelivered")
    assert "welcome: the text did not reach the patient" in flags[0][2]
    assert "filtered by the carrier" in flags[0][2]


def test_a_relief_check_that_did_not_arrive_raises_a_flag(world: World) -> None:
    welcome(world)
    world.at(RELIEF_4_AT)
    world.send_due()
    sid = world.sms.sids[-1]

    world.status(sid, "failed", "30005")

    flags = [(f["external_id"], f["kind"]) for f in world.get("/v1/flags")]
    assert flags == [("ana", "undelivered")]
    assert world.message("ana", "relief-check-week-4")["status"] == "undelivered"
    assert world.message("ana", "follow-up")["channel"] == "email"  # the number is unusable


def test_reminders_messages_lists_undelivered_texts(world: World) -> None:
    sid = welcome(world)
    world.status(sid, "undelivered", "30003")
    settings = world.app.settings
    env = {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
    }

    result = CliRunner().invoke(cli, ["messages", "--status", "undelivered", "--json"], env=env)

    assert result.exit_code == 0, result.output
    [message] = json.loads(result.stdout)
    assert message["status"] == "undelivered"
    assert "unreachable" in json.dumps(message)
