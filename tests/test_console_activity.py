"""Messages, Outcomes and the audit log in the console: filters, delivery problems grouped by
error code with their meaning, relief checks per week, and CSV downloads that neutralise cells
a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ANA, BEN, RELIEF_4_AT, WELCOME_AT
from console_fixtures import ConsoleWorld, console_world

from reminders.csv_export import csv_text, neutralise
from reminders.roles import Role


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Ana and Ben sent their welcome and week-4 check; Ana's check undelivered (30003), Ben
    answered '-3 Y' (a minus a spreadsheet would read as a formula)."""
    with console_world(tmp_path) as cw:
        world = cw.world
        assert world.enroll("ana", ANA).status_code == 201
        assert world.enroll("ben", BEN).status_code == 201
        world.at(WELCOME_AT)
        world.send_due()
        world.at(RELIEF_4_AT)
        world.send_due()
        ana_check = next(
            m.provider_message_id
            for m in world.app.storage.message_views.timeline("ana")
            if m.step_id == "relief-check-week-4"
        )
        assert ana_check is not None
        assert world.status(ana_check, "undelivered", "30003").status_code == 204
        assert world.text(BEN, "-3 Y").status_code == 200
        yield cw


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_delivery_problems_are_grouped_by_code_with_their_meaning(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get("/console/messages").text

    problems = page.split('id="problems-heading"')[1].split("</section>")[0]
    assert "<td>30003</td>" in problems and "<td>1</td>" in problems
    assert "(30003)" in problems  # the meaning, in words, names its code


def test_messages_filter_by_status_channel_and_plan(console: ConsoleWorld) -> None:
    client = console.signed_in(Role.VIEWER)

    undelivered = client.get("/console/messages?status=undelivered&channel=sms&plan=knee").text
    pending = client.get("/console/messages?status=pending").text
    wrong = client.get("/console/messages?status=lost&since=yesterday")

    listing = undelivered.split('id="list-heading"')[1]
    assert listing.count("<tr><td>") == 1 and "relief-check-week-4" in listing
    assert pending.split('id="list-heading"')[1].count("<tr><td>") == 4  # 2 steps x 2 patients
    assert wrong.status_code == 200
    assert "status: expected one of" in wrong.text and "since: expected a duration" in wrong.text


def test_the_messages_csv_holds_the_filtered_rows(console: ConsoleWorld) -> None:
    response = console.signed_in(Role.VIEWER).get("/console/messages.csv?status=sent")

    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = _csv(response.text)
    assert {(r["external_id"], r["step_id"]) for r in rows} == {
        ("ana", "welcome"),
        ("ben", "welcome"),
        ("ben", "relief-check-week-4"),
    }


def test_the_outcomes_csv_neutralises_a_reply_that_starts_like_a_formula(
    console: ConsoleWorld,
) -> None:
    response = console.signed_in(Role.VIEWER).get("/console/outcomes.csv")

    rows = _csv(response.text)
    assert [r["raw"] for r in rows] == ["'-3 Y"]
    assert rows[0]["external_id"] == "ben"


def test_outcomes_are_summed_per_relief_check(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get("/console/outcomes").text

    weeks = page.split('id="weeks-heading"')[1].split("</section>")[0]
    assert "<td>relief-check-week-4</td><td>1</td>" in weeks
    assert "1 of 1" in weeks  # walks farther


def test_the_audit_log_shows_who_did_what_to_admins(console: ConsoleWorld) -> None:
    admin = console.signed_in(Role.ADMIN)

    page = admin.get("/console/audit").text
    by_key = admin.get("/console/audit?actor=key:tests").text

    assert "<td>key:tests</td><td>enroll</td><td>ana</td>" in page
    assert "user.create" in page  # the users this test made, by the CLI
    assert "user.create" not in by_key and "<td>ben</td>" in by_key
    assert console.signed_in(Role.STAFF).get("/console/audit").status_code == 403


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1 202", "'+1 202"),
        ("-3", "'-3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("3 Y", "3 Y"),
        (None, ""),
        (4, "4"),
    ],
)
def test_every_formula_start_is_neutralised(cell: object, written: str) -> None:
    assert neutralise(cell) == written
    assert csv_text(["a"], [[cell]]).splitlines()[1].strip('"') == written.replace('"', '""')
