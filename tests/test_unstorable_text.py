"""Text no database can store (a NUL character) is refused with the field named, through the
ways in that did not refuse it: HL7's escaped NUL (\\X00\\), a FHIR string holding \\u0000,
and the console's free-text fields and searches. On PostgreSQL these were internal errors: an
HL7 cancel answered AE "send it again later" for ever, FHIR and the console a 500; on SQLite
the NUL was stored. A literal NUL in an HL7 message was already refused (AR), and the API's
fields already refused it (422)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ANA, WELCOME_AT
from console_fixtures import ConsoleWorld, console_world, csrf_token
from feed_fixtures import Feed, open_feed, siu
from test_fhir_appointments import MAPPING as FHIR_MAPPING
from test_fhir_appointments import Client, as_json, built_appointment, issues

from reminders.roles import Role

NUL = "must not contain NUL characters"


@pytest.fixture
def feed(tmp_path: Path, database_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, database_url) as opened:
        yield opened


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"reason": "PATREQ^Patient\\X00\\ request"}, "SCH-6"),
        ({"location": "OR\\X00\\1"}, "AIL-3"),
        ({"code": "0275T\\X00\\^MILD^C4"}, "AIS-3"),
        ({"first_name": "A\\X00\\na"}, "PID-5"),
        ({"appointment": "APT\\X00\\1"}, "SCH-2"),
    ],
)
def test_hl7_an_escaped_nul_is_refused_naming_its_field(
    feed: Feed, fields: dict[str, str], named: str
) -> None:
    assert feed.handler.handle(siu("S12", control_id="M1")).ack_code == "AA"

    reply = feed.handler.handle(siu("S15", control_id="M2", sent="20270302090000", **fields))

    assert (reply.ack_code, reply.detail) == ("AR", f"{named}: a NUL character is not allowed")
    assert feed.enrollment("MRN1")["status"] == "active"  # nothing changed
    logged = feed.log.list_messages(limit=1)[0]
    assert (logged.message_id, logged.outcome, logged.ack_code) == ("M2", "rejected", "AR")


def test_hl7_a_control_id_too_long_to_keep_is_refused_and_logged(feed: Feed) -> None:
    reply = feed.handler.handle(siu("S12", control_id="M" * 129))

    assert (reply.ack_code, reply.detail) == ("AR", "MSH-10: longer than 128 characters")
    logged = feed.log.list_messages(limit=1)[0]
    assert logged.message_id.startswith("unparsed:") and logged.ack_code == "AR"


def test_fhir_a_string_holding_nul_is_a_400_naming_where(tmp_path: Path, database_url: str) -> None:
    with open_feed(tmp_path, database_url, FHIR_MAPPING) as feed:
        client = Client(feed)
        assert client.put("apt-77", as_json(built_appointment())).status_code == 201
        cancelled = as_json(built_appointment(status="cancelled"))
        cancelled["cancelationReason"] = {"text": "Patient\x00 request"}

        response = client.put("apt-77", cancelled)

        assert response.status_code == 400
        assert issues(response) == [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": NUL,
                "expression": ["cancelationReason.text"],
            }
        ]
        assert feed.enrollment("MRN-77")["status"] == "active"


@pytest.fixture
def console(tmp_path: Path, database_url: str) -> Iterator[ConsoleWorld]:
    """Ana enrolled and her welcome sent, on each database."""
    with console_world(tmp_path, database_url) as cw:
        assert cw.world.enroll("ana", ANA).status_code == 201
        cw.world.at(WELCOME_AT)
        cw.world.send_due()
        yield cw


def _pending(console: ConsoleWorld) -> int:
    timeline = console.world.app.storage.message_views.timeline("ana")
    return sum(1 for m in timeline if m.status == "pending")


@pytest.mark.parametrize(
    ("action", "field"), [("cancel", "reason"), ("opt-in", "note")], ids=["cancel", "opt-in"]
)
def test_console_a_reason_or_note_holding_nul_is_refused_with_the_field(
    console: ConsoleWorld, action: str, field: str
) -> None:
    assert console.world.text(ANA, "I have a fever").status_code == 200
    if action == "opt-in":
        assert console.world.text(ANA, "STOP").status_code == 200
    staff = console.signed_in(Role.STAFF)
    before = _pending(console)

    response = staff.post(
        f"/console/patients/ana/{action}",
        data={"csrf_token": csrf_token(staff), "plan": "knee", field: "called\x00 her"},
    )

    assert response.status_code == 422
    assert f"{field}</a>: {NUL}" in response.text or f"{field}: {NUL}" in response.text
    assert _pending(console) == before


def test_console_a_flag_note_holding_nul_is_refused(console: ConsoleWorld) -> None:
    assert console.world.text(ANA, "I have a fever").status_code == 200
    flag = console.world.app.storage.outcomes.list_flags()[0]
    staff = console.signed_in(Role.STAFF)

    response = staff.post(
        f"/console/flags/{flag.id}/resolve",
        data={"csrf_token": csrf_token(staff), "note": "called\x00"},
    )

    assert response.status_code == 422
    assert f"note: {NUL}" in response.text
    assert console.world.app.storage.outcomes.list_flags()[0].resolved_at is None


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/console/patients?q=%00", 200, f"q: {NUL}"),
        ("/console/patients?after=AA", 200, "ana"),  # a cursor that decodes to a NUL
        ("/console/patients/an%00a", 404, "There is no such"),
        ("/console/audit?patient=%00", 200, f"patient: {NUL}"),
        ("/console/messages?plan=%00", 200, f"plan: {NUL}"),
    ],
)
def test_console_a_search_holding_nul_finds_nothing_and_says_why(
    console: ConsoleWorld, path: str, status: int, says: str
) -> None:
    response: Any = console.signed_in(Role.ADMIN).get(path)

    assert response.status_code == status, response.text
    assert says in response.text
