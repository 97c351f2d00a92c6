"""The console in a real browser (Playwright driving Debian's Chromium): signing in and the
lockout, a viewer refused, enrolling, a CSV with a bad row, resolving a flag, the patient's
timeline after a send and a reply, and axe-core on every page. Each page is photographed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from console_browser_fixtures import (
    LOCKED_USER,
    VIEWPORTS,
    Server,
    axe_problems,
    screenshot_dir,
    sign_in,
)

pytestmark = pytest.mark.browser

PAGES = {
    "today": "/console/today",
    "patients": "/console/patients",
    "patient": "/console/patients/ana",
    "enroll": "/console/enroll",
    "import": "/console/import",
    "messages": "/console/messages",
    "outcomes": "/console/outcomes",
    "audit": "/console/audit",
    "plans": "/console/plans",
    "plan": "/console/plans/knee",
    "feeds": "/console/feeds",
}


def test_sign_in_then_a_lockout_after_five_wrong_passwords(
    page: Any, console_server: Server
) -> None:
    url = console_server.url
    page.goto(f"{url}/console/today")
    assert page.url.endswith("/console/sign-in")
    page.screenshot(path=str(screenshot_dir() / "sign-in.png"))
    for _ in range(5):
        sign_in(page, url, LOCKED_USER, "not the password")
    alert = page.get_by_role("alert")
    assert "locked for 15 more minute(s)" in alert.inner_text()
    sign_in(page, url, LOCKED_USER)  # the right password, but locked
    assert "locked for" in page.get_by_role("alert").inner_text()

    sign_in(page, url, "sam")

    assert page.url.endswith("/console/today")
    assert page.get_by_role("heading", name="Today").is_visible()


def test_a_viewer_is_refused_an_action(page: Any, console_server: Server) -> None:
    sign_in(page, console_server.url, "vera")
    page.goto(f"{console_server.url}/console/patients/ana")
    assert page.get_by_text("Reschedule the procedure").count() == 0  # no forms for a viewer
    assert page.get_by_role("button", name="Resolved").count() == 0

    response = page.goto(f"{console_server.url}/console/enroll")

    assert response.status == 403
    assert "needs the staff role" in page.get_by_role("alert").inner_text()


def test_enrolling_a_patient(page: Any, console_server: Server) -> None:
    sign_in(page, console_server.url, "sam")
    page.get_by_role("link", name="Enroll").click()
    page.get_by_label("External id").fill("cruz")
    page.get_by_label("First name").fill("Cruz")
    page.get_by_label("Mobile phone").fill("(202) 555-0145")
    page.get_by_label("Time zone").fill("America/Chicago")
    page.get_by_label("Procedure date").fill("2027-05-10")
    page.get_by_label("May we text the patient?").select_option("yes")
    page.get_by_role("button", name="Enroll").click()

    assert page.url.endswith("/console/patients/cruz?notice=enrolled")
    assert "The patient is enrolled" in page.get_by_role("status").inner_text()
    assert page.locator("svg.timeline g.marker-pending").count() == 4


def test_a_csv_upload_with_a_bad_row(page: Any, console_server: Server, tmp_path: Any) -> None:
    csv = tmp_path / "clinic.csv"
    csv.write_text(
        "external_id,first_name,phone,sms_consent,timezone,plan,procedure_date\n"
        "dana,Dana,+12025550146,yes,UTC,knee,2027-05-10\n"
        "eli,Eli,12,yes,UTC,knee,2027-05-10\n",
        encoding="utf-8",
    )
    sign_in(page, console_server.url, "sam")
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(str(csv))
    page.get_by_role("button", name="Check the file").click()

    row = page.locator("tr", has=page.locator("td", has_text=re.compile(r"^3$")))
    assert "phone" in row.inner_text()
    page.screenshot(path=str(screenshot_dir() / "import-check.png"), full_page=True)
    page.get_by_role("button", name=re.compile("Import the 1 good row")).click()

    assert "Done: 1 new" in page.get_by_role("status").inner_text()
    assert (
        console_server.app.storage.patient_lists.list_patients(limit=10, after="dam")[0].external_id
        == "dana"
    )


def test_resolving_a_flag(page: Any, console_server: Server) -> None:
    sign_in(page, console_server.url, "sam")
    flag = page.locator("li.flag").first
    assert "fever" in flag.inner_text()
    page.screenshot(path=str(screenshot_dir() / "today-flags.png"), full_page=True)
    flag.get_by_label("Note (what was done)").fill("Called: no fever today")
    flag.get_by_role("button", name="Resolved").click()

    assert "The flag is resolved." in page.get_by_role("status").inner_text()
    resolved = console_server.app.storage.outcomes.list_flags(open_only=False)
    assert any(
        f.resolved_by == "sam" and f.resolution_note == "Called: no fever today" for f in resolved
    )


def test_the_plan_page(page: Any, console_server: Server) -> None:
    sign_in(page, console_server.url, "ada")
    page.get_by_role("link", name="Plans").click()
    assert "Every plan file passes its check" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Test recovery plan").click()
    page.get_by_label("Time zone").fill("Europe/London")
    page.get_by_label("Procedure date").fill("2027-05-10")
    page.get_by_role("button", name="Preview").click()

    assert page.locator("svg.timeline g.marker").count() == 4
    assert page.get_by_text("2027-05-08 09:00").is_visible()  # the welcome, London time
    assert page.get_by_role("heading", name="Applying this file to enrolled patients").is_visible()
    page.get_by_role("link", name=re.compile("Show what applying v1 would change")).click()
    summary = page.locator("#main").inner_text()
    assert re.search(r"\d+ of \d+ enrollment\(s\) change|already follow v1", summary)
    page.screenshot(path=str(screenshot_dir() / "plan.png"), full_page=True)


def test_the_patient_timeline_after_a_send_and_a_reply(page: Any, console_server: Server) -> None:
    sign_in(page, console_server.url, "vera")
    page.goto(f"{console_server.url}/console/patients/ana")

    timeline = page.locator("svg.timeline").first
    assert timeline.locator("g.marker-sent").count() == 2
    assert timeline.locator("path.reply-mark").count() == 1
    assert page.get_by_text("“3 Y but I had a fever”").first.is_visible()
    assert page.locator("svg.pain-chart circle.pain-point").count() == 1
    page.screenshot(path=str(screenshot_dir() / "patient.png"), full_page=True)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_passes_axe_and_is_photographed(
    page: Any, browser: Any, console_server: Server, viewport: str
) -> None:
    sign_in(page, console_server.url, "ada")
    page.set_viewport_size(VIEWPORTS[viewport])
    problems: dict[str, list[str]] = {}
    for name, path in PAGES.items():
        response = page.goto(console_server.url + path)
        assert response.status == 200, name
        page.screenshot(path=str(screenshot_dir() / f"{name}-{viewport}.png"), full_page=True)
        found = axe_problems(browser, console_server.url + path, page.context.cookies())
        if found:
            problems[name] = found
    assert problems == {}


def test_the_keyboard_reaches_the_menu_with_a_visible_focus(
    page: Any, console_server: Server
) -> None:
    sign_in(page, console_server.url, "sam")
    page.goto(f"{console_server.url}/console/today")
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return [e.textContent, s.outlineStyle, s.outlineWidth]; }"
    )
    assert focused == ["Today", "solid", "3px"]

    page.goto(f"{console_server.url}/console/today")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link moves focus past the menu
    assert page.evaluate("document.activeElement.id") == "main"
