"""Read a FHIR R4 Appointment (validated with fhir.resources' R4B model) into an event.

The patient is contained in the Appointment or sent beside it in a Bundle. Fields read:
Appointment.id, status, start (an instant with an offset), serviceType / appointmentType /
reasonCode codings, cancelationReason, meta.lastUpdated (orders the updates of one
appointment), the Location participant; Patient.identifier (with its type), name, telecom,
communication.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from reminders.inputs import storable
from reminders.integrations.events import (
    AppointmentAction,
    AppointmentEvent,
    PatientFacts,
    PatientIdentifier,
    Phone,
)
from reminders.integrations.fhir.outcome import FhirError, Issue
from reminders.integrations.mapping import Code

ACTIONS = {
    # The Appointment's state, not a booking event: sent again after `noshow` or `cancelled`
    # it is an S13/S14, not an S12 (see AppointmentAction.MOVED).
    "booked": AppointmentAction.MOVED,
    "cancelled": AppointmentAction.CANCELLED,
    "entered-in-error": AppointmentAction.CANCELLED,
    "noshow": AppointmentAction.NO_SHOW,
}
STATUSES = {
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
}


def _validate(model: Any, data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FhirError(
            400,
            [
                Issue(
                    "structure",
                    str(error["msg"]).removeprefix("Value error, "),
                    expression=".".join([where, *(str(p) for p in error["loc"])]),
                )
                for error in exc.errors()[:20]
            ],
        ) from None


def unstorable_text(data: Any) -> list[Issue]:
    """Each string of a JSON document no database can store (a NUL, an unpaired surrogate),
    named by its path, in the words every entry point uses (`reminders.inputs.storable`)."""
    issues = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{key}".lstrip("."), item) for key, item in value.items())
            stack.extend((where, key) for key in value)
        elif isinstance(value, list):
            stack.extend((f"{where}.{index}".lstrip("."), item) for index, item in enumerate(value))
        elif isinstance(value, str):
            try:
                storable(value)
            except ValueError as exc:
                issues.append(Issue("invalid", str(exc), expression=where or None))
    return issues


def parse_body(data: Any) -> tuple[Appointment, Patient | None]:
    """The Appointment and its patient, from an Appointment or a Bundle holding both."""
    if not isinstance(data, dict):
        raise FhirError(400, [Issue("structure", "expected a JSON object (a FHIR resource)")])
    refused = unstorable_text(data)
    if refused:
        raise FhirError(400, refused[:20])
    kind = data.get("resourceType")
    if kind == "Bundle":
        bundle = _validate(Bundle, data, "Bundle")
        resources = [entry.resource for entry in bundle.entry or [] if entry.resource]
        urls = {entry.fullUrl: entry.resource for entry in bundle.entry or [] if entry.fullUrl}
        appointments = [r for r in resources if r.get_resource_type() == "Appointment"]
        if len(appointments) != 1:
            raise FhirError(400, [Issue("invalid", "the Bundle must hold exactly one Appointment")])
        appointment = _validate(Appointment, appointments[0].model_dump(), "Appointment")
        patients = {
            f"Patient/{r.id}": r for r in resources if r.get_resource_type() == "Patient" and r.id
        }
        patients.update({url: r for url, r in urls.items() if r.get_resource_type() == "Patient"})
        return appointment, _patient(appointment, patients)
    if kind != "Appointment":
        raise FhirError(
            400, [Issue("not-supported", f"expected an Appointment or a Bundle, not {kind!r}")]
        )
    appointment = _validate(Appointment, data, "Appointment")
    contained = {
        f"#{r.id}": r for r in appointment.contained or [] if r.get_resource_type() == "Patient"
    }
    return appointment, _patient(appointment, contained)


def _patient(appointment: Appointment, candidates: dict[str, Any]) -> Patient | None:
    for participant in appointment.participant or []:
        reference = participant.actor.reference if participant.actor else None
        if reference and reference in candidates:
            return _validate(Patient, candidates[reference].model_dump(), "Patient")
    return None


def appointment_event(
    appointment: Appointment, patient: Patient | None, appointment_id: str, body: bytes
) -> AppointmentEvent:
    """The event an Appointment describes."""
    status = str(appointment.status)
    if status not in STATUSES:
        raise FhirError(
            400,
            [Issue("code-invalid", f"unknown status {status!r}", expression="Appointment.status")],
        )
    codes = [
        *_codings(appointment.serviceType or []),
        *_codings([appointment.appointmentType] if appointment.appointmentType else []),
        *_codings(appointment.reasonCode or []),
    ]
    reason = None
    if appointment.cancelationReason:
        reason = appointment.cancelationReason.text or next(
            (c.display or c.code for c in appointment.cancelationReason.coding or []), None
        )
    return AppointmentEvent(
        source="fhir",
        sender="fhir",
        message_id=hashlib.sha256(body).hexdigest()[:40],
        sent_at=appointment.meta.lastUpdated if appointment.meta else None,
        appointment_id=appointment_id,
        action=ACTIONS.get(status, AppointmentAction.OTHER),
        codes=codes,
        patient=_facts(patient) if patient else None,
        start=appointment.start,
        location=_location(appointment),
        reason=reason,
        event_code=status,
    )


def _codings(concepts: list[CodeableConcept]) -> list[Code]:
    return [
        Code(system=coding.system or "(none)", code=coding.code)
        for concept in concepts
        for coding in concept.coding or []
        if coding.code
    ]


def _location(appointment: Appointment) -> str | None:
    for participant in appointment.participant or []:
        reference = participant.actor.reference if participant.actor else None
        if reference and reference.startswith("Location/"):
            return reference.removeprefix("Location/")
    return None


def _facts(patient: Patient) -> PatientFacts:
    identifiers = []
    for identifier in patient.identifier or []:
        type_code = None
        if identifier.type:
            type_code = next((c.code for c in identifier.type.coding or [] if c.code), None)
        if identifier.value:
            identifiers.append(PatientIdentifier(identifier.value, type_code, identifier.system))
    names = sorted(patient.name or [], key=lambda n: 0 if n.use in ("official", "usual") else 1)
    first_name = next((n.given[0] for n in names if n.given), None)
    phones, email = [], None
    for contact in patient.telecom or []:
        if contact.system == "phone" and contact.value:
            phones.append(Phone(contact.value, mobile=contact.use == "mobile"))
        elif contact.system == "email" and contact.value and email is None:
            email = contact.value
    return PatientFacts(
        identifiers=identifiers,
        first_name=first_name,
        phones=phones,
        email=email,
        language=_language(patient),
    )


def _language(patient: Patient) -> str | None:
    communications = sorted(patient.communication or [], key=lambda c: 0 if c.preferred else 1)
    for communication in communications:
        for coding in communication.language.coding or []:
            if coding.code:
                return coding.code.split("-")[0]
    return None
