"""Why a message waits or was skipped, shown where staff look: steps whose window had already
passed at enrollment are skipped at once with the reason (not left pending until a pass), and a
message held by quiet hours says until when, in the API's timeline."""

from __future__ import annotations

import pytest
from api_fixtures import ANA, World

pytestmark = pytest.mark.usefixtures("database_url")  # each test on each database


def test_steps_past_their_window_at_enrollment_are_skipped_at_once(world: World) -> None:
    world.at("2026-03-20T12:00:00Z")  # after the welcome's window (procedure 2026-03-02)

    response = world.enroll("ana", ANA)

    assert response.status_code == 201
    welcome = world.message("ana", "welcome")
    assert welcome["status"] == "skipped"
    assert welcome["status_reason"] == (
        "its send window ended before it was scheduled (on 2026-03-20)"
    )
    assert world.message("ana", "relief-check-week-4")["status"] == "pending"
    changes = {c["step_id"]: c for c in response.json()["changes"]}
    assert changes["welcome"]["reason"] == welcome["status_reason"]


def test_a_message_held_by_quiet_hours_says_until_when(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    world.at("2026-03-30T21:30:00Z")  # the week-4 relief check, inside quiet hours (UTC)

    world.send_due()

    check = world.message("ana", "relief-check-week-4")
    assert check["status"] == "pending"
    assert check["next_attempt_at"] == "2026-03-31T08:00:00Z"
    assert check["status_reason"] == (
        "quiet hours in the patient's time zone; waits until 2026-03-31 08:00 UTC"
    )
