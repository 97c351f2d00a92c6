"""The staff HTTP API: API keys, enrollment and patient operations, views, errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import (
    ANA,
    ENROLLED_AT,
    RELIEF_4_AT,
    WELCOME_AT,
    World,
    enrollment_body,
)
from fastapi.testclient import TestClient

from reminders.api.app import create_app
from reminders.api.keys import create_key, list_keys, revoke_key
from reminders.enrollment_input import EnrollmentInput
from reminders.errors import NotFoundError

PROTECTED = [
    ("GET", "/v1/patients"),
    ("GET", "/v1/patients/ana/timeline"),
    ("PATCH", "/v1/patients/ana"),
    ("POST", "/v1/patients/ana/reschedule"),
    ("POST", "/v1/patients/ana/cancel"),
    ("POST", "/v1/enrollments"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/replies"),
    ("GET", "/v1/outcomes"),
    ("GET", "/v1/flags"),
    ("POST", "/v1/flags/1/resolve"),
    ("GET", "/v1/plans"),
    ("GET", "/v1/plans/knee/preview"),
    ("GET", "/v1/no-such-route"),
]

ANA_BODY = enrollment_body("ana", ANA)


def statuses(world: World, external_id: str) -> dict[str, tuple[str, str, str]]:
    return {
        m["step_id"]: (m["channel"], m["status"], m["due_at"])
        for m in world.timeline(external_id)["messages"]
    }


# -- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_request_without_a_key_is_401(world: World, method: str, path: str) -> None:
    response = world.client.request(method, path, json=ANA_BODY)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


def test_a_request_without_a_key_touches_nothing(world: World) -> None:
    world.client.post("/v1/enrollments", json=ANA_BODY)
    world.client.post("/v1/enrollments", json=ANA_BODY, headers={"X-API-Key": "rk_guess"})

    assert world.get("/v1/patients") == []


def test_a_bad_body_without_a_key_is_still_401_not_422(world: World) -> None:
    response = world.client.post(
        "/v1/enrollments", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"Authorization": f"Bearer {key}"},
        lambda key: {"Authorization": f"bearer {key}"},
        lambda key: {"X-API-Key": key},
    ],
)
def test_a_key_is_accepted_as_bearer_token_or_x_api_key(world: World, headers: Any) -> None:
    response = world.client.get("/v1/patients", headers=headers(world.key))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer rk_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"X-API-Key": ""},
        {"X-API-Key": "x" * 10_000},
    ],
)
def test_an_unknown_key_is_401(world: World, headers: dict[str, str]) -> None:
    assert world.client.get("/v1/patients", headers=headers).status_code == 401


def test_a_revoked_key_is_401(world: World) -> None:
    key, record = create_key(world.app, "front desk")
    assert world.client.get("/v1/patients", headers={"X-API-Key": key}).status_code == 200

    revoke_key(world.app, record.prefix)

    assert world.client.get("/v1/patients", headers={"X-API-Key": key}).status_code == 401
    assert world.client.get("/v1/patients", headers=world.headers).status_code == 200


def test_keys_are_listed_by_prefix_and_revoked_by_id(world: World) -> None:
    key, record = create_key(world.app, "reporting")

    assert key.startswith(record.prefix) and len(key) > len(record.prefix) + 20
    assert [k.name for k in list_keys(world.app)] == ["tests", "reporting"]
    revoked = revoke_key(world.app, str(record.id))
    assert revoked.revoked_at is not None
    with pytest.raises(NotFoundError):
        revoke_key(world.app, "rk_nope")


def test_keys_are_stored_hashed(world: World, tmp_path: Path) -> None:
    key, _ = create_key(world.app, "secret holder")
    world.app.storage.database.engine.dispose()  # flush the WAL into the database file

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("reminders.sqlite3*"))

    assert key.encode() not in stored
    assert key[12:].encode() not in stored


# -- enrollment -----------------------------------------------------------------------------


def test_enrolling_a_new_patient_is_201_with_the_schedule(world: World) -> None:
    response = world.enroll("ana", ANA)

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True
    assert [(c["step_id"], c["action"]) for c in body["changes"]] == [
        ("welcome", "add"),
        ("relief-check-week-4", "add"),
        ("relief-check-week-6", "add"),
        ("follow-up", "add"),
    ]


def test_enrolling_again_is_an_update_and_200(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.enroll("ana", ANA)

    assert response.status_code == 200
    assert {c["action"] for c in response.json()["changes"]} == {"keep"}


class CountingService:
    """Stands in for DispatchService: counts wake-ups."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def test_changes_wake_the_dispatch_service(world: World) -> None:
    service = CountingService()
    with TestClient(create_app(world.app, service)) as client:  # type: ignore[arg-type]
        client.post("/v1/enrollments", json=ANA_BODY, headers=world.headers)
        client.post(
            "/v1/patients/ana/reschedule",
            json={"procedure_date": "2026-03-09"},
            headers=world.headers,
        )
        client.patch("/v1/patients/ana", json={"first_name": "Anna"}, headers=world.headers)

    assert service.wakes == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"plan": None}, "plan"),
        ({"procedure_date": "not a date"}, "procedure_date"),
        ({"procedure_date": "1900-01-01"}, "procedure_date"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "x" * 500}, "timezone"),
        ({"phone": "12"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"preferred_channel": "fax"}, "preferred_channel"),
        ({"plan": "no-such-plan"}, "plan"),
        ({"first_name": ""}, "first_name"),
        ({"external_id": "a\x00b"}, "external_id"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_an_invalid_enrollment_is_422_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**ANA_BODY, **change}.items() if v is not None}

    response = world.client.post("/v1/enrollments", json=body, headers=world.headers)

    assert response.status_code == 422
    error = response.json()
    assert field in [f["field"] for f in error["fields"]]
    assert field in error["message"]


def test_a_body_that_is_not_json_is_422(world: World) -> None:
    response = world.client.post(
        "/v1/enrollments",
        content=b"{not json",
        headers={**world.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422


def test_the_enrollment_body_is_the_one_enrollment_input(world: World) -> None:
    schema = world.client.get("/openapi.json", headers=world.headers).json()
    body = schema["paths"]["/v1/enrollments"]["post"]["requestBody"]["content"]
    reference = body["application/json"]["schema"]["$ref"]

    assert reference == "#/components/schemas/EnrollmentInput"
    documented = schema["components"]["schemas"]["EnrollmentInput"]["properties"]
    assert set(documented) == set(EnrollmentInput.model_fields)


# -- patient operations ---------------------------------------------------------------------


def test_patch_changes_contact_details_and_recomputes_the_schedule(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.patch(
        "/v1/patients/ana",
        json={"email": "ana@example.org", "preferred_channel": "email"},
        headers=world.headers,
    )

    assert response.status_code == 200
    steps = statuses(world, "ana")
    assert steps["welcome"][:2] == ("email", "pending")
    assert steps["relief-check-week-4"][:2] == ("sms", "pending")  # relief checks are SMS only


def test_patch_with_an_invalid_value_is_422_and_changes_nothing(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.patch(
        "/v1/patients/ana", json={"phone": "not a phone"}, headers=world.headers
    )

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "phone"
    assert world.get("/v1/patients")[0]["phone"] == ANA


def test_patch_an_unknown_patient_is_404(world: World) -> None:
    response = world.client.patch("/v1/patients/nobody", json={}, headers=world.headers)

    assert response.status_code == 404
    assert "nobody" in response.json()["message"]


def test_a_new_phone_number_lets_sms_go_again_after_a_dead_one(world: World) -> None:
    world.enroll("ana", ANA, email="ana@example.org")
    world.at(WELCOME_AT)
    world.send_due()
    world.status(world.sms.sids[0], "failed", "21211")
    assert statuses(world, "ana")["follow-up"][:2] == ("email", "pending")

    world.client.patch("/v1/patients/ana", json={"phone": "+13125550188"}, headers=world.headers)

    steps = statuses(world, "ana")
    assert steps["follow-up"][:2] == ("sms", "pending")
    assert any(
        (channel, status) == ("sms", "pending")
        for step, (channel, status, _) in steps.items()
        if step == "relief-check-week-4"
    )


def test_reenrolling_with_a_new_phone_number_lets_sms_go_again(world: World) -> None:
    world.enroll("ana", ANA)
    world.at(WELCOME_AT)
    world.send_due()
    world.status(world.sms.sids[0], "failed", "21211")

    assert world.enroll("ana", "+13125550188").status_code == 200

    assert statuses(world, "ana")["follow-up"][:2] == ("sms", "pending")


def test_reschedule_moves_pending_messages(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.post(
        "/v1/patients/ana/reschedule",
        json={"procedure_date": "2026-03-09", "procedure_time": "07:30"},
        headers=world.headers,
    )

    assert response.status_code == 200
    assert statuses(world, "ana")["relief-check-week-4"][2] == "2026-04-06T10:00:00Z"


def test_reschedule_to_a_near_date_reports_the_steps_skipped_as_past(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.post(
        "/v1/patients/ana/reschedule", json={"procedure_date": "2026-02-21"}, headers=world.headers
    )

    assert response.status_code == 200
    skipped = [c for c in response.json()["changes"] if c["action"] == "skip"]
    assert skipped, response.json()["changes"]
    assert all(
        c["reason"].startswith("its send window ended before it was scheduled") for c in skipped
    )
    for change in skipped:
        assert statuses(world, "ana")[change["step_id"]][1] == "skipped"


def test_reschedule_validates_its_body(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.post(
        "/v1/patients/ana/reschedule", json={"procedure_date": "soon"}, headers=world.headers
    )

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "procedure_date"


def test_cancel_stops_every_pending_message(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.post(
        "/v1/patients/ana/cancel", json={"reason": "procedure called off"}, headers=world.headers
    )

    assert response.status_code == 200
    assert response.json() == {"external_id": "ana", "cancelled_messages": 4}
    assert {s for _, s, _ in statuses(world, "ana").values()} == {"cancelled"}


def test_cancel_needs_no_body(world: World) -> None:
    world.enroll("ana", ANA)

    response = world.client.post("/v1/patients/ana/cancel", headers=world.headers)

    assert response.status_code == 200


def test_cancel_an_unknown_patient_is_404(world: World) -> None:
    response = world.client.post("/v1/patients/nobody/cancel", headers=world.headers)

    assert response.status_code == 404


# -- views ----------------------------------------------------------------------------------


def test_patients_are_listed_with_their_counts(world: World) -> None:
    world.enroll("ana", ANA)
    world.enroll("ben", "+13125550188")

    patients = world.get("/v1/patients")

    assert [(p["external_id"], p["pending"], p["plan_id"]) for p in patients] == [
        ("ana", 4, "knee"),
        ("ben", 4, "knee"),
    ]


def test_the_timeline_of_an_unknown_patient_is_404(world: World) -> None:
    response = world.client.get("/v1/patients/nobody/timeline", headers=world.headers)

    assert response.status_code == 404


def test_messages_are_filtered_by_status_and_since(world: World) -> None:
    world.enroll("ana", ANA)
    world.at(WELCOME_AT)
    world.send_due()

    sent = world.get("/v1/messages", status="sent")
    recent = world.get("/v1/messages", since="2026-02-27T00:00:00")
    everything = world.get("/v1/messages", since=ENROLLED_AT)

    assert [m["step_id"] for m in sent] == ["welcome"]
    assert [m["step_id"] for m in recent] == ["welcome"]
    assert len(everything) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_message_filters_are_422_naming_the_parameter(
    world: World, params: dict[str, str], field: str
) -> None:
    response = world.client.get("/v1/messages", params=params, headers=world.headers)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == [field]


def test_plans_are_listed_with_their_steps(world: World) -> None:
    (plan,) = world.get("/v1/plans")

    assert (plan["id"], plan["version"]) == ("knee", 1)
    assert [s["id"] for s in plan["steps"]][:2] == ["welcome", "relief-check-week-4"]
    assert plan["steps"][1]["channel"] == "sms"


def test_a_preview_renders_the_schedule_in_the_patients_zone(world: World) -> None:
    preview = world.get(
        "/v1/plans/knee/preview",
        procedure_date="2026-03-02",
        timezone="America/Chicago",
        first_name="Rosa",
        attr="takes_nsaids=true",
    )

    first = preview["messages"][0]
    assert first["step_id"] == "welcome"
    assert first["local_due"] == "2026-02-28T09:00:00-06:00"
    assert first["body"].startswith("Riverside Spine: Hi Rosa, welcome.")
    assert first["body"].endswith("Reply STOP to opt out.")
    assert first["sms_segments"] == 1


def test_a_preview_by_email_has_subjects(world: World) -> None:
    preview = world.get(
        "/v1/plans/knee/preview", procedure_date="2026-03-02", timezone="UTC", channel="email"
    )

    assert preview["messages"][0]["subject"] == "Welcome"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"timezone": "UTC"}, 422, "procedure_date"),
        ({"procedure_date": "2026-03-02", "timezone": "Nowhere/Land"}, 422, "timezone"),
        ({"procedure_date": "2026-03-02", "timezone": "a" * 60}, 422, "timezone"),
        ({"procedure_date": "9999-12-31", "timezone": "UTC"}, 422, "procedure_date"),
        ({"procedure_date": "2026-03-02", "timezone": "UTC", "attr": "novalue"}, 422, "attr.0"),
    ],
)
def test_a_bad_preview_request_is_422_naming_the_parameter(
    world: World, params: dict[str, str], status: int, field: str
) -> None:
    response = world.client.get("/v1/plans/knee/preview", params=params, headers=world.headers)

    assert response.status_code == status
    assert field in [f["field"] for f in response.json()["fields"]]


def test_a_preview_of_an_unknown_plan_is_404(world: World) -> None:
    response = world.client.get(
        "/v1/plans/nope/preview",
        params={"procedure_date": "2026-03-02", "timezone": "UTC"},
        headers=world.headers,
    )

    assert response.status_code == 404


def test_outcomes_and_flags_can_be_filtered_by_patient(world: World) -> None:
    world.enroll("ana", ANA)
    world.at(RELIEF_4_AT)
    world.send_due()
    world.text(ANA, "4 N")

    assert len(world.get("/v1/outcomes", patient="ana")) == 1
    assert world.get("/v1/outcomes", patient="ben") == []
    assert len(world.get("/v1/flags", patient="ana", kind="not_improved")) == 1


# -- failures -------------------------------------------------------------------------------


def test_an_unexpected_error_is_a_generic_500_and_its_log_is_masked(
    world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"database exploded near {ANA} and ana.lopez@example.org")

    monkeypatch.setattr(world.app.storage.patient_lists, "list_patients", broken)

    response = world.client.get("/v1/patients", headers=world.headers)

    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "internal server error",
        "fields": [],
    }
    assert "RuntimeError" in caplog.text and "Traceback" in caplog.text
    assert ANA not in caplog.text and ANA[2:] not in caplog.text
    assert "ana.lopez@example.org" not in caplog.text


def test_request_logs_never_hold_contact_details(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    world.enroll("ana", ANA, email="ana.lopez@example.org")
    world.client.patch("/v1/patients/ana", json={"phone": "bad"}, headers=world.headers)
    world.get("/v1/patients")

    assert ANA not in caplog.text
    assert "ana.lopez@example.org" not in caplog.text


def test_the_openapi_schema_documents_every_endpoint_and_both_key_schemes(world: World) -> None:
    schema = world.client.get("/openapi.json", headers=world.headers).json()

    assert set(schema["paths"]) >= {
        "/v1/enrollments",
        "/v1/patients",
        "/v1/patients/{external_id}",
        "/v1/patients/{external_id}/reschedule",
        "/v1/patients/{external_id}/cancel",
        "/v1/patients/{external_id}/timeline",
        "/v1/messages",
        "/v1/outcomes",
        "/v1/flags",
        "/v1/plans",
        "/v1/plans/{plan_id}/preview",
    }
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert schema["paths"]["/v1/patients"]["get"]["security"]


def test_the_docs_page_is_served_with_a_key(world: World) -> None:
    response = world.client.get("/docs", headers=world.headers)

    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_patient_and_message_lists_come_in_pages_with_a_next_cursor(world: World) -> None:
    for name, phone in (("ana", ANA), ("ben", "+13125550188"), ("cy", "+13125550199")):
        world.enroll(name, phone)

    first = world.client.get("/v1/patients", params={"limit": 2}, headers=world.headers)
    rest = world.get("/v1/patients", limit=2, after=first.headers["X-Next-Cursor"])
    messages = world.client.get("/v1/messages", params={"limit": 10}, headers=world.headers)
    older = world.get("/v1/messages", limit=10, before=messages.headers["X-Next-Cursor"])

    assert [p["external_id"] for p in first.json()] == ["ana", "ben"]
    assert [p["external_id"] for p in rest] == ["cy"]
    ids = [m["id"] for m in messages.json()] + [m["id"] for m in older]
    assert ids == [m["id"] for m in world.get("/v1/messages", limit=100)]
    assert len(messages.json()) == 10 and older
    assert "X-Next-Cursor" not in world.client.get("/v1/messages", headers=world.headers).headers


def test_a_bad_messages_cursor_is_422_naming_it(world: World) -> None:
    response = world.client.get("/v1/messages", params={"before": "42"}, headers=world.headers)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["before"]
    assert "<UTC time>~<id>" in response.json()["message"]


def test_the_docs_and_the_schema_need_a_key(world: World) -> None:
    assert world.client.get("/docs").status_code == 401
    assert world.client.get("/openapi.json").status_code == 401
