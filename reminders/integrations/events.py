"""What a scheduling feed tells us about one appointment, whatever the feed (HL7 v2 or FHIR)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from reminders.integrations.mapping import Code


class AppointmentAction(StrEnum):
    """What happened to the appointment."""

    # A new booking (SIU^S12): books the appointment again even after a cancellation.
    BOOKED = "booked"
    # The appointment as booked now (S13 rescheduled, S14 modified, FHIR status booked): moves
    # it, or updates the patient. FHIR has no "new booking" event (an Appointment states how
    # the appointment is), so FHIR booked is this, new or not; after a cancellation or a
    # no-show it restarts only a real move (the appointment service's rule).
    MOVED = "moved"
    CANCELLED = "cancelled"  # S15 cancelled, S17 deleted, FHIR cancelled / entered-in-error
    NO_SHOW = "no_show"  # S26, FHIR noshow
    OTHER = "other"  # any other scheduling event: acknowledged, logged, not acted on


@dataclass(frozen=True)
class PatientIdentifier:
    """One of the patient's identifiers with its type (HL7 table 0203: MR, PI, ...)."""

    value: str
    type: str | None = None
    assigning_authority: str | None = None


@dataclass(frozen=True)
class Phone:
    """A phone number as the feed gives it; `mobile` when marked as a cell phone."""

    number: str
    mobile: bool = False


@dataclass(frozen=True)
class PatientFacts:
    """Who the appointment is for, as the feed describes them."""

    identifiers: list[PatientIdentifier]
    first_name: str | None = None
    phones: list[Phone] = field(default_factory=list)
    email: str | None = None
    language: str | None = None

    def identifier(self, type_: str, authority: str | None) -> str | None:
        """The identifier of the given type (and assigning authority, when named)."""
        for identifier in self.identifiers:
            if identifier.type != type_:
                continue
            if authority is not None and identifier.assigning_authority != authority:
                continue
            return identifier.value
        return None

    def best_phone(self) -> Phone | None:
        """A mobile number if there is one, else the first number given."""
        mobiles = [phone for phone in self.phones if phone.mobile]
        candidates = mobiles or self.phones
        return candidates[0] if candidates else None


@dataclass(frozen=True)
class AppointmentEvent:
    """One message of the feed about one appointment.

    `start` and `sent_at` may be naive (local to the site, as HL7 allows) or carry an offset.
    """

    source: str  # "hl7" or "fhir"
    sender: str  # the sending facility, or the API key's name
    message_id: str  # MSH-10, or the FHIR request's own id
    sent_at: datetime | None  # MSH-7 / meta.lastUpdated: orders the messages of an appointment
    appointment_id: str
    action: AppointmentAction
    codes: list[Code]
    patient: PatientFacts | None
    start: datetime | None = None
    location: str | None = None
    facility: str | None = None
    reason: str | None = None
    event_code: str = ""  # S12, ... or the FHIR status, for the log
