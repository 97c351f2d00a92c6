"""Free text staff type (a cancel reason, an opt-in note, a flag note) has one length limit,
checked by the service every way in goes through: past it the text is refused naming the field
and nothing changes. The console used to cut such text silently (reason and note at 500, the
flag note at 2000, every enroll field at 400) where the API refused it (422); a scheduling
feed's cancel reason, which no person can shorten, is kept to the limit and the cancel goes on.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ANA, WELCOME_AT, World
from console_fixtures import ConsoleWorld, console_world, csrf_token
from feed_fixtures import Feed, open_feed, siu
from typer.testing import CliRunner

from reminders.access.actor import Actor
from reminders.cli.main import app as cli
from reminders.inputs import MAX_FLAG_NOTE, MAX_STAFF_TEXT
from reminders.roles import Role

TOO_LONG = f"at most {MAX_STAFF_TEXT} characters"


@pytest.fixture
def console(tmp_path: Path, database_url: str) -> Iterator[ConsoleWorld]:
    """Ana enrolled, her welcome sent, a fever reply flagged; on each database."""
    with console_world(tmp_path, database_url) as cw:
        assert cw.world.enroll("ana", ANA).status_code == 201
        cw.world.at(WELCOME_AT)
        cw.world.send_due()
        assert cw.world.text(ANA, "I have a fever").status_code == 200
        yield cw


def _pending(world: World) -> int:
    timeline = world.app.storage.message_views.timeline("ana")
    return sum(1 for m in timeline if m.status == "pending")


def _opted_out(world: World) -> bool:
    return world.app.storage.patients.enrollment_details(1).patient.sms_opted_out_at is not None


def _long(limit: int) -> str:
    """Staff's words, one character past the limit, with an end that must not be lost."""
    return ("called her back " * limit)[:limit] + "!"


@pytest.mark.parametrize(("action", "field"), [("cancel", "reason"), ("opt-in", "note")])
@pytest.mark.parametrize("step", ["preview", "apply"])
def test_console_a_reason_or_note_past_the_limit_is_refused_naming_it_and_kept(
    console: ConsoleWorld, action: str, field: str, step: str
) -> None:
    if action == "opt-in":
        assert console.world.text(ANA, "STOP").status_code == 200
    staff = console.signed_in(Role.STAFF)
    before = _pending(console.world)
    typed = _long(MAX_STAFF_TEXT)
    path = f"/console/patients/ana/{action}" + ("/preview" if step == "preview" else "")

    response = staff.post(
        path, data={"csrf_token": csrf_token(staff), "plan": "knee", field: typed}
    )

    assert response.status_code == 422, response.text
    assert f"{field}: {TOO_LONG}" in response.text
    assert f'value="{html.escape(typed)}"' in response.text  # what they typed, whole, to edit
    assert _pending(console.world) == before
    if action == "opt-in":
        assert _opted_out(console.world)


def test_console_a_reason_at_the_limit_is_kept_whole(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    typed = _long(MAX_STAFF_TEXT)[: MAX_STAFF_TEXT - 2] + " !"  # the limit, stripped

    response = staff.post(
        "/console/patients/ana/cancel",
        data={"csrf_token": csrf_token(staff), "plan": "knee", "reason": typed + " "},
    )

    assert response.status_code == 303, response.text
    reasons = {
        m.status_reason
        for m in console.world.app.storage.message_views.timeline("ana")
        if m.status == "cancelled"
    }
    assert reasons == {typed}


def test_console_a_flag_note_past_the_limit_is_refused_naming_it_and_kept(
    console: ConsoleWorld,
) -> None:
    flag = console.world.app.storage.outcomes.list_flags()[0]
    staff = console.signed_in(Role.STAFF)
    typed = _long(MAX_FLAG_NOTE)

    response = staff.post(
        f"/console/flags/{flag.id}/resolve", data={"csrf_token": csrf_token(staff), "note": typed}
    )

    assert response.status_code == 422
    assert f"note: at most {MAX_FLAG_NOTE} characters" in response.text
    assert f'value="{html.escape(typed)}"' in response.text
    assert console.world.app.storage.outcomes.list_flags()[0].resolved_at is None


def test_console_enroll_keeps_a_long_field_whole_when_refusing_it(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    typed = "x" * 450 + "-end"

    response = staff.post(
        "/console/enroll",
        data={
            "csrf_token": csrf_token(staff),
            "external_id": typed,
            "first_name": "Bo",
            "email": "bo@example.org",
            "timezone": "UTC",
            "plan": "knee",
            "procedure_date": "2027-03-09",
        },
    )

    assert response.status_code == 422
    assert "external_id</a>: at most 128 characters" in response.text
    assert f'value="{typed}"' in response.text


@pytest.mark.parametrize(
    ("path", "body", "field", "limit"),
    [
        ("/v1/patients/ana/cancel", "reason", "reason", MAX_STAFF_TEXT),
        ("/v1/patients/ana/sms-opt-in", "note", "note", MAX_STAFF_TEXT),
        ("/v1/flags/{flag}/resolve", "note", "note", MAX_FLAG_NOTE),
    ],
)
def test_api_refuses_the_same_limits(
    console: ConsoleWorld, path: str, body: str, field: str, limit: int
) -> None:
    world = console.world
    flag = world.app.storage.outcomes.list_flags()[0]
    before = _pending(world)

    response = world.client.post(
        path.format(flag=flag.id), json={body: _long(limit)}, headers=world.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["fields"] == [{"field": field, "message": f"at most {limit} characters"}]
    assert _pending(world) == before
    assert world.app.storage.outcomes.list_flags()[0].resolved_at is None


def test_the_services_refuse_what_a_caller_did_not_check(console: ConsoleWorld) -> None:
    """The rule is the service's: a flag note past the limit used to be cut to it there."""
    app = console.world.app
    flag = app.storage.outcomes.list_flags()[0]

    with pytest.raises(Exception, match=f"note: at most {MAX_FLAG_NOTE} characters"):
        app.replies().resolve_flag(flag.id, _long(MAX_FLAG_NOTE), app.audit(Actor.cli("nurse")))
    assert app.storage.outcomes.list_flags()[0].resolved_at is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["cancel", "ana", "--reason"], "reason"),
        (["opt-in", "ana", "--note"], "note"),
    ],
)
def test_cli_refuses_the_same_limits(console: ConsoleWorld, args: list[str], field: str) -> None:
    settings = console.world.app.settings
    env = {
        "REMINDERS_DATABASE_URL": settings.database_url,
        "REMINDERS_PLANS_DIR": str(settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(settings.templates_dir),
    }
    assert console.world.text(ANA, "STOP").status_code == 200
    before = _pending(console.world)

    result = CliRunner().invoke(cli, [*args, _long(MAX_STAFF_TEXT)], env=env)

    assert result.exit_code == 2, result.output
    assert f"{field}: {TOO_LONG}" in result.output
    assert _pending(console.world) == before
    assert _opted_out(console.world)


@pytest.fixture
def feed(tmp_path: Path, database_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, database_url) as opened:
        yield opened


@pytest.mark.parametrize("event", ["S15", "S26"])
def test_a_feed_cancel_with_a_long_reason_still_cancels(feed: Feed, event: str) -> None:
    assert feed.handler.handle(siu("S12", control_id="M1")).ack_code == "AA"
    said = "PATREQ^" + "the patient asked to move it " * 40

    reply = feed.handler.handle(siu(event, control_id="M2", sent="20270302090000", reason=said))

    assert reply.ack_code == "AA", reply.detail
    expected = "cancelled" if event == "S15" else "active"
    assert feed.enrollment("MRN1")["status"] == expected
    reasons = {
        m.status_reason
        for m in feed.app.storage.message_views.timeline("MRN1")
        if m.status == "cancelled"
    }
    assert reasons and all(len(r or "") <= MAX_STAFF_TEXT for r in reasons)
    assert all((r or "").endswith("…") for r in reasons)
