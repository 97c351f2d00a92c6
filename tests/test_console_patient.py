"""The patient page: contact and consent, the timeline picture after a send and a reply, the
leg-pain chart, and each action previewed as a change table before it is applied."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from api_fixtures import RELIEF_4_AT, WELCOME_AT, utc
from console_fixtures import ConsoleWorld, console_world, csrf_token

from reminders.console.pictures import WIDTH, timeline_picture
from reminders.roles import Role
from reminders.store.message_records import MessageView

ANA_PHONE = "+12025550143"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Ana enrolled (procedure 2 March 2026, UTC), her welcome sent."""
    with console_world(tmp_path) as cw:
        assert cw.world.enroll("ana", ANA_PHONE).status_code == 201
        cw.world.at(WELCOME_AT)
        cw.world.send_due()
        yield cw


def _steps(console: ConsoleWorld) -> dict[str, tuple[str, object]]:
    return {
        m.step_id: (m.status, m.due_at)
        for m in console.world.app.storage.message_views.timeline("ana")
    }


def test_the_timeline_after_a_send_and_a_reply(console: ConsoleWorld) -> None:
    world = console.world
    world.at(RELIEF_4_AT)
    world.send_due()
    assert world.text(ANA_PHONE, "3 Y").status_code == 200

    page = console.signed_in(Role.VIEWER).get("/console/patients/ana")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    svg = page.text.split('<svg class="timeline"')[1].split("</svg>")[0]
    assert "procedure 2026-03-02" in svg
    assert svg.count('<g class="marker marker-sent">') == 2  # welcome and the week-4 check
    assert svg.count('<g class="marker marker-pending">') == 2  # week 6 and the follow-up
    assert "reply: 3 Y" in svg and 'class="reply-mark"' in svg
    table = page.text.split("</svg>")[1]
    assert "Riverside Spine: Hi Ana, welcome." in table  # the text as sent
    assert "“3 Y”" in table  # the reply in line with the message it answers
    chart = page.text.split('<svg class="pain-chart"')[1].split("</svg>")[0]
    assert "week 4.0: 3" in chart and 'class="pain-point"' in chart


def test_opting_out_is_shown_prominently(console: ConsoleWorld) -> None:
    assert console.world.text(ANA_PHONE, "STOP").status_code == 200

    page = console.signed_in(Role.VIEWER).get("/console/patients/ana").text

    banner = page.split('id="opt-out"')[1].split("</p>")[0]
    assert "Opted out of SMS" in banner and "No text is sent" in banner


def test_a_reschedule_shows_the_change_table_then_applies(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    before = _steps(console)
    form = {"csrf_token": csrf_token(staff), "plan": "knee", "procedure_date": "2026-03-16"}

    preview = staff.post("/console/patients/ana/reschedule/preview", data=form)

    assert preview.status_code == 200
    assert "Nothing is changed until you confirm" in preview.text
    assert re.search(
        r"<td>relief-check-week-4</td><td>move</td><td>2026-03-30 10:00</td>"
        r"<td>2026-04-13 10:00</td>",
        preview.text,
    )
    assert _steps(console) == before  # a preview changes nothing
    assert 'name="procedure_date" value="2026-03-16"' in preview.text  # the confirm form

    applied = staff.post("/console/patients/ana/reschedule", data=form)

    assert applied.status_code == 303
    assert applied.headers["location"] == "/console/patients/ana?notice=rescheduled"
    assert _steps(console)["relief-check-week-4"][1] == utc("2026-04-13T10:00:00Z")
    assert _steps(console)["welcome"] == before["welcome"]  # sent stays sent
    entry = console.world.app.storage.access.audit_entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.external_id) == ("sam", "reschedule", "ana")


def test_a_bad_phone_is_refused_with_the_same_words_and_nothing_changes(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)
    form = {
        "csrf_token": csrf_token(staff),
        "plan": "knee",
        "phone": "555-01",
        "preferred_channel": "sms",
    }

    for path in ("/console/patients/ana/contact/preview", "/console/patients/ana/contact"):
        response = staff.post(path, data=form)
        assert response.status_code == 422
        assert "Nothing was changed" in response.text
        assert "phone: not a phone number" in response.text or "phone: not a valid" in response.text

    stored = console.world.app.storage.patient_lists.list_patients(limit=1)[0]
    assert stored.phone == ANA_PHONE


def test_a_cancel_lists_what_will_not_be_sent_then_cancels(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    form = {"csrf_token": csrf_token(staff), "plan": "knee", "reason": "moved away"}

    preview = staff.post("/console/patients/ana/cancel/preview", data=form)

    assert preview.status_code == 200
    for step in ("relief-check-week-4", "relief-check-week-6", "follow-up"):
        assert f"<td>{step}</td><td>cancel</td>" in preview.text
    assert "<td>welcome</td>" not in preview.text  # already sent
    assert _steps(console)["follow-up"][0] == "pending"

    assert staff.post("/console/patients/ana/cancel", data=form).status_code == 303
    assert _steps(console)["follow-up"][0] == "cancelled"
    page = staff.get("/console/patients/ana?notice=cancelled").text
    assert "The enrollment is cancelled" in page
    assert "/cancel/preview" not in page  # no actions on a cancelled enrollment


def test_an_unknown_patient_is_a_404_page(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get("/console/patients/nobody")

    assert page.status_code == 404
    assert "There is no such patient" in page.text


def _message(step: str, due: str, status: str = "pending") -> MessageView:
    at = utc(due)
    return MessageView(
        1,
        "ana",
        "knee",
        step,
        "recovery",
        "sms",
        status,
        None,
        at,
        at,
        at,
        0,
        None,
        None,
        None,
        None,
        "America/Chicago",
        None,
        at,
    )


def test_the_procedure_day_is_in_the_middle_and_steps_on_their_local_dates() -> None:
    messages = [
        _message("before", "2026-02-28T15:00:00Z"),
        _message("late-evening", "2026-03-31T03:00:00Z"),  # 30 March, 22:00 in Chicago
    ]

    picture = timeline_picture(date(2026, 3, 2), messages, [])

    assert picture.centre == WIDTH / 2
    before, after = picture.markers
    assert before.x < picture.centre < after.x
    assert after.day == date(2026, 3, 30)  # the local date, not the UTC one
    assert after.x == pytest.approx(WIDTH / 2 + 440)  # the furthest step at the edge


def test_opting_back_in_shows_what_is_held_back_then_resumes_sms(console: ConsoleWorld) -> None:
    assert console.world.text(ANA_PHONE, "STOP").status_code == 200
    staff = console.signed_in(Role.STAFF)
    form = {"csrf_token": csrf_token(staff), "note": "agreed again by phone"}
    assert "/opt-in/preview" in staff.get("/console/patients/ana").text

    preview = staff.post("/console/patients/ana/opt-in/preview", data=form)

    assert preview.status_code == 200
    assert "<td>relief-check-week-4</td><td>held back</td>" in preview.text
    assert "opted out of SMS" in preview.text  # each one says why
    stored = console.world.app.storage.patient_lists.list_patients(limit=1)[0]
    assert stored.sms_opted_out_at is not None  # a preview changes nothing

    applied = staff.post("/console/patients/ana/opt-in", data=form)

    assert applied.headers["location"] == "/console/patients/ana?notice=opted-in"
    assert (
        console.world.app.storage.patient_lists.list_patients(limit=1)[0].sms_opted_out_at is None
    )
    assert _steps(console)["relief-check-week-4"][0] == "pending"
    entry = console.world.app.storage.access.audit_entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.external_id) == ("sam", "sms.opt_in", "ana")
    assert "staff: agreed again by phone" in entry.detail
