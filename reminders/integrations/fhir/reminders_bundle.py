"""A patient's reminders as FHIR R4 resources, so the EHR can file them.

Planned messages are CommunicationRequests, sent (or failed) ones Communications, and
relief-check answers Observations (leg pain 0-10, walking improved). Each resource is
checked against fhir.resources' R4B model before it leaves.

The patient is the one the EHR named: our external id is the value of the identifier it sent
(PID-3 / Patient.identifier of the type the mapping file names). Resources refer to the patient
by that identifier (a logical reference), not by a Patient resource of ours, which there is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fhir.resources.R4B.bundle import Bundle

from reminders.schedule_diff import MessageStatus
from reminders.store.message_records import MessageView
from reminders.store.reply_records import OutcomeView

SYSTEM = "urn:reminders"
PAIN_LOINC = "72514-3"  # Pain severity - 0-10 verbal numeric rating [Score] - Reported
MEDIUM = {
    "sms": ("SMSWRIT", "SMS message"),
    "email": ("EMAILWRIT", "email"),
}
MEDIUM_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Planned messages (CommunicationRequest.status) and handled ones (Communication.status).
REQUEST_STATUS: dict[str, str] = {
    MessageStatus.PENDING: "active",
    MessageStatus.SENDING: "active",
    MessageStatus.CANCELLED: "revoked",
}
SENT: dict[str, str] = {
    MessageStatus.SENT: "completed",
    MessageStatus.UNDELIVERED: "not-done",
    MessageStatus.FAILED: "not-done",
    MessageStatus.SKIPPED: "not-done",
}


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _medium(channel: str) -> list[dict[str, Any]]:
    code, display = MEDIUM.get(channel, ("WRITTEN", channel))
    return [{"coding": [{"system": MEDIUM_SYSTEM, "code": code, "display": display}]}]


@dataclass(frozen=True)
class PatientKey:
    """How the EHR knows the patient: our external id, and the identifier type (e.g. MR) the
    mapping file names for it (None while there is no usable mapping file)."""

    external_id: str
    identifier_type: str | None

    def subject(self) -> dict[str, Any]:
        """A logical reference to the patient by that identifier."""
        identifier: dict[str, Any] = {"value": self.external_id}
        if self.identifier_type:
            coding = {"system": IDENTIFIER_TYPE_SYSTEM, "code": self.identifier_type}
            identifier["type"] = {"coding": [coding]}
        return {"identifier": identifier}


def _identifier(kind: str, value: int) -> list[dict[str, str]]:
    return [{"system": f"{SYSTEM}:{kind}", "value": str(value)}]


def communication(message: MessageView, patient: PatientKey) -> dict[str, Any]:
    """One message as a CommunicationRequest (planned) or a Communication (sent or failed)."""
    step = {"text": f"{message.plan_id} / {message.step_id} ({message.phase})"}
    if message.status in SENT:
        resource: dict[str, Any] = {
            "resourceType": "Communication",
            "id": f"message-{message.id}",
            "identifier": _identifier("message", message.id),
            "status": SENT[message.status],
            "category": [step],
            "medium": _medium(message.channel),
            "subject": patient.subject(),
            "sent": _instant(message.sent_at),
        }
        if message.body:
            resource["payload"] = [{"contentString": message.body}]
        if message.status != MessageStatus.SENT and message.status_reason:
            resource["statusReason"] = {"text": message.status_reason}
        return resource
    return {
        "resourceType": "CommunicationRequest",
        "id": f"message-{message.id}",
        "identifier": _identifier("message", message.id),
        "status": REQUEST_STATUS.get(message.status, "unknown"),
        "category": [step],
        "medium": _medium(message.channel),
        "subject": patient.subject(),
        "occurrenceDateTime": _instant(message.due_at),
        **({"statusReason": {"text": message.status_reason}} if message.status_reason else {}),
    }


def observations(outcome: OutcomeView, patient: PatientKey) -> list[dict[str, Any]]:
    """A relief-check answer as up to two Observations."""
    common = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "subject": patient.subject(),
        "effectiveDateTime": _instant(outcome.received_at),
        "identifier": _identifier("outcome", outcome.id),
    }
    found = []
    if outcome.leg_pain is not None:
        found.append(
            {
                **common,
                "id": f"outcome-{outcome.id}-leg-pain",
                "code": {
                    "coding": [{"system": "http://loinc.org", "code": PAIN_LOINC}],
                    "text": "Leg pain (0-10), reported by text message",
                },
                "valueInteger": outcome.leg_pain,
            }
        )
    if outcome.walking_improved is not None:
        found.append(
            {
                **common,
                "id": f"outcome-{outcome.id}-walking",
                "code": {
                    "coding": [{"system": SYSTEM, "code": "walking-improved"}],
                    "text": "Walking improved since the procedure, reported by text message",
                },
                "valueBoolean": outcome.walking_improved,
            }
        )
    return found


def reminders_bundle(
    patient: PatientKey, messages: list[MessageView], outcomes: list[OutcomeView], now: datetime
) -> dict[str, Any]:
    """A searchset Bundle of the patient's reminders and answers."""
    resources = [communication(m, patient) for m in messages]
    resources += [item for outcome in outcomes for item in observations(outcome, patient)]
    self_url = f"Patient/{quote(patient.external_id, safe='')}/$reminders"
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": _instant(now),
            "total": len(resources),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [
                {"fullUrl": f"urn:reminders:{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in resources
            ],
        }
    )
    return bundle.model_dump(mode="json", exclude_none=True)
