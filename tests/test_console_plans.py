"""The Plans pages: the check's findings with file:line, the steps drawn around the procedure
day, every text for a sample patient with its SMS segments, and for admins what applying a
changed plan file would do, then applying it (recorded in the audit log)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ANA, PLAN_YAML
from console_fixtures import ConsoleWorld, console_world, csrf_token

from reminders.roles import Role


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Ana enrolled on the test plan."""
    with console_world(tmp_path) as cw:
        assert cw.world.enroll("ana", ANA).status_code == 201
        yield cw


def _plans_dir(console: ConsoleWorld) -> Path:
    return Path(console.world.app.settings.plans_dir)


def test_the_plan_list_shows_each_check_finding_with_file_and_line(console: ConsoleWorld) -> None:
    client = console.signed_in(Role.VIEWER)
    assert "Every plan file passes its check" in client.get("/console/plans").text
    bad = PLAN_YAML.replace("id: knee", "id: hip").replace(
        "offset: {days: -2}", "offset: {days: 2}"
    )
    (_plans_dir(console) / "hip.yaml").write_text(bad, encoding="utf-8")

    page = client.get("/console/plans").text

    assert re.search(r"<code>[^<]*hip\.yaml:\d+</code>", page)
    assert "a pre-procedure step needs a negative days or weeks offset" in page


def test_a_plan_preview_shows_every_text_with_its_segments(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get(
        "/console/plans/knee?procedure_date=2027-05-10&timezone=Europe/London&language=en"
    )

    assert page.status_code == 200
    svg = page.text.split('<svg class="timeline"')[1].split("</svg>")[0]
    assert svg.count('<g class="marker') == 4 and "procedure 2027-05-10" in svg
    texts = page.text.split('id="texts-heading"')[1].split("</section>")[0]
    assert "Riverside Spine: Hi Alex, welcome. Reply STOP to opt out." in texts
    assert "2027-05-08 09:00" in texts  # the welcome, two days before, at 09:00 London time
    assert re.search(r"<td>1 <span class=\"muted\">\(GSM-7, \d+\)</span></td>", texts)
    assert "Applying this file" not in page.text  # only admins see the rollout


def test_a_bad_time_zone_is_named_and_the_preview_still_shows(console: ConsoleWorld) -> None:
    page = console.signed_in(Role.VIEWER).get("/console/plans/knee?timezone=EST").text

    assert "timezone: EST has no daylight saving; use America/New_York" in page
    assert "Every message for this sample patient" in page


def test_admins_see_what_a_changed_plan_file_would_do_and_apply_it(console: ConsoleWorld) -> None:
    changed = PLAN_YAML.replace("version: 1", "version: 2").replace(
        "offset: {weeks: 8}", "offset: {weeks: 9}"
    )
    (_plans_dir(console) / "knee.yaml").write_text(changed, encoding="utf-8")
    admin = console.signed_in(Role.ADMIN)

    assert "?rollout=1" in admin.get("/console/plans/knee").text  # asked for, not computed
    page = admin.get("/console/plans/knee?rollout=1").text

    assert "v2</span></h1>" in page  # the file as it is now
    rollout = page.split('id="rollout-heading"')[1]
    assert "1 of 1 enrollment(s) change: 1 move" in rollout
    assert "<td>ana</td><td>follow-up</td><td>move</td>" in rollout
    response = admin.post("/console/plans/knee/apply", data={"csrf_token": csrf_token(admin)})
    assert response.status_code == 303
    follow_up = next(
        m
        for m in console.world.app.storage.message_views.timeline("ana")
        if m.step_id == "follow-up"
    )
    assert follow_up.due_at.date().isoformat() == "2026-05-04"  # nine weeks after 2 March
    entry = console.world.app.storage.access.audit_entries(limit=1)[0]
    assert (entry.actor, entry.action) == ("ada", "plan.apply")
    assert "already follow v2" in admin.get("/console/plans/knee?rollout=1").text
