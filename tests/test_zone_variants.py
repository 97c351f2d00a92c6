"""A zone name from the system's right/ or posix/ folders is refused with the plain name to use,
wherever a zone is given, and a mapping file's site zone is checked by the same rule as a
patient's (it becomes every booked patient's zone).

right/America/New_York is the New York zone counted with leap seconds; Python's zoneinfo reads
it with daylight time all year, so a 09:00 text went at 08:00 all winter. posix/ names exist
only where the system's tz database is installed, not in the tzdata package."""

from __future__ import annotations

import pytest
from feed_fixtures import MAPPING
from test_scheduling_mapping import problems

from reminders.enrollment_input import read_input
from reminders.errors import EnrollmentError

GOOD = {
    "external_id": "p1",
    "first_name": "Ana",
    "email": "ana@example.org",
    "plan": "knee",
    "procedure_date": "2030-03-12",
}


@pytest.mark.parametrize("zone", ["right/America/New_York", "posix/America/New_York"])
def test_an_enrollment_in_a_right_or_posix_zone_is_refused_with_the_name_to_use(zone: str) -> None:
    with pytest.raises(EnrollmentError) as caught:
        read_input({**GOOD, "timezone": zone})

    (problem,) = caught.value.problems
    assert problem.field == "timezone"
    assert problem.message == f"{zone} is a copy of the tz database's; use America/New_York"


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (
            "right/America/Denver",
            "right/America/Denver is a copy of the tz database's; use America/Denver",
        ),
        (
            "MST",
            "MST has no daylight saving; use America/Denver (or America/Phoenix, which keeps "
            "MST all year)",
        ),
        (
            "Etc/GMT+7",
            "Etc/GMT+7 is not a Region/City zone; use the patient's, e.g. America/Chicago",
        ),
    ],
)
def test_a_site_zone_follows_the_same_rule_as_a_patients(zone: str, message: str) -> None:
    text = MAPPING.replace("timezone: America/Denver", f"timezone: {zone}")

    assert problems(text) == [f"scheduling.yaml:7: sites[1].timezone: {message}"]
