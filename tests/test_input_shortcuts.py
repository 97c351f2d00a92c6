"""Checking a CSV file's many rows reuses verdicts (a domain's, a zone's) without changing any:
every address gets exactly what the email library gives it, normalized form or message, and
a zone name the same verdict the second time as the first."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from reminders.enrollment_input import email_address
from reminders.inputs import time_zone

PROPERTY = settings(max_examples=400, deadline=None, derandomize=True, database=None)

LOCAL_PARTS = st.one_of(
    st.text(alphabet="abcXYZ019_+-.", min_size=0, max_size=12),
    st.sampled_from(["Info", "POSTMASTER", "abuse", "a..b", ".a", "a.", '"a b"', "é", "a b"]),
    st.text(alphabet="ab.", min_size=60, max_size=70),
    st.text(min_size=1, max_size=6),
)
DOMAINS = st.one_of(
    st.sampled_from(
        [
            "example.org",
            "Example.ORG",
            "clinic.example.com.",
            "localhost",
            "printer.local",
            "site.test",
            "mail.invalid",
            "a.b",
            "x.123",
            "-bad.com",
            "bad-.com",
            "xn--bcher-kva.example",
            "bücher.example",
            "[127.0.0.1]",
            "example..org",
            "",
            "a@b.org",
        ]
    ),
    st.lists(st.text(alphabet="abz09-", min_size=1, max_size=70), min_size=1, max_size=5).map(
        ".".join
    ),
    st.text(alphabet="abAB.-_é", min_size=1, max_size=20),
)


def library(value: str) -> tuple[str, str]:
    try:
        return "ok", validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return "refused", str(exc)


def ours(value: str) -> tuple[str, str]:
    try:
        return "ok", email_address(value)
    except ValueError as exc:
        return "refused", str(exc)


@PROPERTY
@given(local=LOCAL_PARTS, domain=DOMAINS)
def test_every_address_gets_the_libraries_verdict_and_words(local: str, domain: str) -> None:
    value = f"{local}@{domain}"
    assert ours(value) == library(value)
    assert ours(value) == library(value)  # the domain's verdict now remembered


@pytest.mark.parametrize(
    "value",
    [
        "ana.lopez@Clinic.Example.org",
        "Ana+tag@example.org",
        "Postmaster@example.org",
        "x" * 64 + "@" + "d" * 60 + "." + "e" * 60 + "." + "f" * 60 + ".org",
        "ana@site.test",
        "ana@bücher.example",
        "no-at-sign",
    ],
)
def test_addresses_staff_type_get_the_libraries_verdict(value: str) -> None:
    assert ours(value) == library(value)
    assert ours(value) == library(value)


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
