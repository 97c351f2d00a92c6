"""What a booking asks for: the enrollment input an appointment event gives, and the feed's own
words for a field it refuses. Pure: the mapping and what is stored come in as arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reminders.enrollment_input import EnrollmentInput, read_input
from reminders.errors import EnrollmentError
from reminders.integrations.events import AppointmentEvent, PatientFacts
from reminders.integrations.mapping import Rule, SchedulingMapping, Site

# Where each enrollment field comes from, in each feed's own words (for refusals).
FIELD_SOURCES = {
    "hl7": {
        "external_id": "PID-3",
        "first_name": "PID-5",
        "phone": "PID-13",
        "email": "PID-13",
        "language": "PID-15",
        "timezone": "site time zone",
        "procedure_date": "AIS-4",
        "procedure_time": "AIS-4",
    },
    "fhir": {
        "external_id": "Patient.identifier",
        "first_name": "Patient.name",
        "phone": "Patient.telecom",
        "email": "Patient.telecom",
        "language": "Patient.communication",
        "timezone": "site time zone",
        "procedure_date": "Appointment.start",
        "procedure_time": "Appointment.start",
    },
}


class Refusal(Exception):
    """A message we understood but cannot act on; the reason goes into the acknowledgement."""


def patient_external_id(mapping: SchedulingMapping, patient: PatientFacts) -> str | None:
    """Our external id for the patient: their identifier of the mapping's type, if they have one."""
    wanted = mapping.patient_identifier
    return patient.identifier(wanted.type, wanted.assigning_authority)


def booked_patient(event: AppointmentEvent, mapping: SchedulingMapping) -> tuple[PatientFacts, str]:
    """The booked patient and their external id; Refusal when the message names no patient
    or gives no identifier of the mapping's type."""
    sources = FIELD_SOURCES.get(event.source, {})
    patient = event.patient
    if patient is None:
        raise Refusal(f"no patient in the message ({sources.get('external_id', 'patient')})")
    external_id = patient_external_id(mapping, patient)
    if external_id is None:
        wanted = mapping.patient_identifier
        authority = f" from {wanted.assigning_authority}" if wanted.assigning_authority else ""
        raise Refusal(
            f"{sources.get('external_id', 'patient identifier')}: no identifier of type "
            f"{wanted.type}{authority}"
        )
    return patient, external_id


def booking_input(
    event: AppointmentEvent,
    site: Site,
    rule: Rule,
    mapping: SchedulingMapping,
    current: EnrollmentInput | None,
) -> EnrollmentInput:
    """The enrollment input a booking gives (not yet validated against its plan).

    `current` is the patient's enrollment on the rule's plan as stored: what staff added since
    (attributes, an email) stays. Refusal, in the feed's words, for what cannot be read.
    """
    patient, external_id = booked_patient(event, mapping)
    if event.start is None:
        sources = FIELD_SOURCES.get(event.source, {})
        raise Refusal(f"{sources.get('procedure_date', 'start')}: no start time")
    local_start = site_wall_clock(event.start, ZoneInfo(site.timezone))
    phone = patient.best_phone()
    consent = (rule.consent or mapping.consent).sms
    sms_consent = consent == "granted" or (
        consent == "if_mobile" and phone is not None and phone.mobile
    )
    channel = mapping.defaults.preferred_channel
    if channel == "sms" and (phone is None or not sms_consent) and patient.email:
        channel = "email"
    attributes = {**mapping.defaults.attributes, **rule.attributes}
    email = patient.email
    if current is not None:
        attributes = {**attributes, **current.attributes}
        email = email or current.email
    try:
        return read_input(
            {
                "external_id": external_id,
                "first_name": patient.first_name or "",
                "phone": phone.number if phone else None,
                "email": email,
                "timezone": site.timezone,
                "language": mapping.language(patient.language),
                "preferred_channel": channel,
                "sms_consent": sms_consent,
                "plan": rule.plan,
                "procedure_date": local_start.date(),
                "procedure_time": local_start.time().replace(second=0, microsecond=0),
                "attributes": attributes,
            }
        )
    except EnrollmentError as exc:
        raise refusal(event.source, exc) from None


def refusal(source: str, error: EnrollmentError) -> Refusal:
    """An enrollment error told in the feed's own words (PID-13, Appointment.start, ...)."""
    sources = FIELD_SOURCES.get(source, {})
    return Refusal(
        "; ".join(f"{sources.get(p.field, p.field)}: {p.message}" for p in error.problems)
    )


def site_wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """A feed's time on the site's wall clock: instants converted, local times kept."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def site_instant(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A feed's time as a UTC instant, local times read on the site's wall clock."""
    return None if moment is None else site_wall_clock(moment, zone).astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    """An aware time in UTC; None for a missing or naive one (it names no instant)."""
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        return None
    return moment.astimezone(UTC)
