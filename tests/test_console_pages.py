"""Today and the patient list, as staff see them in the console (real database, real services)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from api_fixtures import WELCOME_AT
from console_fixtures import ConsoleWorld, console_world
from fastapi.testclient import TestClient

from reminders.access.actor import Actor
from reminders.enrollment_input import EnrollmentInput
from reminders.roles import Role

ANA_PHONE = "+12025550143"
BEN_PHONE = "+12025550144"


@pytest.fixture
def console(tmp_path: Path, database_url: str) -> Iterator[ConsoleWorld]:
    """The console on each database, at the moment patients are enrolled."""
    with console_world(tmp_path, database_url) as cw:
        yield cw


def _rows(html: str) -> list[str]:
    """The external ids in the patient table, in order."""
    body = html.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in html else ""
    return re.findall(r"<tr>\s*<td><a [^>]*>([^<]+)</a></td>", body)


# -- Today ----------------------------------------------------------------------------------------


def test_today_shows_the_flag_with_the_reply_that_raised_it_and_whats_next(
    console: ConsoleWorld,
) -> None:
    world = console.world
    assert world.enroll("ana", ANA_PHONE).status_code == 201
    assert world.enroll("ben", BEN_PHONE, procedure_date="2026-03-09").status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    world.clock.tick(timedelta(hours=1))
    assert world.text(ANA_PHONE, "I have a fever and my leg is numb").status_code == 200

    page = console.signed_in(Role.VIEWER).get("/console/today")

    assert page.status_code == 200
    assert "<title>Today · Reminders console</title>" in page.text  # no section inside it
    assert page.text.count('id="next-heading"') == 1
    flags = page.text.split('id="flags-heading"')[1].split("</section>")[0]
    assert "ana" in flags and "Please call the patient" in flags
    assert "“I have a fever and my leg is numb”" in flags  # the reply, in line with its flag
    replies = page.text.split('id="replies-heading"')[1].split("</section>")[0]
    assert "I have a fever" in replies
    upcoming = page.text.split('id="next-heading"')[1].split("</section>")[0]
    assert "ben" in upcoming and "welcome" in upcoming  # Ben's welcome is next (7 March)
    assert "2026-03-07 09:00 UTC" in upcoming


def test_today_lists_failed_and_undelivered_texts_and_those_waiting(
    console: ConsoleWorld,
) -> None:
    world = console.world
    assert world.enroll("ana", ANA_PHONE).status_code == 201
    world.at(WELCOME_AT)
    world.send_due()
    sid = world.sms.sids[0]
    assert world.status(sid, "undelivered", "30003").status_code == 204
    world.at("2026-03-30T21:30:00Z")  # the week-4 relief check falls in quiet hours
    world.send_due()

    page = console.signed_in(Role.STAFF).get("/console/today").text

    trouble = page.split('id="trouble-heading"')[1].split("</section>")[0]
    assert "ana" in trouble and "undelivered" in trouble
    waiting = page.split('id="waiting-heading"')[1].split("</section>")[0]
    assert "relief-check-week-4" in waiting  # and why it waits, until when
    assert "quiet hours in the patient&#39;s time zone; waits until 2026-03-31 08:00 UTC" in waiting


# -- Patients -------------------------------------------------------------------------------------


def _enroll_many(console: ConsoleWorld, count: int) -> None:
    service = console.world.app.enrollment(Actor.cli("test"))
    for n in range(count):
        service.enroll_one(
            EnrollmentInput(
                external_id=f"MRN-{n:04d}",
                first_name="Zoe" if n % 10 == 0 else "Sam",
                phone=f"+1202555{n:04d}",
                timezone="UTC",
                plan="knee",
                procedure_date=date(2026, 3, 2) + timedelta(days=n % 30),
                sms_consent=True,
            )
        )


def test_the_list_pages_by_keyset_with_no_gap_and_no_repeat(console: ConsoleWorld) -> None:
    _enroll_many(console, 120)
    client = console.signed_in(Role.VIEWER)

    seen: list[str] = []
    url: str | None = "/console/patients"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        seen.extend(_rows(page.text))
        found = re.search(r'href="(/console/patients\?[^"]*after=[^"]+)">Next page', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None

    assert seen == [f"MRN-{n:04d}" for n in range(120)]
    assert "MRN-0050" not in client.get("/console/patients").text  # 50 a page


def test_search_by_id_or_name_and_filters(console: ConsoleWorld) -> None:
    _enroll_many(console, 60)
    console.world.app.enrollment(Actor.cli("test")).cancel("MRN-0003", "moved away")
    client = console.signed_in(Role.VIEWER)

    assert _rows(client.get("/console/patients?q=mrn-001").text) == [
        f"MRN-{n:04d}" for n in range(10, 20)
    ]
    assert _rows(client.get("/console/patients?q=zo").text) == [
        f"MRN-{n:04d}" for n in range(0, 60, 10)
    ]
    assert _rows(client.get("/console/patients?status=cancelled").text) == ["MRN-0003"]
    dated = client.get("/console/patients?from=2026-03-03&to=2026-03-04&plan=knee").text
    assert _rows(dated) == ["MRN-0001", "MRN-0002", "MRN-0031", "MRN-0032"]
    assert _rows(client.get("/console/patients?q=50%25").text) == []  # % is taken literally


def test_contacts_are_masked_in_the_list(console: ConsoleWorld) -> None:
    assert console.world.enroll("ana", ANA_PHONE, email="ana@example.org").status_code == 201

    page = console.signed_in(Role.VIEWER).get("/console/patients").text

    assert ANA_PHONE not in page and "ana@example.org" not in page
    assert "+1********43" in page and "a***@example.org" in page


def test_a_bad_filter_is_named_on_the_page_not_a_crash(console: ConsoleWorld) -> None:
    assert console.world.enroll("ana", ANA_PHONE).status_code == 201

    page = console.signed_in(Role.VIEWER).get("/console/patients?from=03/02/2026&plan=nope")

    assert page.status_code == 200
    assert "procedure from: expected a date as YYYY-MM-DD" in page.text
    assert "plan: no plan &#39;nope&#39;" in page.text
    assert _rows(page.text) == ["ana"]


def test_search_terms_never_reach_the_access_log(
    console: ConsoleWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    client: TestClient = console.signed_in(Role.VIEWER)
    assert client.get("/console/patients?q=Zoe&from=2026-03-02").status_code == 200

    for full_path in ("/console/patients?q=Zoe&from=2026-03-02", "/console/patients/MRN-0042"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", full_path, "1.1", 200
        )

    assert "Zoe" not in caplog.text and "MRN-0042" not in caplog.text
    assert "/console/patients?q=***&from=***" in caplog.text
    assert "/console/patients/{external_id}" in caplog.text
