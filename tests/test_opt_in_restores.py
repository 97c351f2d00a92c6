"""STOP, then a reschedule, then START: opting back in restores every message whose window is
still open, the reasons say what happened, and each summary matches the rows."""

from __future__ import annotations

import pytest
from api_fixtures import ANA, ENROLLED_AT, World

pytestmark = pytest.mark.usefixtures("database_url")  # each test on each database


def statuses(world: World) -> dict[str, tuple[str, str, str | None]]:
    return {
        m["step_id"]: (m["channel"], m["status"], m["status_reason"])
        for m in world.timeline("ana")["messages"]
    }


def test_stop_reschedule_start_brings_every_open_message_back(world: World) -> None:
    assert world.enroll("ana", ANA).status_code == 201
    day = ENROLLED_AT[:10]
    world.text(ANA, "STOP")
    stopped = statuses(world)
    assert {s for _, s, _ in stopped.values()} == {"skipped"}
    assert all(r == f"opted out of SMS by text on {day} (STOP)" for _, _, r in stopped.values())

    moved = world.client.post(
        "/v1/patients/ana/reschedule", json={"procedure_date": "2026-03-09"}, headers=world.headers
    )
    after_move = statuses(world)
    assert moved.status_code == 200
    assert {s for _, s, _ in after_move.values()} == {"skipped"}
    assert all(str(r).startswith(f"opted out of SMS on {day}") for _, _, r in after_move.values())
    assert {c["action"] for c in moved.json()["changes"]} == {"skip"}  # the summary matches

    world.text(ANA, "START")

    restored = statuses(world)
    assert {(c, s) for c, s, _ in restored.values()} == {("sms", "pending")}
    assert len(restored) == len(stopped)
