"""What staff or the scheduling feed cancelled stays cancelled when the patient's details are
edited or their plan is re-applied: only booking the procedure again (enroll, reschedule, an
S12/S13) brings cancelled messages back.

Before, any re-plan did: editing the email of a patient whose enrollment staff had cancelled
(PATCH /v1/patients, the console's contact form) made the enrollment active again with every
cancelled message pending, and after a no-show (SIU S26) a contact edit or `plans apply`
brought back the discharge and recovery texts for a procedure that did not happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ANA, World
from console_fixtures import ConsoleWorld, console_world, csrf_token
from feed_fixtures import Feed, open_feed, siu
from test_cli import run
from test_fhir_appointments import MAPPING, Client, as_json, built_appointment

from reminders.replies.service import InboundSms
from reminders.roles import Role


def _statuses(world: World, external_id: str) -> dict[str, str]:
    return {m["step_id"]: m["status"] for m in world.timeline(external_id)["messages"]}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Ana enrolled, then cancelled by staff."""
    with console_world(tmp_path) as cw:
        world = cw.world
        assert world.enroll("ana", ANA).status_code == 201
        cancel = world.client.post(
            "/v1/patients/ana/cancel", json={"reason": "moved away"}, headers=world.headers
        )
        assert cancel.json()["cancelled_messages"] == 4
        yield cw


def _enrollment_status(world: World) -> str:
    (patient,) = world.get("/v1/patients")
    status: str = patient["enrollment_status"]
    return status


def test_api_editing_a_cancelled_patient_is_refused_and_nothing_comes_back(
    console: ConsoleWorld,
) -> None:
    world = console.world

    response = world.client.patch(
        "/v1/patients/ana", json={"email": "ana@example.org"}, headers=world.headers
    )

    assert response.status_code == 422, response.text
    (problem,) = response.json()["fields"]
    assert problem["field"] == "enrollment" and "cancelled" in problem["message"]
    assert set(_statuses(world, "ana").values()) == {"cancelled"}
    assert _enrollment_status(world) == "cancelled"


def test_console_editing_a_cancelled_patient_is_refused_and_nothing_comes_back(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)
    form = {
        "csrf_token": csrf_token(staff),
        "email": "ana@example.org",
        "phone": ANA,
        "preferred_channel": "sms",
    }

    response = staff.post("/console/patients/ana/contact", data=form)

    assert response.status_code == 422
    assert "cancelled" in response.text
    assert set(_statuses(console.world, "ana").values()) == {"cancelled"}
    assert _enrollment_status(console.world) == "cancelled"


def test_enrolling_a_cancelled_patient_again_brings_the_messages_back(
    console: ConsoleWorld,
) -> None:
    world = console.world

    assert world.enroll("ana", ANA).status_code == 200

    assert set(_statuses(world, "ana").values()) == {"pending"}
    assert _enrollment_status(world) == "active"


# -- after a no-show --------------------------------------------------------------------------


@pytest.fixture
def feed(tmp_path: Path, sqlite_url: str) -> Iterator[Feed]:
    """MRN1 booked for 10 March 2027 and reported as a no-show."""
    with open_feed(tmp_path, sqlite_url) as opened:
        assert opened.handler.handle(siu("S12", control_id="M1")).ack_code == "AA"
        no_show = opened.handler.handle(siu("S26", control_id="M2", sent="20270311090000"))
        assert no_show.outcome == "no_show"
        yield opened


def _steps(feed: Feed) -> dict[str, str]:
    return {m.step_id: m.status for m in feed.timeline("MRN1")}


NO_SHOW = {
    "prepare": "pending",
    "ride": "pending",
    "discharge": "cancelled",
    "week-one": "cancelled",
}


def test_api_a_contact_edit_after_a_no_show_keeps_its_cancellations(feed: Feed) -> None:
    assert _steps(feed) == NO_SHOW
    client = Client(feed)

    response = client.http.patch(
        "/v1/patients/MRN1",
        json={"email": "ana@example.org"},
        headers={"Authorization": client.headers["Authorization"]},
    )

    assert response.status_code == 200, response.text
    assert _steps(feed) == NO_SHOW


def test_cli_plans_apply_after_a_no_show_keeps_its_cancellations(
    feed: Feed, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(feed.root)
    env = {
        "REMINDERS_DATABASE_URL": feed.app.settings.database_url,
        "REMINDERS_PLANS_DIR": str(feed.app.settings.plans_dir),
        "REMINDERS_TEMPLATES_DIR": str(feed.app.settings.templates_dir),
        "REMINDERS_OUTBOX_FILE": str(feed.root / "outbox.log"),
    }
    plan = feed.app.settings.plans_dir / "demo.yaml"
    plan.write_text(
        plan.read_text()
        .replace("version: 1", "version: 2")
        .replace('{days: -1, at: "18:00"}', '{days: -1, at: "17:00"}')
    )

    result = run(env, "plans", "apply", "demo", "--yes")

    assert result.exit_code == 0, result.output
    assert _steps(feed) == NO_SHOW


def test_a_reschedule_after_a_no_show_books_the_procedure_again(feed: Feed) -> None:
    reply = feed.handler.handle(
        siu("S13", control_id="M3", sent="20270312090000", start="20270324143000+0000")
    )

    assert reply.ack_code == "AA"
    assert set(_steps(feed).values()) == {"pending"}


def test_a_step_that_applies_again_after_an_edit_comes_back(feed: Feed) -> None:
    """Only what staff or a feed cancelled is kept: a step the patient's details had made
    inapplicable (cancelled by the re-plan itself) returns when an edit makes it apply."""
    client = Client(feed)
    headers = {"Authorization": client.headers["Authorization"]}
    attributes = "/v1/patients/MRN1"

    on = client.http.patch(
        attributes, json={"attributes": {"takes_blood_thinners": True}}, headers=headers
    )
    off = client.http.patch(
        attributes, json={"attributes": {"takes_blood_thinners": False}}, headers=headers
    )
    again = client.http.patch(
        attributes, json={"attributes": {"takes_blood_thinners": True}}, headers=headers
    )

    assert [r.status_code for r in (on, off, again)] == [200, 200, 200]
    assert _steps(feed) == {**NO_SHOW, "medicines": "pending"}


def test_hl7_a_modification_after_a_no_show_keeps_its_cancellations(feed: Feed) -> None:
    reply = feed.handler.handle(
        siu("S14", control_id="M3", sent="20270311100000", phone="^PRN^CP^^1^312^5550177")
    )

    assert reply.ack_code == "AA"
    assert _steps(feed) == NO_SHOW
    assert feed.enrollment("MRN1")["phone"] == "+13125550177"  # the details still update


def test_hl7_a_modification_after_a_cancellation_changes_nothing(feed: Feed) -> None:
    other = {"appointment": "APT2", "mrn": "MRN2", "phone": "^PRN^CP^^1^312^5550188"}
    feed.handler.handle(siu("S12", control_id="C1", **other))
    feed.handler.handle(siu("S15", control_id="C2", sent="20270302090000", **other))

    reply = feed.handler.handle(siu("S14", control_id="C3", sent="20270303090000", **other))

    assert (reply.ack_code, reply.outcome) == ("AA", "ignored")
    assert "cancelled appointment" in reply.detail
    statuses = {m.step_id: m.status for m in feed.timeline("MRN2")}
    assert set(statuses.values()) == {"cancelled"}
    assert feed.enrollment("MRN2")["status"] == "cancelled"


MOBILE = "+13125550123"  # feed_fixtures' MOBILE, as Twilio writes it


def _text(feed: Feed, body: str, sid: str) -> None:
    feed.app.replies().handle_inbound(InboundSms(sid, MOBILE, "+15005550006", body))


def test_opting_in_after_stop_then_no_show_restores_only_what_may_still_go(
    tmp_path: Path, sqlite_url: str
) -> None:
    """STOP held back every text; the no-show then found nothing pending to cancel, and START
    (or staff opting the patient in) brought back the discharge and recovery texts."""
    with open_feed(tmp_path, sqlite_url) as feed:
        feed.handler.handle(siu("S12", control_id="M1"))
        _text(feed, "STOP", "SM1")
        feed.handler.handle(siu("S26", control_id="M2", sent="20270311090000"))

        _text(feed, "START", "SM2")

        assert _steps(feed) == NO_SHOW

        _text(feed, "STOP", "SM3")
        client = Client(feed)
        opted_in = client.http.post(
            "/v1/patients/MRN1/sms-opt-in",
            json={"note": "agreed again"},
            headers={"Authorization": client.headers["Authorization"]},
        )

        assert opted_in.json()["opted_in"] is True
        assert _steps(feed) == NO_SHOW


# -- FHIR: an Appointment sent again as booked ------------------------------------------------
# A FHIR Appointment states the appointment as it is now: `booked` after `noshow` or
# `cancelled` is the same rule as an HL7 S13/S14 (above), not a new S12 booking.


@pytest.fixture
def fhir(tmp_path: Path, database_url: str) -> Iterator[Client]:
    """apt-77 (MRN-77) booked through FHIR for 10 March 2027; on SQLite and PostgreSQL."""
    with open_feed(tmp_path, database_url, MAPPING) as opened:
        client = Client(opened)
        assert (
            client.put("apt-77", _appointment("booked", "2027-03-01T09:00:00Z")).status_code == 201
        )
        yield client


def _appointment(
    status: str, updated: str, start: str = "2027-03-10T08:30:00-06:00", phone: str = ""
) -> dict[str, Any]:
    body = as_json(built_appointment(status=status, start=start))
    body["meta"] = {"lastUpdated": updated}
    if phone:
        body["contained"][0]["telecom"][0]["value"] = phone
    return body


def _fhir_steps(client: Client) -> dict[str, str]:
    return {m.step_id: m.status for m in client.feed.timeline("MRN-77")}


def test_fhir_booked_again_after_a_no_show_keeps_its_cancellations(fhir: Client) -> None:
    no_show = fhir.put("apt-77", _appointment("noshow", "2027-03-11T09:00:00Z"))
    assert no_show.headers["x-reminders-outcome"] == "no_show"
    after_no_show = _fhir_steps(fhir)
    assert after_no_show["week-one"] == "cancelled"

    again = fhir.put(
        "apt-77", _appointment("booked", "2027-03-11T10:00:00Z", phone="(312) 555-0177")
    )

    assert again.status_code == 200, again.text
    assert _fhir_steps(fhir) == after_no_show
    assert fhir.feed.enrollment("MRN-77")["phone"] == "+13125550177"  # details still update


def test_fhir_booked_again_after_a_cancellation_changes_nothing(fhir: Client) -> None:
    cancelled = fhir.put("apt-77", _appointment("cancelled", "2027-03-02T09:00:00Z"))
    assert cancelled.headers["x-reminders-outcome"] == "cancelled"

    again = fhir.put("apt-77", _appointment("booked", "2027-03-03T09:00:00Z"))

    assert (again.status_code, again.headers["x-reminders-outcome"]) == (200, "ignored")
    assert set(_fhir_steps(fhir).values()) == {"cancelled"}
    assert fhir.feed.enrollment("MRN-77")["status"] == "cancelled"


@pytest.mark.parametrize("halted", ["noshow", "cancelled"])
def test_fhir_booked_at_another_start_books_the_procedure_again(fhir: Client, halted: str) -> None:
    """As an S13 that moves the start: a real move restarts every message."""
    fhir.put("apt-77", _appointment(halted, "2027-03-11T09:00:00Z"))

    again = fhir.put(
        "apt-77", _appointment("booked", "2027-03-12T09:00:00Z", start="2027-03-24T08:30:00-05:00")
    )

    assert (again.status_code, again.headers["x-reminders-outcome"]) == (200, "moved")
    assert set(_fhir_steps(fhir).values()) == {"pending"}
    enrollment = fhir.feed.enrollment("MRN-77")
    assert (enrollment["status"], enrollment["procedure_date"]) == ("active", date(2027, 3, 24))
