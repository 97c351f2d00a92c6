"""The pure half of a feed booking: the enrollment input an appointment event gives, refusals
in the feed's own words, and the site's wall clock (the service's half: test_hl7_feed.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from feed_fixtures import MAPPING

from reminders.enrollment_input import EnrollmentInput
from reminders.errors import EnrollmentError, InputProblem
from reminders.integrations.booking import (
    Refusal,
    booking_input,
    refusal,
    site_instant,
    site_wall_clock,
    utc_or_none,
)
from reminders.integrations.events import (
    AppointmentAction,
    AppointmentEvent,
    PatientFacts,
    PatientIdentifier,
    Phone,
)
from reminders.integrations.mapping import Code, SchedulingMapping, parse_mapping

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def mapping() -> SchedulingMapping:
    return parse_mapping(MAPPING, "mapping.yaml", ["demo"])


def event(
    *,
    source: str = "hl7",
    patient: PatientFacts | None = None,
    start: datetime | None = datetime(2026, 3, 8, 7, 30),
) -> AppointmentEvent:
    return AppointmentEvent(
        source=source,
        sender="RIVERSIDE",
        message_id="m1",
        sent_at=None,
        appointment_id="a1",
        action=AppointmentAction.BOOKED,
        codes=[Code(system="C4", code="0275T")],
        patient=patient,
        start=start,
        facility="RIVERSIDE",
    )


def patient(**changes: object) -> PatientFacts:
    values: dict[str, object] = {
        "identifiers": [PatientIdentifier("MRN-1", "MR")],
        "first_name": "Maria",
        "phones": [Phone("+13125550100"), Phone("+13125550123", mobile=True)],
        "email": "maria@example.org",
        "language": "SPA",
    }
    values.update(changes)
    return PatientFacts(**values)  # type: ignore[arg-type]


def translate(
    mapping: SchedulingMapping, ev: AppointmentEvent, current: EnrollmentInput | None = None
) -> EnrollmentInput:
    site = mapping.site_for(ev.location, ev.facility)
    rule = mapping.rule_for(ev.codes, ev.location)
    assert site is not None and rule is not None
    return booking_input(ev, site, rule, mapping, current)


def test_a_booking_gives_the_input_staff_would_type(mapping: SchedulingMapping) -> None:
    item = translate(mapping, event(patient=patient()))

    assert item.external_id == "MRN-1"
    assert item.phone == "+13125550123"  # the mobile number, not the first one
    assert item.language == "es"  # PID-15 SPA through the mapping's languages
    assert item.timezone == "America/Chicago"  # the site's zone
    assert (item.procedure_date, item.procedure_time) == (date(2026, 3, 8), time(7, 30))
    assert item.sms_consent is True
    assert item.attributes == {"takes_blood_thinners": False}


def test_what_staff_added_since_stays(mapping: SchedulingMapping) -> None:
    stored = translate(mapping, event(patient=patient())).model_copy(
        update={"attributes": {"takes_blood_thinners": True}, "email": "kept@example.org"}
    )

    item = translate(mapping, event(patient=patient(email=None)), current=stored)

    assert item.attributes == {"takes_blood_thinners": True}
    assert item.email == "kept@example.org"


def test_refusals_name_the_feeds_own_field(mapping: SchedulingMapping) -> None:
    with pytest.raises(Refusal, match=r"no patient in the message \(PID-3\)"):
        translate(mapping, event(patient=None))
    with pytest.raises(Refusal, match=r"Patient.identifier: no identifier of type MR"):
        translate(mapping, event(source="fhir", patient=patient(identifiers=[])))
    with pytest.raises(Refusal, match=r"AIS-4: no start time"):
        translate(mapping, event(patient=patient(), start=None))
    with pytest.raises(Refusal, match=r"^PID-13: not a phone"):
        raise refusal("hl7", EnrollmentError([InputProblem("phone", "not a phone")]))


def test_a_local_time_is_read_on_the_sites_wall_clock_and_an_instant_is_converted() -> None:
    naive = datetime(2026, 3, 8, 7, 30)  # the morning US clocks spring forward
    assert site_wall_clock(naive, CHICAGO) == datetime(2026, 3, 8, 7, 30, tzinfo=CHICAGO)
    assert site_instant(naive, CHICAGO) == datetime(2026, 3, 8, 12, 30, tzinfo=UTC)

    offset = datetime(2026, 3, 8, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert site_wall_clock(offset, CHICAGO).time() == time(7, 30)  # CDT since 02:00
    assert site_instant(None, CHICAGO) is None
    assert utc_or_none(naive) is None  # a local time names no instant
    assert utc_or_none(offset) == datetime(2026, 3, 8, 12, 30, tzinfo=UTC)
