"""FHIR R4 Appointments enroll, move and cancel; a patient's reminders come back as FHIR.

Requests are raw JSON from the FHIR R4 specification's examples (tests/fhir_r4_examples,
written by hand from the spec) and resources built with fhir.resources' R4B models.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feed_fixtures import Feed, open_feed
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from reminders.api.app import create_app
from reminders.integrations.fhir.reminders_bundle import PatientKey, communication, observations
from reminders.roles import Role
from reminders.store.message_records import MessageView
from reminders.store.reply_records import OutcomeView

EXAMPLES = Path(__file__).parent / "fhir_r4_examples"
MAPPING = """\
patient_identifier: {type: MR}
sites:
  - id: riverside
    timezone: America/Chicago
    locations: ["1", RIVER-OR1]
consent: {sms: if_mobile}
defaults:
  attributes: {takes_blood_thinners: false}
rules:
  - plan: demo
    codes:
      # The spec's example is a follow-up visit; here it stands for the clinic's procedure.
      - {system: "http://terminology.hl7.org/CodeSystem/v2-0276", code: FOLLOWUP}
      - {system: "http://www.ama-assn.org/go/cpt", code: "0275T"}
"""
US_MOBILE = {"system": "phone", "value": "(312) 555-0123", "use": "mobile"}


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def spec_bundle(appointment: str = "appointment-example", us_phone: bool = True) -> dict[str, Any]:
    """The spec's Appointment and Patient examples in one Bundle (a US mobile if asked)."""
    patient = example("patient-example")
    if us_phone:
        patient["telecom"] = [US_MOBILE]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "http://example.org/fhir/Appointment/example",
                "resource": example(appointment),
            },
            {"fullUrl": "http://example.org/fhir/Patient/example", "resource": patient},
        ],
    }


def built_appointment(
    status: str = "booked", start: str = "2027-03-10T08:30:00-06:00"
) -> Appointment:
    """An Appointment with its Patient contained, built with fhir.resources."""
    patient = Patient.model_validate(
        {
            "resourceType": "Patient",
            "id": "p1",
            "identifier": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "code": "MR",
                            }
                        ]
                    },
                    "value": "MRN-77",
                }
            ],
            "name": [{"use": "official", "family": "Lopez", "given": ["Ana"]}],
            "telecom": [US_MOBILE],
            "communication": [
                {
                    "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-US"}]},
                    "preferred": True,
                }
            ],
        }
    )
    return Appointment.model_validate(
        {
            "resourceType": "Appointment",
            "id": "apt-77",
            "status": status,
            "contained": [patient.model_dump(mode="json", exclude_none=True)],
            "serviceType": [
                {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "0275T"}]}
            ],
            "start": start,
            "end": start.replace("08:30", "09:30"),
            "participant": [
                {"actor": {"reference": "#p1"}, "status": "accepted"},
                {"actor": {"reference": "Location/RIVER-OR1"}, "status": "accepted"},
            ],
        }
    )


def as_json(resource: Appointment) -> dict[str, Any]:
    data: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return data


class Client:
    """The HTTP API with an API key, speaking FHIR JSON."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.http = TestClient(create_app(feed.app))
        key, _ = feed.app.storage.access.create_api_key(
            "ehr interface", Role.STAFF, datetime.now(UTC)
        )
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"}

    def post(self, body: Any, **headers: str) -> Any:
        return self.http.post("/fhir/Appointment", json=body, headers={**self.headers, **headers})

    def put(self, appointment_id: str, body: Any) -> Any:
        return self.http.put(f"/fhir/Appointment/{appointment_id}", json=body, headers=self.headers)


@pytest.fixture
def feed(tmp_path: Path, sqlite_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, sqlite_url, MAPPING) as opened:
        yield opened


@pytest.fixture
def client(feed: Feed) -> Client:
    return Client(feed)


def issues(response: Any) -> list[dict[str, Any]]:
    outcome = OperationOutcome.model_validate(response.json())
    return [issue.model_dump(mode="json", exclude_none=True) for issue in outcome.issue]


def test_the_specs_appointment_example_enrolls_its_patient_in_the_sites_zone(
    client: Client, feed: Feed
) -> None:
    response = client.post(spec_bundle())

    assert response.status_code == 201, response.text
    assert response.headers["location"] == "Appointment/example"
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert Appointment.model_validate(response.json()).id == "example"
    enrollment = feed.enrollment("12345")
    # 09:00Z on 10 December 2013 is 03:00 in Chicago (CST, UTC-6).
    assert (enrollment["procedure_date"], enrollment["procedure_time"]) == (
        date(2013, 12, 10),
        time(3, 0),
    )
    assert (enrollment["first_name"], enrollment["phone"]) == ("Peter", "+13125550123")
    assert enrollment["sms_consent"] is True


def test_the_specs_patient_with_australian_numbers_is_refused_with_an_operation_outcome(
    client: Client, feed: Feed
) -> None:
    response = client.post(spec_bundle(us_phone=False))

    assert response.status_code == 422
    (issue,) = issues(response)
    assert issue["code"] == "business-rule"
    assert issue["diagnostics"].startswith("Patient.telecom: not a valid phone number")
    assert feed.timeline("12345") == []


def test_an_appointment_type_that_maps_to_no_plan_is_accepted_and_ignored(
    client: Client, feed: Feed
) -> None:
    response = client.post(spec_bundle("appointment-example2doctors"))

    assert response.status_code == 200
    assert response.headers["x-reminders-outcome"] == "ignored"
    assert feed.log.outcome_counts() == {"ignored": 1}


def test_a_proposed_appointment_changes_nothing(client: Client, feed: Feed) -> None:
    response = client.post(
        spec_bundle("appointment-example-request"), Prefer="return=OperationOutcome"
    )

    assert response.status_code == 200
    (issue,) = issues(response)
    assert issue["severity"] == "information"
    assert "proposed is not used" in issue["diagnostics"]


def test_book_move_and_cancel_with_resources_built_by_the_library(
    client: Client, feed: Feed
) -> None:
    booked = client.put("apt-77", as_json(built_appointment()))
    moved = client.put("apt-77", as_json(built_appointment(start="2027-03-24T08:30:00-05:00")))
    cancelled_resource = built_appointment(status="cancelled", start="2027-03-24T08:30:00-05:00")
    cancelled_resource.cancelationReason = {"text": "Patient request"}  # type: ignore[assignment]
    cancelled = client.put("apt-77", as_json(cancelled_resource))

    assert [r.status_code for r in (booked, moved, cancelled)] == [201, 200, 200]
    assert [r.headers["x-reminders-outcome"] for r in (booked, moved, cancelled)] == [
        "enrolled",
        "moved",
        "cancelled",
    ]
    enrollment = feed.enrollment("MRN-77")
    assert enrollment["procedure_date"] == date(2027, 3, 24)
    assert enrollment["language"] == "es"
    assert (enrollment["status"], enrollment["status_reason"]) == ("cancelled", "Patient request")


def test_a_no_show_cancels_what_follows_and_flags_it(client: Client, feed: Feed) -> None:
    client.put("apt-77", as_json(built_appointment()))

    response = client.put("apt-77", as_json(built_appointment(status="noshow")))

    assert response.headers["x-reminders-outcome"] == "no_show"
    assert [flag.kind for flag in feed.app_flags("MRN-77")] == ["no_show"]
    statuses = {m.step_id: m.status for m in feed.timeline("MRN-77")}
    assert statuses["week-one"] == "cancelled" and statuses["prepare"] == "pending"


def test_the_same_request_twice_is_applied_once(client: Client, feed: Feed) -> None:
    body = as_json(built_appointment())

    first, again = client.put("apt-77", body), client.put("apt-77", body)

    assert (first.headers["x-reminders-outcome"], again.headers["x-reminders-outcome"]) == (
        "enrolled",
        "duplicate",
    )
    assert feed.log.outcome_counts() == {"enrolled": 1}


def test_an_older_version_arriving_late_changes_nothing(client: Client, feed: Feed) -> None:
    newer = as_json(built_appointment(start="2027-03-24T08:30:00-05:00"))
    newer["meta"] = {"lastUpdated": "2027-03-02T10:00:00Z"}
    older = as_json(built_appointment())
    older["meta"] = {"lastUpdated": "2027-03-01T10:00:00Z"}

    client.put("apt-77", newer)
    late = client.put("apt-77", older)

    assert late.headers["x-reminders-outcome"] == "stale"
    assert feed.enrollment("MRN-77")["procedure_date"] == date(2027, 3, 24)


def test_requests_without_a_valid_key_get_an_operation_outcome(client: Client) -> None:
    missing = client.http.post("/fhir/Appointment", json=spec_bundle())
    wrong = client.http.post(
        "/fhir/Appointment", json=spec_bundle(), headers={"Authorization": "Bearer rk_nope"}
    )

    for response in (missing, wrong):
        assert response.status_code == 401
        assert issues(response)[0]["code"] == "login"


def test_a_viewer_key_may_not_book_or_move_an_appointment(client: Client, feed: Feed) -> None:
    key, _ = feed.app.storage.access.create_api_key("ehr reader", Role.VIEWER, datetime.now(UTC))
    headers = {**client.headers, "Authorization": f"Bearer {key}"}

    booked = client.http.post("/fhir/Appointment", json=spec_bundle(), headers=headers)
    moved = client.http.put("/fhir/Appointment/example", json=spec_bundle(), headers=headers)

    for response in (booked, moved):
        assert response.status_code == 403, response.text
        assert issues(response)[0]["code"] == "forbidden"
    assert feed.app.storage.patient_lists.list_patients() == []


def test_malformed_json_and_invalid_resources_are_operation_outcomes(client: Client) -> None:
    garbage = client.http.post("/fhir/Appointment", content=b"{not json", headers=client.headers)
    no_participant = copy.deepcopy(example("appointment-example"))
    del no_participant["participant"]
    invalid = client.post(no_participant)
    wrong_type = client.post(example("patient-example"))

    assert garbage.status_code == 400 and issues(garbage)[0]["code"] == "structure"
    assert invalid.status_code == 400
    assert issues(invalid)[0]["expression"] == ["Appointment.participant"]
    assert wrong_type.status_code == 400 and issues(wrong_type)[0]["code"] == "not-supported"


def test_json_nested_too_deeply_for_the_parser_is_a_400_not_a_500(client: Client) -> None:
    depth = 100_000  # 200 KB, under the 1 MB limit; Python's parser gives up near 1,000
    body = b'{"resourceType": "Appointment", "x": ' + b"[" * depth + b"]" * depth + b"}"

    response = client.http.post("/fhir/Appointment", content=body, headers=client.headers)

    assert response.status_code == 400
    assert issues(response)[0]["diagnostics"] == "not a FHIR resource: nested too deeply"


def test_a_patients_reminders_come_back_as_communication_resources(
    client: Client, feed: Feed
) -> None:
    client.put("apt-77", as_json(built_appointment()))
    due = datetime(2027, 3, 8, 16, 0, tzinfo=UTC)
    (claimed,) = feed.app.storage.outbox.claim_due(due, "worker-1", 1)
    feed.app.storage.outbox.record_sent(
        claimed.id,
        due,
        provider_message_id="SM1",
        provider_status="queued",
        recipient="+13125550123",
        subject=None,
        body="Riverside: your procedure is on 10 March.",
        worker="worker-1",
    )

    response = client.http.get("/fhir/Patient/MRN-77/$reminders", headers=client.headers)

    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds == ["Communication", *["CommunicationRequest"] * (len(kinds) - 1)]
    sent = bundle.entry[0].resource
    assert sent.status == "completed" and sent.payload[0].contentString.startswith("Riverside")
    assert {entry.resource.status for entry in bundle.entry[1:]} == {"active"}


def test_an_unknown_patient_is_a_404_operation_outcome(client: Client) -> None:
    response = client.http.get("/fhir/Patient/nobody/$reminders", headers=client.headers)

    assert response.status_code == 404
    assert issues(response)[0]["code"] == "not-found"


def test_relief_check_answers_become_observations() -> None:
    answer = OutcomeView(
        1, "MRN-77", 9, "relief-check-week-4", 3, True, "3 yes", datetime(2027, 4, 7, tzinfo=UTC)
    )

    patient = PatientKey("MRN-77", "MR")
    pain, walking = (Observation.model_validate(o) for o in observations(answer, patient))

    assert (pain.code.coding[0].system, pain.code.coding[0].code) == ("http://loinc.org", "72514-3")
    assert pain.valueInteger == 3
    assert walking.valueBoolean is True
    assert pain.subject.identifier.value == "MRN-77"
    assert pain.subject.identifier.type.coding[0].code == "MR"


@pytest.mark.parametrize(
    ("status", "resource", "fhir_status"),
    [
        ("pending", "CommunicationRequest", "active"),
        ("sending", "CommunicationRequest", "active"),
        ("cancelled", "CommunicationRequest", "revoked"),
        ("sent", "Communication", "completed"),
        ("undelivered", "Communication", "not-done"),
        ("failed", "Communication", "not-done"),
        ("skipped", "Communication", "not-done"),
    ],
)
def test_every_message_status_has_a_fhir_resource_and_status(
    status: str, resource: str, fhir_status: str
) -> None:
    at = datetime(2027, 3, 8, 16, 0, tzinfo=UTC)
    message = MessageView(
        7, "MRN-77", "demo", "prepare", "pre-procedure", "sms", status, "carrier 30003", at, at,
        at, 1, at, "SM7", None, None, "America/Chicago", "Riverside: see you soon.", at,
    )  # fmt: skip

    built = communication(message, PatientKey("MRN-77", "MR"))

    model = CommunicationRequest if resource == "CommunicationRequest" else Communication
    assert model.model_validate(built).status == fhir_status
    assert built["resourceType"] == resource
