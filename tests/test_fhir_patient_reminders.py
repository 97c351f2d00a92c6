"""`GET /fhir/Patient/{id}/$reminders` answers for the patient the EHR named.

The id is the identifier the EHR sent (PID-3 of the type the mapping file names, here MR),
which is our external id. The patient is booked over a real MLLP connection, the dispatcher
sends what is due, the patient answers the relief check by text, and every resource of the
answer is read back with fhir.resources' R4B models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feed_fixtures import Feed, MllpSender, ack_code, open_feed, siu
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from reminders.api.app import create_app
from reminders.channels.null import NullChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.replies.service import InboundSms
from reminders.roles import Role

RELIEF_CHECKS = """\
  - id: relief-check-week-4
    phase: recovery
    offset: {days: 28}
    template: week_one
  - id: relief-check-week-6
    phase: recovery
    offset: {days: 42}
    template: week_one
"""
MRN = "RIV/0042"  # an MRN with a slash: percent-encoded in the URL
MODELS = {
    "Communication": Communication,
    "CommunicationRequest": CommunicationRequest,
    "Observation": Observation,
}


@pytest.fixture
def feed(tmp_path: Path, sqlite_url: str) -> Iterator[Feed]:
    with open_feed(tmp_path, sqlite_url, extra_steps=RELIEF_CHECKS) as opened:
        yield opened


def reminders(feed: Feed, patient_id: str) -> Any:
    key, _ = feed.app.storage.access.create_api_key("ehr", Role.STAFF, datetime.now(UTC))
    client = TestClient(create_app(feed.app))
    return client.get(
        f"/fhir/Patient/{patient_id}/$reminders", headers={"Authorization": f"Bearer {key}"}
    )


def test_the_ehr_reads_a_patients_reminders_and_answers_by_the_identifier_it_sent(
    feed: Feed,
) -> None:
    sender = MllpSender(feed)
    try:
        assert ack_code(sender(siu("S12", control_id="M1", mrn=MRN))) == "AA"
    finally:
        sender.close()
    # The 4-week relief check is due on 7 April, 09:00 in Chicago; the dispatcher sends it
    # (the earlier steps are past their time by then and skipped), the patient answers.
    feed.clock.now = datetime(2027, 4, 7, 14, 30, tzinfo=UTC)
    channels = {"sms": NullChannel("sms"), "email": NullChannel("email")}
    Dispatcher(
        feed.app.storage,
        feed.app.catalog,
        channels,  # type: ignore[arg-type]
        feed.app.dispatch_settings(),
        clock=feed.clock,
    ).run_once()
    feed.clock.now = datetime(2027, 4, 7, 16, 0, tzinfo=UTC)
    answered = feed.app.replies(clock=feed.clock).handle_inbound(
        InboundSms("SM-in-1", "+13125550123", "+15550100100", "pain 3, yes walking further")
    )
    assert answered.kind == "outcome", answered

    response = reminders(feed, "RIV%2F0042")

    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate(response.json())
    resources = [
        MODELS[entry.resource.get_resource_type()].model_validate(
            entry.resource.model_dump(mode="json", exclude_none=True)
        )
        for entry in bundle.entry
    ]
    by_kind: dict[str, list[Any]] = {}
    for resource in resources:
        by_kind.setdefault(resource.get_resource_type(), []).append(resource)
    assert {r.status for r in by_kind["Communication"]} == {"completed", "not-done"}
    (sent,) = [r for r in by_kind["Communication"] if r.status == "completed"]
    assert "relief-check-week-4" in sent.category[0].text
    (planned,) = by_kind["CommunicationRequest"]
    assert planned.status == "active" and "relief-check-week-6" in planned.category[0].text
    pain, walking = by_kind["Observation"]
    assert (pain.code.coding[0].code, pain.valueInteger) == ("72514-3", 3)
    assert walking.valueBoolean is True
    for resource in resources:
        identifier = resource.subject.identifier
        assert (identifier.value, identifier.type.coding[0].code) == (MRN, "MR")
        assert resource.subject.reference is None  # no Patient resource of ours to point at
    assert bundle.link[0].url == "Patient/RIV%2F0042/$reminders"


def test_another_identifier_of_the_patient_is_not_our_id(feed: Feed) -> None:
    feed.handler.handle(siu("S12", control_id="M1", mrn=MRN))  # PID-3 also carries an SSN

    response = reminders(feed, "999-00-1234")

    assert response.status_code == 404
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].code == "not-found"
