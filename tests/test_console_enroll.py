"""Enrolling in the console: the form and the CSV upload (dry run, then the good rows), checked
and explained by the same typed input and service as the CLI and the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_fixtures import ConsoleWorld, console_world, csrf_token

from reminders.roles import Role

GOOD = {
    "external_id": "ana",
    "first_name": "Ana",
    "phone": "(202) 555-0143",
    "timezone": "America/Chicago",
    "plan": "knee",
    "procedure_date": "2026-03-09",
    "sms_consent": "yes",
}
CSV = (
    b"external_id,first_name,phone,sms_consent,timezone,plan,procedure_date\n"
    b"ana,Ana,+12025550143,yes,UTC,knee,2026-03-09\n"
    b"ben,Ben,555,yes,UTC,knee,2026-03-09\n"
    b"cruz,Cruz,+12025550145,no,Mars/Olympus,knee,03/09/2026\n"
    b"dee,Dee,+12025550146,no,UTC,knee,2026-03-10\n"
)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """The console with a user of each role, nobody enrolled."""
    with console_world(tmp_path) as cw:
        yield cw


def _patients(console: ConsoleWorld) -> dict[str, str | None]:
    rows = console.world.app.storage.patient_lists.list_patients()
    return {row.external_id: row.phone for row in rows}


def test_enrolling_a_patient_by_form(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)

    response = staff.post("/console/enroll", data={**GOOD, "csrf_token": csrf_token(staff)})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/patients/ana?notice=enrolled"
    assert _patients(console) == {"ana": "+12025550143"}  # stored as E.164
    entry = console.world.app.storage.access.audit_entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.external_id) == ("sam", "enroll", "ana")
    page = staff.get(response.headers["location"]).text
    assert "The patient is enrolled" in page and "relief-check-week-4" in page


def test_the_form_refuses_with_the_apis_words_and_keeps_what_was_typed(
    console: ConsoleWorld,
) -> None:
    bad = {**GOOD, "phone": "555", "timezone": "EST", "procedure_date": "03/09/2026"}
    staff = console.signed_in(Role.STAFF)

    page = staff.post("/console/enroll", data={**bad, "csrf_token": csrf_token(staff)})
    api = console.world.client.post(
        "/v1/enrollments",
        json={**bad, "sms_consent": True},
        headers=console.world.headers,
    )

    assert page.status_code == 422 and api.status_code == 422
    assert _patients(console) == {}
    for problem in api.json()["fields"]:
        escaped = problem["message"].replace("'", "&#39;")
        assert f"{problem['field']}</a>: {escaped}" in page.text, problem
    assert 'value="Ana"' in page.text  # nothing typed is lost
    assert 'id="f-timezone" name="timezone" type="text" value="EST"' in page.text


def test_the_consent_question_starts_unanswered_and_is_required_with_a_phone(
    console: ConsoleWorld,
) -> None:
    unanswered = {name: value for name, value in GOOD.items() if name != "sms_consent"}
    staff = console.signed_in(Role.STAFF)
    question = (
        staff.get("/console/enroll").text.split('id="f-sms_consent"')[1].split("</select>")[0]
    )

    page = staff.post("/console/enroll", data={**unanswered, "csrf_token": csrf_token(staff)})
    api = console.world.client.post(
        "/v1/enrollments", json=unanswered, headers=console.world.headers
    )

    assert "selected" not in question  # no answer is given for staff
    assert page.status_code == 422 and api.status_code == 422
    assert _patients(console) == {}
    (problem,) = api.json()["fields"]
    assert problem["field"] == "sms_consent"
    assert f"sms_consent</a>: {problem['message']}" in page.text


def test_a_no_to_texts_enrolls_without_consent(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)

    response = staff.post(
        "/console/enroll", data={**GOOD, "sms_consent": "no", "csrf_token": csrf_token(staff)}
    )

    assert response.status_code == 303
    enrollment_id, _ = console.world.app.storage.patients.enrollment_id("ana")
    details = console.world.app.storage.patients.enrollment_details(enrollment_id)
    assert details.patient.sms_consent is False


def test_a_csv_upload_with_bad_rows_lists_them_by_line_then_imports_the_good_ones(
    console: ConsoleWorld,
) -> None:
    staff = console.signed_in(Role.STAFF)
    token = csrf_token(staff)
    files = {"file": ("clinic.csv", CSV, "text/csv")}

    checked = staff.post("/console/import/check", data={"csrf_token": token}, files=files)

    assert checked.status_code == 200
    assert "Nothing is stored yet" in checked.text
    assert "2 new, 0 updated, 0 unchanged" in checked.text and "2 row(s) refused" in checked.text
    assert re.search(r"<td>3</td><td>phone</td><td>not a", checked.text)
    assert re.search(r"<td>4</td><td>timezone</td>", checked.text)
    assert re.search(r"<td>4</td><td>procedure_date</td><td>expected YYYY-MM-DD", checked.text)
    assert _patients(console) == {}
    upload = re.findall(r'name="upload" value="([^"]+)"', checked.text)[0]

    imported = staff.post("/console/import", data={"csrf_token": token, "upload": upload})

    assert imported.status_code == 200
    assert "Done: 2 new" in imported.text
    assert sorted(_patients(console)) == ["ana", "dee"]
    again = staff.post("/console/import", data={"csrf_token": token, "upload": upload})
    assert again.status_code == 409 and "Upload it again" in again.text


def test_a_checked_file_is_only_for_the_session_that_checked_it(console: ConsoleWorld) -> None:
    sam = console.signed_in(Role.STAFF)
    files = {"file": ("clinic.csv", CSV, "text/csv")}
    checked = sam.post("/console/import/check", data={"csrf_token": csrf_token(sam)}, files=files)
    upload = re.findall(r'name="upload" value="([^"]+)"', checked.text)[0]

    ada = console.signed_in(Role.ADMIN)
    response = ada.post("/console/import", data={"csrf_token": csrf_token(ada), "upload": upload})

    assert response.status_code == 409
    assert _patients(console) == {}


def test_a_file_that_is_not_a_csv_is_refused_whole(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    files = {"file": ("notes.csv", b"name;age\nx;1\n", "text/csv")}

    response = staff.post(
        "/console/import/check", data={"csrf_token": csrf_token(staff)}, files=files
    )

    assert response.status_code == 422
    assert "line 1" in response.text
    assert _patients(console) == {}


def test_viewers_see_no_enroll_or_import_in_the_menu(console: ConsoleWorld) -> None:
    viewer_page = console.signed_in(Role.VIEWER).get("/console/today").text
    staff_page = console.signed_in(Role.STAFF).get("/console/today").text

    assert "/console/enroll" not in viewer_page and "/console/import" not in viewer_page
    assert "/console/enroll" in staff_page and "/console/import" in staff_page


def test_a_checked_file_is_forgotten_after_thirty_minutes(console: ConsoleWorld) -> None:
    staff = console.signed_in(Role.STAFF)
    token = csrf_token(staff)
    files = {"file": ("clinic.csv", CSV, "text/csv")}
    checked = staff.post("/console/import/check", data={"csrf_token": token}, files=files)
    upload = re.findall(r'name="upload" value="([^"]+)"', checked.text)[0]

    console.world.clock.tick(20 * 60)
    assert staff.get("/console/today").status_code == 200  # activity keeps the session alive
    console.world.clock.tick(11 * 60)
    response = staff.post("/console/import", data={"csrf_token": token, "upload": upload})

    assert response.status_code == 409
    assert _patients(console) == {}
