"""Checking a CSV file's many rows reuses verdicts (a zone's) without changing any: a zone
name gets the same verdict the second time as the first."""

from __future__ import annotations

import pytest

from reminders.inputs import time_zone


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("America/Chicago", None),
        ("UTC", None),
        ("EST", "EST has no daylight saving; use America/New_York"),
        ("Nowhere/Town", "unknown IANA time zone 'Nowhere/Town' (e.g. America/Chicago)"),
        ("../etc/passwd", "unknown IANA time zone '../etc/passwd' (e.g. America/Chicago)"),
        (
            "Etc/GMT+5",
            "Etc/GMT+5 is not a Region/City zone; use the patient's, e.g. America/Chicago",
        ),
    ],
)
def test_a_zone_gets_the_same_verdict_every_time(zone: str, message: str | None) -> None:
    for _ in range(2):
        if message is None:
            assert time_zone(zone) == zone
        else:
            with pytest.raises(ValueError) as caught:
                time_zone(zone)
            assert str(caught.value) == message
