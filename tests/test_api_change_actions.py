"""Every action enrolling can report has a place in the API's response model, so no write
answers 500 after it was saved (re-enrolling or rescheduling after a cancel restores rows)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_fixtures import ANA, World, enrollment_body

from reminders.api.schemas import ScheduleChangeOut
from reminders.schedule_diff import ChangeAction

BODY = enrollment_body("ana", ANA)


@pytest.mark.parametrize("action", list(ChangeAction))
def test_the_response_model_takes_every_action(action: ChangeAction) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    change = ScheduleChangeOut.model_validate(
        {"step_id": "welcome", "action": action, "old_due_at": at, "new_due_at": at, "reason": None}
    )

    assert change.action is action


def test_the_openapi_document_lists_every_action(world: World) -> None:
    openapi = world.client.get("/openapi.json", headers=world.headers).json()
    schemas = openapi["components"]["schemas"]

    assert set(schemas["ChangeAction"]["enum"]) == {action.value for action in ChangeAction}


def cancel(world: World) -> None:
    response = world.client.post("/v1/patients/ana/cancel", headers=world.headers)
    assert response.status_code == 200


def test_enrolling_again_after_a_cancel_is_200_and_restores_the_messages(world: World) -> None:
    assert world.client.post("/v1/enrollments", json=BODY, headers=world.headers).status_code == 201
    cancel(world)

    response = world.client.post("/v1/enrollments", json=BODY, headers=world.headers)

    assert response.status_code == 200, response.text
    assert {c["action"] for c in response.json()["changes"]} == {"restore"}
    statuses = {m["status"] for m in world.timeline("ana")["messages"]}
    assert statuses == {"pending"}


def test_rescheduling_after_a_cancel_is_200_and_reports_what_it_saved(world: World) -> None:
    assert world.client.post("/v1/enrollments", json=BODY, headers=world.headers).status_code == 201
    cancel(world)

    response = world.client.post(
        "/v1/patients/ana/reschedule", json={"procedure_date": "2026-03-09"}, headers=world.headers
    )

    assert response.status_code == 200, response.text
    actions = [c["action"] for c in response.json()["changes"]]
    pending = [m for m in world.timeline("ana")["messages"] if m["status"] == "pending"]
    assert actions.count("restore") == len(pending) > 0
