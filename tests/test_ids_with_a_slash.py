"""A patient id may hold a "/" (an EHR's `RIV/0042`, as README's FHIR section says): the id
the CLI, CSV import, HL7 and FHIR feeds enroll, percent-encoded, reaches the same patient
through every /v1 route and every console page and action."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from api_fixtures import ANA, WELCOME_AT
from console_fixtures import ConsoleWorld, console_world, csrf_token

from reminders.roles import Role

SLASHED = "RIV/0042"
ENCODED = quote(SLASHED, safe="")  # RIV%2F0042


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """RIV/0042 enrolled over the API (procedure 2 March 2026, UTC), the welcome text sent."""
    with console_world(tmp_path) as cw:
        assert cw.world.enroll(SLASHED, ANA).status_code == 201
        cw.world.at(WELCOME_AT)
        cw.world.send_due()
        yield cw


def _statuses(console: ConsoleWorld) -> dict[str, str]:
    return {m.step_id: m.status for m in console.world.app.storage.message_views.timeline(SLASHED)}


def test_the_api_reads_and_changes_a_patient_whose_id_holds_a_slash(console: ConsoleWorld) -> None:
    world = console.world

    timeline = world.client.get(f"/v1/patients/{ENCODED}/timeline", headers=world.headers)
    patched = world.client.patch(
        f"/v1/patients/{ENCODED}", json={"email": "ana@example.org"}, headers=world.headers
    )
    moved = world.client.post(
        f"/v1/patients/{ENCODED}/reschedule",
        json={"procedure_date": "2026-03-09"},
        headers=world.headers,
    )
    world.text(ANA, "STOP")
    opted_in = world.client.post(f"/v1/patients/{ENCODED}/sms-opt-in", headers=world.headers)
    cancelled = world.client.post(
        f"/v1/patients/{ENCODED}/cancel", json={"reason": "moved away"}, headers=world.headers
    )

    assert timeline.status_code == 200, timeline.text
    assert timeline.json()["external_id"] == SLASHED
    assert next(m["step_id"] for m in timeline.json()["messages"]) == "welcome"
    assert patched.status_code == 200, patched.text
    assert patched.json()["external_id"] == SLASHED
    assert moved.status_code == 200, moved.text
    # The relief checks come back; the follow-up went to email on STOP (she has an address now).
    assert opted_in.json() == {"external_id": SLASHED, "opted_in": True, "restored_messages": 2}
    assert cancelled.json() == {"external_id": SLASHED, "cancelled_messages": 3}
    assert _statuses(console) == {
        "welcome": "sent",
        "relief-check-week-4": "cancelled",
        "relief-check-week-6": "cancelled",
        "follow-up": "cancelled",
    }


def test_the_console_opens_and_changes_a_patient_whose_id_holds_a_slash(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)
    listed = re.search(r'href="(/console/patients/RIV[^"]+)"', staff.get("/console/patients").text)
    assert listed is not None
    form = {"csrf_token": csrf_token(staff), "plan": "knee", "reason": "moved away"}

    page = staff.get(listed.group(1))
    action = re.search(r'action="(/console/patients/RIV[^"]+/cancel/preview)"', page.text)
    assert page.status_code == 200, page.text
    assert action is not None, page.text
    preview = staff.post(action.group(1), data=form)
    applied = staff.post(f"/console/patients/{ENCODED}/cancel", data=form)

    assert preview.status_code == 200, preview.text
    assert "<td>follow-up</td><td>cancel</td>" in preview.text
    assert applied.status_code == 303
    assert applied.headers["location"] == f"/console/patients/{ENCODED}?notice=cancelled"
    assert _statuses(console)["follow-up"] == "cancelled"
    assert "The enrollment is cancelled" in staff.get(applied.headers["location"]).text


def test_an_id_that_only_starts_like_another_patients_is_not_that_patient(
    console: ConsoleWorld,
) -> None:
    assert console.world.enroll("RIV", "+13125550188").status_code == 201
    staff = console.signed_in(Role.STAFF)
    form = {"csrf_token": csrf_token(staff), "plan": "knee", "reason": "moved away"}

    staff.post(f"/console/patients/{ENCODED}/cancel", data=form)

    assert _statuses(console)["follow-up"] == "cancelled"
    riv = {m.step_id: m.status for m in console.world.app.storage.message_views.timeline("RIV")}
    assert riv["follow-up"] == "pending"
