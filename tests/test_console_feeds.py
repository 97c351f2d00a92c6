"""The console's scheduling-feed log: each HL7 booking, what it became, and why one was
refused, with its raw text (the page `reminders hl7 log` has a twin of)."""

from __future__ import annotations

from pathlib import Path

from console_fixtures import PASSWORD, sign_in
from fastapi.testclient import TestClient
from feed_fixtures import open_feed, siu

from reminders.access.actor import Actor
from reminders.api.app import create_app
from reminders.roles import Role


def test_the_feed_log_shows_each_booking_and_why_one_was_refused(
    tmp_path: Path, sqlite_url: str
) -> None:
    with open_feed(tmp_path, sqlite_url) as feed:
        framed = [
            b"\x0b" + m.encode() + b"\x1c\r"
            for m in (
                siu("S12", control_id="M1"),
                siu("S12", control_id="M2", phone="^PRN^CP^^1^555^0"),
            )
        ]
        feed.handler.handle_file(b"".join(framed))
        feed.app.access().create_user("sam", Role.STAFF, PASSWORD, Actor.cli("setup"))
        feed.app.access().create_user("vera", Role.VIEWER, PASSWORD, Actor.cli("setup"))
        client = TestClient(create_app(feed.app), follow_redirects=False)
        assert sign_in(client, "sam").status_code == 303

        page = client.get("/console/feeds").text
        refused = client.get("/console/feeds?source=hl7&refused=1").text

        assert "enrolled: 1" in page and "refused: 1" in page
        assert "id M1" in page and "id M2" in page
        assert "id M1" not in refused
        assert "PID-13: not a valid phone number" in refused
        assert "Raw message" in refused and "MSH|" in refused
        viewer = TestClient(create_app(feed.app), follow_redirects=False)
        assert sign_in(viewer, "vera").status_code == 303
        assert viewer.get("/console/feeds").status_code == 403  # raw messages hold patient data
